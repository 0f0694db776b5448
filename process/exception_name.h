// -----------------------------------------------------------------------------
// File: process/exception_name.h
// -----------------------------------------------------------------------------
//
// Readable names of exception types, for the messages that report an
// exception thrown in a child process or a pool worker:
//
//   try {
//     task();
//   } catch (const std::exception& e) {
//     report(mp::CurrentExceptionTypeName() + ": " + e.what());
//     // "std::out_of_range: vector::_M_range_check: ..."
//   } catch (...) {
//     report(mp::CurrentExceptionTypeName());  // "MyError", "int"
//   }

#ifndef MP_PROCESS_EXCEPTION_NAME_H_
#define MP_PROCESS_EXCEPTION_NAME_H_

#include <string>

namespace mp {

// CurrentExceptionTypeName()
//
// The demangled type of the exception being handled (call it in a catch
// block); "unknown exception" outside one.
std::string CurrentExceptionTypeName();

// DemangledTypeName()
//
// The demangled form of a mangled type name (`typeid(x).name()`); the name
// as given when it does not demangle.
std::string DemangledTypeName(const char* mangled);

}  // namespace mp

#endif  // MP_PROCESS_EXCEPTION_NAME_H_
