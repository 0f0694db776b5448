// -----------------------------------------------------------------------------
// File: shm/array.h
// -----------------------------------------------------------------------------
//
// `mp::Array<T>` is a fixed-size array in shared memory with a lock (Python:
// `multiprocessing.Array`); `mp::RawArray<T>` is the same without a lock
// (Python: `multiprocessing.sharedctypes.RawArray`). `T` must be trivially
// copyable. A fork child inherits it; a spawn/forkserver child attaches by
// `name()`.
//
//   absl::StatusOr<mp::Array<double>> a = mp::Array<double>::Create({1, 2, 3});
//   (*a)[0] = 5;                               // unsynchronized element
//   a->Set(1, 7);                              // one element, under the lock
//   std::vector<double> part = *a->Slice(0, 2);   // {5, 7}, copied under the lock
//   for (double& x : *a) x *= 2;               // iteration (unsynchronized)
//   { mp::Guard g(*a->GetLock()); ... }        // several steps atomically
//
// The creator owns the segment (see shm/shared_memory.h).

#ifndef MP_SHM_ARRAY_H_
#define MP_SHM_ARRAY_H_

#include <cstring>
#include <initializer_list>
#include <string>
#include <type_traits>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "absl/types/span.h"
#include "shm/internal/block.h"
#include "shm/internal/type_id.h"
#include "sync/rlock.h"

namespace mp {

template <typename T>
class Array {
  static_assert(std::is_trivially_copyable<T>::value,
                "Array<T> needs a trivially copyable T");

 public:
  Array() = default;

  // Array::Create()
  //
  // `size` zero-filled elements, or a copy of `init` (Python's
  // `Array(typecode, size_or_initializer, lock)`). With `lock = false` there
  // is no lock (`GetLock()` is nullptr).
  // Errors: `kInvalidArgument` when the size overflows; those of
  // `SharedMemory::Create()`.
  static absl::StatusOr<Array> Create(size_t size, bool lock = true) {
    return Make(size, nullptr, lock);
  }
  static absl::StatusOr<Array> Create(absl::Span<const T> init,
                                      bool lock = true) {
    return Make(init.size(), init.data(), lock);
  }
  static absl::StatusOr<Array> Create(std::initializer_list<T> init,
                                      bool lock = true) {
    return Make(init.size(), init.begin(), lock);
  }

  // Array::Attach()
  //
  // Maps the Array created as `name`. Errors: `kNotFound`;
  // `kInvalidArgument` when `name` holds another element type or is not an
  // mp Value/Array segment.
  static absl::StatusOr<Array> Attach(absl::string_view name) {
    absl::StatusOr<shm_internal::Block> b =
        shm_internal::AttachBlockOf<T>(name);
    if (!b.ok()) return b.status();
    return Array(*std::move(b));
  }

  size_t size() const { return block_.count(); }

  // Unsynchronized access (hold `GetLock()` for multi-step updates).
  T& operator[](size_t i) const { return data()[i]; }
  T* data() const { return static_cast<T*>(block_.data()); }
  T* begin() const { return data(); }
  T* end() const { return data() + size(); }
  absl::Span<T> span() const { return absl::Span<T>(data(), size()); }

  // Array::Get() / Set()
  //
  // One element under the lock. Errors: `kOutOfRange` for `i >= size()`.
  absl::StatusOr<T> Get(size_t i) const {
    if (i >= size()) return OutOfRange(i);
    Locker l(GetLock());
    return data()[i];
  }
  absl::Status Set(size_t i, const T& v) {
    if (i >= size()) return OutOfRange(i);
    Locker l(GetLock());
    data()[i] = v;
    return absl::OkStatus();
  }

  // Array::Slice()
  //
  // A copy of elements [begin, end), taken under the lock (Python's
  // `a[begin:end]`). Errors: `kOutOfRange` unless begin <= end <= size().
  absl::StatusOr<std::vector<T>> Slice(size_t begin, size_t end) const {
    if (begin > end || end > size()) {
      return absl::OutOfRangeError(absl::StrCat(
          "Array slice [", begin, ", ", end, ") of an array of ", size()));
    }
    Locker l(GetLock());
    return std::vector<T>(data() + begin, data() + end);
  }

  // Array::SetSlice()
  //
  // Copies `values` to [begin, begin + values.size()) under the lock
  // (Python's `a[i:j] = ...`). Errors: `kOutOfRange` when it does not fit.
  absl::Status SetSlice(size_t begin, absl::Span<const T> values) {
    if (begin > size() || values.size() > size() - begin) {
      return absl::OutOfRangeError(absl::StrCat(
          "Array slice of ", values.size(), " at ", begin, " does not fit in ",
          size()));
    }
    Locker l(GetLock());
    if (!values.empty()) {
      std::memmove(data() + begin, values.data(), values.size() * sizeof(T));
    }
    return absl::OkStatus();
  }

  // Array::GetLock(): the lock (Python's `get_lock()`), or nullptr.
  RLock* GetLock() const { return block_.lock(); }
  const std::string& name() const { return block_.name(); }
  SharedMemory& memory() { return block_.memory(); }

 private:
  using Locker = shm_internal::LockIfAny;
  static absl::StatusOr<Array> Make(size_t n, const T* init, bool lock) {
    absl::StatusOr<shm_internal::Block> b =
        shm_internal::CreateBlockOf<T>(n, init, lock);
    if (!b.ok()) return b.status();
    return Array(*std::move(b));
  }
  absl::Status OutOfRange(size_t i) const {
    return absl::OutOfRangeError(
        absl::StrCat("Array index ", i, " out of range (size ", size(), ")"));
  }
  explicit Array(shm_internal::Block b) : block_(std::move(b)) {}
  shm_internal::Block block_;
};

// `mp::RawArray<T>`: an `Array<T>` without a lock.
template <typename T>
class RawArray : public Array<T> {
 public:
  RawArray() = default;
  static absl::StatusOr<RawArray> Create(size_t size) {
    return Wrap(Array<T>::Create(size, false));
  }
  static absl::StatusOr<RawArray> Create(std::initializer_list<T> init) {
    return Wrap(Array<T>::Create(init, false));
  }
  static absl::StatusOr<RawArray> Create(absl::Span<const T> init) {
    return Wrap(Array<T>::Create(init, false));
  }
  static absl::StatusOr<RawArray> Attach(absl::string_view name) {
    return Wrap(Array<T>::Attach(name));
  }

 private:
  explicit RawArray(Array<T> a) : Array<T>(std::move(a)) {}
  static absl::StatusOr<RawArray> Wrap(absl::StatusOr<Array<T>> a) {
    if (!a.ok()) return a.status();
    return RawArray(*std::move(a));
  }
};

}  // namespace mp

#endif  // MP_SHM_ARRAY_H_
