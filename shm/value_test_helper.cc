// Test helper for value_test: an exec'd process (like a spawn child) that
// attaches by name.
//   value_test_helper value-add NAME N    N x (lock, value += 1, unlock)
//   value_test_helper array-square NAME   a[i] = i * i for every i
#include <cstdio>
#include <cstdlib>
#include <string>

#include "shm/array.h"
#include "shm/value.h"
#include "sync/guard.h"

int main(int argc, char** argv) {
  if (argc < 3) return 2;
  const std::string mode = argv[1];
  if (mode == "value-add" && argc == 4) {
    absl::StatusOr<mp::Value<int64_t>> v = mp::Value<int64_t>::Attach(argv[2]);
    if (!v.ok()) {
      std::fprintf(stderr, "%s\n", v.status().ToString().c_str());
      return 1;
    }
    const int n = std::atoi(argv[3]);
    for (int i = 0; i < n; ++i) {
      mp::Guard g(*v->GetLock());
      v->value() += 1;
    }
    return 0;
  }
  if (mode == "array-square") {
    absl::StatusOr<mp::Array<int32_t>> a = mp::Array<int32_t>::Attach(argv[2]);
    if (!a.ok()) return 1;
    for (size_t i = 0; i < a->size(); ++i) {
      if (!a->Set(i, static_cast<int32_t>(i * i)).ok()) return 3;
    }
    return 0;
  }
  return 2;
}
