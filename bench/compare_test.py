"""Tests for bench/compare.py: parsing, ratios and goals."""
import json
import os
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import compare  # noqa: E402


class CompareTest(unittest.TestCase):
    def test_items_per_second_wins_over_real_time(self):
        text = json.dumps({"benchmarks": [
            {"name": "BM_A", "run_type": "iteration", "real_time": 1000,
             "time_unit": "ns", "items_per_second": 1e6},
            {"name": "BM_B", "run_type": "iteration", "real_time": 2,
             "time_unit": "us"}]})
        r = compare.parse_benchmark_json(text)
        self.assertAlmostEqual(r["BM_A"], 1e-6)
        self.assertAlmostEqual(r["BM_B"], 2e-6)

    def test_script_output_uses_last_line(self):
        r = compare.parse_script_output('noise\n{"k": 0.5}\n')
        self.assertEqual(r, {"k": 0.5})
        with self.assertRaises(ValueError):
            compare.parse_script_output("")

    def test_goals(self):
        self.assertTrue(compare.at_least(7).met(7.5))
        self.assertFalse(compare.at_least(7).met(6.9))
        self.assertTrue(compare.within(1.5).met(0.7))   # mp 1.43x peer's time
        self.assertFalse(compare.within(1.5).met(0.6))  # mp 1.67x peer's time
        self.assertTrue(compare.fraction(0.9).met(0.95))
        self.assertFalse(compare.fraction(0.9).met(0.85))

    def test_table_marks_missed_goals(self):
        c = compare.Comparison("x", compare.Bench("b", "m"),
                               compare.Bench("b", "p"), compare.at_least(2))
        t = compare.table([(c, 1.0, 1.5)])
        self.assertIn("**no**", t)
        self.assertIn("1.50x", t)
        t = compare.table([(c, None, 1.5)])
        self.assertIn("not measured", t)


class MeasurementsTest(unittest.TestCase):
    def test_groups_items_by_source_and_kind(self):
        c1 = compare.Comparison("a", compare.Bench("b1", "x"),
                                compare.Script("s.py", "k1"), compare.at_least(1))
        c2 = compare.Comparison("b", compare.Bench("b1", "y"),
                                compare.Script("s.py", "k2"), compare.at_least(1))
        self.assertEqual(compare.measurements([c1, c2], compare.Bench),
                         {"b1": {"x", "y"}})
        self.assertEqual(compare.measurements([c1, c2], compare.Script),
                         {"s.py": {"k1", "k2"}})

    def test_failing_or_hanging_command_is_not_measured(self):
        self.assertIsNone(compare.run_logged(["false"], timeout=10))
        self.assertIsNone(compare.run_logged(["sleep", "5"], timeout=0.2))
        self.assertEqual(compare.run_logged(["echo", "hi"], timeout=10), "hi\n")


if __name__ == "__main__":
    unittest.main()
