// -----------------------------------------------------------------------------
// File: shm/internal/type_id.h
// -----------------------------------------------------------------------------
//
// `TypeId<T>()`: a 64-bit id of a C++ type, equal in every process built
// from the same sources by the same compiler, so a segment can record what
// it holds and an attaching process can check it.
//
//   if (header->type_id != shm_internal::TypeId<T>()) return error;

#ifndef MP_SHM_INTERNAL_TYPE_ID_H_
#define MP_SHM_INTERNAL_TYPE_ID_H_

#include <cstdint>

namespace mp {
namespace shm_internal {

template <typename T>
uint64_t TypeId() {
  static const uint64_t id = [] {
    uint64_t h = 1469598103934665603ull;  // FNV-1a of the signature
    for (const char* p = __PRETTY_FUNCTION__; *p; ++p) {
      h = (h ^ static_cast<unsigned char>(*p)) * 1099511628211ull;
    }
    return h ^ sizeof(T);
  }();
  return id;
}

}  // namespace shm_internal
}  // namespace mp

#endif  // MP_SHM_INTERNAL_TYPE_ID_H_
