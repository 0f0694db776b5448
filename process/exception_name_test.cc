#include "process/exception_name.h"

#include <stdexcept>
#include <string>

#include "gtest/gtest.h"

namespace mp {
namespace {

struct LocalError {};

template <typename E>
std::string NameOfThrown(E e) {
  try {
    throw e;
  } catch (...) {
    return CurrentExceptionTypeName();
  }
}

TEST(ExceptionNameTest, NamesTheExceptionBeingHandled) {
  EXPECT_EQ(NameOfThrown(std::out_of_range("x")), "std::out_of_range");
  EXPECT_EQ(NameOfThrown(42), "int");
  EXPECT_EQ(NameOfThrown(LocalError()), "mp::(anonymous namespace)::LocalError");
  EXPECT_EQ(CurrentExceptionTypeName(), "unknown exception");
}

TEST(ExceptionNameTest, DemangledTypeNameKeepsWhatDoesNotDemangle) {
  EXPECT_EQ(DemangledTypeName(typeid(std::string).name()),
            "std::__cxx11::basic_string<char, std::char_traits<char>, "
            "std::allocator<char> >");
  EXPECT_EQ(DemangledTypeName("not a mangled name!"), "not a mangled name!");
}

}  // namespace
}  // namespace mp
