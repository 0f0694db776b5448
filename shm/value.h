// -----------------------------------------------------------------------------
// File: shm/value.h
// -----------------------------------------------------------------------------
//
// `mp::Value<T>` is one `T` in shared memory with a lock (Python:
// `multiprocessing.Value`); `mp::RawValue<T>` is the same without a lock
// (Python: `multiprocessing.sharedctypes.RawValue`). `T` must be trivially
// copyable. Children of every start method can use it: a fork child
// inherits the mapping, a spawn/forkserver child attaches by `name()`.
//
//   absl::StatusOr<mp::Value<int64_t>> counter = mp::Value<int64_t>::Create(0);
//   // any process:  (or  mp::Value<int64_t>::Attach(name)  after exec)
//   {
//     mp::Guard g(*counter->GetLock());       // Python: with v.get_lock():
//     counter->value() += 1;                  //           v.value += 1
//   }
//   int64_t now = counter->Get();             // one locked read
//
// `Get()`/`Set()` take the lock for the one read or write, as Python's
// `.value` does — so `v.Set(v.Get() + 1)` is not atomic; hold `GetLock()`.
// The lock is a robust `mp::RLock`: if a holder dies, `Get`/`Set` go on
// (the value is whatever the dead process last wrote).
// The creator owns the segment (see shm/shared_memory.h).

#ifndef MP_SHM_VALUE_H_
#define MP_SHM_VALUE_H_

#include <cstring>
#include <string>
#include <type_traits>

#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "shm/internal/block.h"
#include "shm/internal/type_id.h"
#include "sync/rlock.h"

namespace mp {

template <typename T>
class Value {
  static_assert(std::is_trivially_copyable<T>::value,
                "Value<T> needs a trivially copyable T");

 public:
  Value() = default;

  // Value::Create()
  //
  // A new segment holding `initial`. With `lock = false` the value has no
  // lock (`GetLock()` is nullptr), like Python's `Value(..., lock=False)`.
  // Errors: those of `SharedMemory::Create()`.
  static absl::StatusOr<Value> Create(const T& initial = T(), bool lock = true) {
    absl::StatusOr<shm_internal::Block> b =
        shm_internal::CreateBlockOf<T>(1, &initial, lock);
    if (!b.ok()) return b.status();
    return Value(*std::move(b));
  }

  // Value::Attach()
  //
  // Maps the Value created as `name` (in another process).
  // Errors: `kNotFound`; `kInvalidArgument` when `name` holds something else
  // (another type, an Array, not an mp segment).
  static absl::StatusOr<Value> Attach(absl::string_view name) {
    absl::StatusOr<shm_internal::Block> b =
        shm_internal::AttachBlockOf<T>(name);
    if (!b.ok()) return b.status();
    if (b->count() != 1) {
      return absl::InvalidArgumentError(
          absl::StrCat("'", name, "' holds an Array, not a Value"));
    }
    return Value(*std::move(b));
  }

  // Value::Get() / Set(): one read or write under the lock (if any).
  T Get() const {
    Locker l(GetLock());
    T out;
    std::memcpy(&out, block_.data(), sizeof(T));
    return out;
  }
  void Set(const T& v) {
    Locker l(GetLock());
    std::memcpy(block_.data(), &v, sizeof(T));
  }

  // Value::value(): the shared object itself, unsynchronized (hold
  // `GetLock()` for read-modify-write).
  T& value() const { return *static_cast<T*>(block_.data()); }

  // Value::GetLock(): the lock (Python's `get_lock()`), or nullptr.
  RLock* GetLock() const { return block_.lock(); }

  const std::string& name() const { return block_.name(); }
  SharedMemory& memory() { return block_.memory(); }

 private:
  using Locker = shm_internal::LockIfAny;
  explicit Value(shm_internal::Block b) : block_(std::move(b)) {}
  shm_internal::Block block_;
};

// `mp::RawValue<T>`: a `Value<T>` without a lock.
template <typename T>
class RawValue {
 public:
  RawValue() = default;
  static absl::StatusOr<RawValue> Create(const T& initial = T()) {
    absl::StatusOr<Value<T>> v = Value<T>::Create(initial, /*lock=*/false);
    if (!v.ok()) return v.status();
    return RawValue(*std::move(v));
  }
  static absl::StatusOr<RawValue> Attach(absl::string_view name) {
    absl::StatusOr<Value<T>> v = Value<T>::Attach(name);
    if (!v.ok()) return v.status();
    return RawValue(*std::move(v));
  }
  T Get() const { return v_.value(); }
  void Set(const T& x) { v_.value() = x; }
  T& value() const { return v_.value(); }
  const std::string& name() const { return v_.name(); }
  SharedMemory& memory() { return v_.memory(); }

 private:
  explicit RawValue(Value<T> v) : v_(std::move(v)) {}
  Value<T> v_;
};

}  // namespace mp

#endif  // MP_SHM_VALUE_H_
