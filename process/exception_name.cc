#include "process/exception_name.h"

#include <cxxabi.h>

#include <cstdlib>
#include <typeinfo>

namespace mp {

std::string DemangledTypeName(const char* mangled) {
  int status = 0;
  char* d = abi::__cxa_demangle(mangled, nullptr, nullptr, &status);
  if (d == nullptr) return mangled;
  std::string out = d;
  std::free(d);
  return out;
}

std::string CurrentExceptionTypeName() {
  std::type_info* type = abi::__cxa_current_exception_type();
  if (type == nullptr) return "unknown exception";
  return DemangledTypeName(type->name());
}

}  // namespace mp
