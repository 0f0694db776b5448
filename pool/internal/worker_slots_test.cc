#include "pool/internal/worker_slots.h"

#include <unistd.h>

#include <cstdint>
#include <set>
#include <thread>
#include <vector>

#include "gtest/gtest.h"
#include "process/internal/test_util.h"
#include "process/leak_check.h"

namespace mp {
namespace pool_internal {
namespace {

using Slot = std::atomic<uint64_t>*;

Slot MustTake() {
  absl::StatusOr<Slot> slot = WorkerSlots::Take();
  EXPECT_TRUE(slot.ok()) << slot.status();
  return slot.ok() ? *slot : nullptr;
}

using ::mp::testing::ForkChild;
using ::mp::testing::WaitChild;

TEST(WorkerSlotsTest, DistinctZeroedAndReusedWithoutNewPages) {
  Slot a = MustTake();
  Slot b = MustTake();
  ASSERT_NE(a, nullptr);
  ASSERT_NE(b, nullptr);
  EXPECT_NE(a, b);
  EXPECT_EQ(a->load(), 0u);
  EXPECT_EQ(b->load(), 0u);
  a->store(77);
  const int pages = WorkerSlots::PagesMappedForTesting();
  EXPECT_GE(pages, 1);
  WorkerSlots::Give(a);
  Slot again = MustTake();
  EXPECT_EQ(again, a);          // the lowest free slot
  EXPECT_EQ(again->load(), 0u);  // zeroed for its new worker
  EXPECT_EQ(WorkerSlots::PagesMappedForTesting(), pages);
  WorkerSlots::Give(again);
  WorkerSlots::Give(b);
}

TEST(WorkerSlotsTest, MoreThanOnePageThenEveryPageReused) {
  const int n = 2 * WorkerSlots::kSlotsPerPage + 100;
  std::vector<Slot> slots;
  for (int i = 0; i < n; ++i) slots.push_back(MustTake());
  EXPECT_EQ(std::set<Slot>(slots.begin(), slots.end()).size(),
            static_cast<size_t>(n));
  const int pages = WorkerSlots::PagesMappedForTesting();
  EXPECT_GE(pages, 3);
  for (Slot s : slots) WorkerSlots::Give(s);
  for (int round = 0; round < 3; ++round) {
    std::vector<Slot> more;
    for (int i = 0; i < n; ++i) more.push_back(MustTake());
    for (Slot s : more) WorkerSlots::Give(s);
  }
  EXPECT_EQ(WorkerSlots::PagesMappedForTesting(), pages);
}

TEST(WorkerSlotsTest, AForkedWorkerWritesWhatThePoolReads) {
  testing::LeakCheck leaks;
  Slot slot = MustTake();
  ASSERT_NE(slot, nullptr);
  EXPECT_EQ(WaitChild(ForkChild([slot] {
              slot->store(0xfeedULL);
              return 0;
            })),
            0);
  EXPECT_EQ(slot->load(), 0xfeedULL);
  WorkerSlots::Give(slot);
  EXPECT_TRUE(leaks.Verify().ok()) << leaks.Verify();
}

TEST(WorkerSlotsTest, AForkedChildMapsPagesOfItsOwn) {
  testing::LeakCheck leaks;
  Slot parents = MustTake();
  ASSERT_NE(parents, nullptr);
  // The child inherits the parent's pages but owns none of them: its slots
  // come from a page it maps itself, so it can never be handed a slot the
  // parent gives to one of its own workers.
  EXPECT_EQ(WaitChild(ForkChild([parents] {
              if (WorkerSlots::PagesMappedForTesting() != 0) return 1;
              absl::StatusOr<Slot> mine = WorkerSlots::Take();
              if (!mine.ok()) return 2;
              if (WorkerSlots::PagesMappedForTesting() != 1) return 3;
              if (*mine == parents) return 4;
              (*mine)->store(5);
              // Giving back a slot of a page it does not own does nothing.
              WorkerSlots::Give(parents);
              absl::StatusOr<Slot> next = WorkerSlots::Take();
              if (!next.ok() || *next == parents) return 5;
              return 0;
            })),
            0);
  EXPECT_EQ(parents->load(), 0u);
  WorkerSlots::Give(parents);
  EXPECT_TRUE(leaks.Verify().ok()) << leaks.Verify();
}

TEST(WorkerSlotsTest, GiveIgnoresWhatTakeDidNotReturn) {
  std::atomic<uint64_t> not_a_slot{3};
  WorkerSlots::Give(&not_a_slot);
  WorkerSlots::Give(nullptr);
  EXPECT_EQ(not_a_slot.load(), 3u);
  Slot a = MustTake();
  Slot b = MustTake();
  EXPECT_NE(a, b);
  WorkerSlots::Give(a);
  WorkerSlots::Give(b);
}

TEST(WorkerSlotsTest, ThreadsNeverShareASlot) {
  // Each thread marks the slots it holds with its own token and checks the
  // mark is intact before giving them back: a slot handed out twice at once
  // would carry another thread's token.
  constexpr int kThreads = 4;
  std::vector<std::thread> threads;
  std::atomic<int> clashes{0};
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([t, &clashes] {
      for (int round = 0; round < 2000; ++round) {
        Slot held[8];
        for (int i = 0; i < 8; ++i) {
          held[i] = MustTake();
          if (held[i] == nullptr) return;
          held[i]->store(static_cast<uint64_t>(t + 1) << 32 | i);
        }
        for (int i = 0; i < 8; ++i) {
          if (held[i]->load() != (static_cast<uint64_t>(t + 1) << 32 | i)) {
            clashes.fetch_add(1);
          }
          WorkerSlots::Give(held[i]);
        }
      }
    });
  }
  for (std::thread& th : threads) th.join();
  EXPECT_EQ(clashes.load(), 0);
}

}  // namespace
}  // namespace pool_internal
}  // namespace mp
