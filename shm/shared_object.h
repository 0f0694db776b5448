// -----------------------------------------------------------------------------
// File: shm/shared_object.h
// -----------------------------------------------------------------------------
//
// `mp::SharedObject<T>` places one `T` in its own `SharedMemory` segment, so
// that processes started with any start method can use it: a fork child
// inherits the mapping, a spawn or forkserver child (or any program)
// attaches by name. This is how mp's synchronization primitives are shared:
//
//   absl::StatusOr<mp::SharedObject<mp::Lock>> lock =
//       mp::SharedObject<mp::Lock>::Create();
//   std::string name = lock->name();             // pass to the child
//   // in the child:
//   absl::StatusOr<mp::SharedObject<mp::Lock>> same =
//       mp::SharedObject<mp::Lock>::Attach(name);
//   (*same)->Acquire();
//
// `T` must be standard-layout and trivially destructible (no pointers into
// process memory; its destructor never runs): mp::Lock, RLock, Semaphore,
// BoundedSemaphore, Condition, Event, Barrier, and plain structs of them and
// of trivially copyable data. The creator constructs it once; `Attach()`
// checks that the segment holds a constructed object of the same type.
// The creator owns the segment (see shm/shared_memory.h).

#ifndef MP_SHM_SHARED_OBJECT_H_
#define MP_SHM_SHARED_OBJECT_H_

#include <atomic>
#include <cstdint>
#include <new>
#include <string>
#include <type_traits>
#include <utility>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "shm/internal/type_id.h"
#include "shm/shared_memory.h"

namespace mp {
namespace shm_internal {

constexpr uint64_t kSharedObjectMagic = 0x6a624f6465726853ull;  // "ShredObj"

struct alignas(64) SharedObjectHeader {
  uint64_t magic;
  uint64_t type_id;
  uint64_t size;  // sizeof(T)
  std::atomic<uint32_t> ready;
};

}  // namespace shm_internal

template <typename T>
class SharedObject {
  static_assert(std::is_standard_layout<T>::value,
                "a shared object must be standard-layout");
  static_assert(std::is_trivially_destructible<T>::value,
                "a shared object's destructor would never run");
  static_assert(alignof(T) <= 64, "over-aligned shared object");

 public:
  SharedObject() = default;

  // SharedObject::Create()
  //
  // Makes a new segment (named `psm_<hex>`) holding `T(args...)`.
  // Errors: those of `SharedMemory::Create()`.
  template <typename... Args>
  static absl::StatusOr<SharedObject> Create(Args&&... args) {
    return CreateNamed("", std::forward<Args>(args)...);
  }

  // SharedObject::CreateNamed(): `Create()` with a chosen segment name.
  template <typename... Args>
  static absl::StatusOr<SharedObject> CreateNamed(absl::string_view name,
                                                  Args&&... args) {
    absl::StatusOr<SharedMemory> shm =
        SharedMemory::Create(sizeof(Header) + sizeof(T), name);
    if (!shm.ok()) return shm.status();
    auto* h = new (shm->data()) Header();
    h->magic = shm_internal::kSharedObjectMagic;
    h->type_id = shm_internal::TypeId<T>();
    h->size = sizeof(T);
    new (shm->data() + sizeof(Header)) T(std::forward<Args>(args)...);
    h->ready.store(1, std::memory_order_release);
    return SharedObject(*std::move(shm));
  }

  // SharedObject::Attach()
  //
  // Maps the segment `name` and checks it holds a constructed `T`.
  // Errors: `kNotFound`; `kInvalidArgument` when the segment holds something
  // else (another type, not a SharedObject); `kUnavailable` when its creator
  // has not finished constructing it.
  static absl::StatusOr<SharedObject> Attach(absl::string_view name) {
    absl::StatusOr<SharedMemory> shm = SharedMemory::Attach(name);
    if (!shm.ok()) return shm.status();
    if (shm->size() < sizeof(Header) + sizeof(T)) {
      return absl::InvalidArgumentError(absl::StrCat(
          "shared memory '", shm->name(), "' is too small for this object"));
    }
    const auto* h = reinterpret_cast<const Header*>(shm->data());
    if (h->magic != shm_internal::kSharedObjectMagic ||
        h->type_id != shm_internal::TypeId<T>() || h->size != sizeof(T)) {
      return absl::InvalidArgumentError(absl::StrCat(
          "shared memory '", shm->name(), "' does not hold an object of this type"));
    }
    if (h->ready.load(std::memory_order_acquire) != 1) {
      return absl::UnavailableError(absl::StrCat(
          "shared object '", shm->name(), "' is not constructed yet"));
    }
    return SharedObject(*std::move(shm));
  }

  T* get() const {
    return memory_.mapped()
               ? reinterpret_cast<T*>(memory_.data() + sizeof(Header))
               : nullptr;
  }
  T& operator*() const { return *get(); }
  T* operator->() const { return get(); }
  const std::string& name() const { return memory_.name(); }
  SharedMemory& memory() { return memory_; }

 private:
  using Header = shm_internal::SharedObjectHeader;
  explicit SharedObject(SharedMemory memory) : memory_(std::move(memory)) {}

  SharedMemory memory_;
};

}  // namespace mp

#endif  // MP_SHM_SHARED_OBJECT_H_
