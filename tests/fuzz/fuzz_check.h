// FUZZ_CHECK: a property a fuzz target asserts about the code under test.
// A failure prints the property and aborts, which libFuzzer reports as a
// crash (and saves the input) and the regression ctest as a failure.
#ifndef DROVER_TESTS_FUZZ_FUZZ_CHECK_H_
#define DROVER_TESTS_FUZZ_FUZZ_CHECK_H_

#include <cstdio>
#include <cstdlib>

#define FUZZ_CHECK(cond)                                                          \
  do {                                                                            \
    if (!(cond)) {                                                                \
      std::fprintf(stderr, "%s:%d: FUZZ_CHECK failed: %s\n", __FILE__, __LINE__, \
                   #cond);                                                        \
      std::abort();                                                               \
    }                                                                             \
  } while (false)

#endif  // DROVER_TESTS_FUZZ_FUZZ_CHECK_H_
