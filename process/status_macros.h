// -----------------------------------------------------------------------------
// File: process/status_macros.h
// -----------------------------------------------------------------------------
//
// `MP_RETURN_IF_ERROR` and `MP_ASSIGN_OR_RETURN`: early return on a non-OK
// `absl::Status`, which our abseil (20220623) does not provide yet.
//
//   absl::Status Connect() {
//     MP_RETURN_IF_ERROR(SetNonBlocking(fd));
//     MP_ASSIGN_OR_RETURN(mp::UniqueFd sock, OpenSocket());
//     return absl::OkStatus();
//   }

#ifndef MP_PROCESS_STATUS_MACROS_H_
#define MP_PROCESS_STATUS_MACROS_H_

#include <utility>

#include "absl/base/optimization.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"

// MP_RETURN_IF_ERROR(expr)
//
// Evaluates `expr` (an `absl::Status` or `absl::StatusOr<T>`) once and
// returns its status from the enclosing function when it is not OK.
#define MP_RETURN_IF_ERROR(expr)                                        \
  do {                                                                  \
    const absl::Status mp_status_ =                                     \
        ::mp::status_macros_internal::ToStatus(expr);                   \
    if (ABSL_PREDICT_FALSE(!mp_status_.ok())) return mp_status_;        \
  } while (0)

// MP_ASSIGN_OR_RETURN(lhs, expr)
//
// Evaluates `expr` (an `absl::StatusOr<T>`); on error returns its status from
// the enclosing function, otherwise move-assigns the value to `lhs`, which may
// be a declaration (`MP_ASSIGN_OR_RETURN(int n, Parse(s));`).
#define MP_ASSIGN_OR_RETURN(lhs, expr)                                     \
  MP_ASSIGN_OR_RETURN_IMPL_(MP_STATUS_MACROS_CONCAT_(mp_statusor_, __LINE__), \
                            lhs, expr)

#define MP_ASSIGN_OR_RETURN_IMPL_(statusor, lhs, expr)  \
  auto statusor = (expr);                               \
  if (ABSL_PREDICT_FALSE(!statusor.ok())) {             \
    return std::move(statusor).status();                \
  }                                                     \
  lhs = std::move(statusor).value()

#define MP_STATUS_MACROS_CONCAT_INNER_(x, y) x##y
#define MP_STATUS_MACROS_CONCAT_(x, y) MP_STATUS_MACROS_CONCAT_INNER_(x, y)

namespace mp {
namespace status_macros_internal {

inline const absl::Status& ToStatus(const absl::Status& s) { return s; }
template <typename T>
const absl::Status& ToStatus(const absl::StatusOr<T>& s) {
  return s.status();
}

}  // namespace status_macros_internal
}  // namespace mp

#endif  // MP_PROCESS_STATUS_MACROS_H_
