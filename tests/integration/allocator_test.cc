// The allocator of drover's programs (cmake/Malloc.cmake,
// core/base/allocator.h): the drover binary says which malloc it runs on,
// and ReleaseFreeMemory gives freed pages back to the system on it. This
// test binary links the same allocator as the drover binary.
#include "core/base/allocator.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "tests/integration/cli_test_util.h"

namespace drover {
namespace {

using testing::kDeadline;
using testing::MakeTempDir;
using testing::ProcessResult;
using testing::RunProcess;

constexpr bool kWithTcmalloc = DROVER_WITH_TCMALLOC;

// The resident set of this process, in bytes (/proc/self/statm).
long long ResidentBytes() {
  std::ifstream statm("/proc/self/statm");
  long long pages = 0, resident = 0;
  statm >> pages >> resident;
  return resident * ::sysconf(_SC_PAGESIZE);
}

TEST(AllocatorTest, TheDroverBinaryNamesItsMalloc) {
  const std::filesystem::path dir = MakeTempDir("drover-allocator");
  ASSERT_FALSE(dir.empty());
  ProcessResult r = RunProcess({DROVER_BIN, "--version"}, dir, dir, kDeadline);
  std::filesystem::remove_all(dir);
  ASSERT_EQ(r.exit_code, 0) << r.Describe();
  EXPECT_NE(r.out.find("drover "), std::string::npos) << r.out;
  EXPECT_NE(r.out.find(kWithTcmalloc ? "\nmalloc: tcmalloc " : "\nmalloc: glibc\n"),
            std::string::npos)
      << r.out;
}

TEST(AllocatorTest, ThisProcessRunsOnTheMallocTheBuildLinks) {
  const std::string name = AllocatorName();
  if (kWithTcmalloc) {
    EXPECT_EQ(name.rfind("tcmalloc ", 0), 0u) << name;
  } else {
    EXPECT_EQ(name, "glibc");
  }
}

// 64 MiB in blocks of 16 KiB (below every mmap threshold: they come from
// the allocator's own pages), written so that they are resident, then
// freed. TCMalloc keeps freed pages and returns them only gradually, while
// the process allocates; the coordinator that drops a peer must not keep
// its buffers that long.
TEST(AllocatorTest, FreedMemoryGoesBackToTheSystem) {
  constexpr size_t kBlock = 16 * 1024;
  constexpr size_t kBlocks = 4096;
  ReleaseFreeMemory();
  const long long before = ResidentBytes();
  std::vector<void*> blocks;
  blocks.reserve(kBlocks);
  for (size_t i = 0; i < kBlocks; ++i) {
    void* block = std::malloc(kBlock);
    ASSERT_NE(block, nullptr);
    std::memset(block, static_cast<int>(i), kBlock);
    blocks.push_back(block);
  }
  const long long held = ResidentBytes();
  ASSERT_GE(held - before, static_cast<long long>(kBlock * kBlocks) / 2)
      << "the blocks were never resident: nothing to measure";
  for (void* block : blocks) std::free(block);
  ReleaseFreeMemory();
  EXPECT_LT(ResidentBytes() - before, 8ll << 20)
      << "before " << before << ", with the blocks " << held << ", after their release "
      << ResidentBytes();
}

}  // namespace
}  // namespace drover
