// Feeds every committed input of one fuzz target to its entry function,
// built without libFuzzer (tests/fuzz/CMakeLists.txt): the crashers found
// so far (regressions/NAME/) and the seed corpus (corpus/NAME/). A
// regression shows as a crash, a sanitizer report or an abort of the
// target's own checks; the file being run is printed first, so the log
// names it.
#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include <gtest/gtest.h>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size);

namespace {

// The regular files of `dir`, sorted by name; none when it does not exist.
std::vector<std::filesystem::path> Inputs(const std::filesystem::path& dir) {
  std::vector<std::filesystem::path> files;
  std::error_code ec;
  for (const auto& entry : std::filesystem::directory_iterator(dir, ec)) {
    if (entry.is_regular_file()) files.push_back(entry.path());
  }
  std::sort(files.begin(), files.end());
  return files;
}

int RunAll(const std::filesystem::path& dir) {
  int count = 0;
  for (const std::filesystem::path& file : Inputs(dir)) {
    std::ifstream in(file, std::ios::binary);
    const std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    std::fprintf(stderr, "input %s (%zu bytes)\n", file.c_str(), bytes.size());
    LLVMFuzzerTestOneInput(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size());
    ++count;
  }
  return count;
}

// Given every crasher kept for this target, the entry function should
// return on each (no crash, no sanitizer report, no failed check).
TEST(DROVER_FUZZ_SUITE, EveryKeptCrasherRunsCleanly) { RunAll(DROVER_FUZZ_REGRESSIONS); }

// Given the seed corpus, the entry function should return on each input;
// the corpus is not empty.
TEST(DROVER_FUZZ_SUITE, EverySeedRunsCleanly) { EXPECT_GT(RunAll(DROVER_FUZZ_SEEDS), 0); }

}  // namespace
