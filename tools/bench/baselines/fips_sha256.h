// The hand-written SHA-256 (FIPS 180-4) that backends/functions/sha256.cc
// held until libcrypto replaced it (docs/benchmarks.md, "Libraries against
// hand-written code"). Kept here only as libs_bench's baseline, so that the
// comparison that retired it can be run again; nothing else links it.
#ifndef DROVER_TOOLS_BENCH_BASELINES_FIPS_SHA256_H_
#define DROVER_TOOLS_BENCH_BASELINES_FIPS_SHA256_H_

#include <array>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace drover::bench {

// Incremental hashing: Update any number of times, then Finish once.
class FipsSha256 {
 public:
  using Digest = std::array<uint8_t, 32>;

  FipsSha256();
  void Update(const void* data, size_t size);
  void Update(std::string_view data) { Update(data.data(), data.size()); }
  // The digest of everything given to Update. The object must not be used
  // afterwards.
  Digest Finish();

  // Lower-case hex of `digest` (64 characters).
  static std::string Hex(const Digest& digest);
  // Hex digest of `data` in one go.
  static std::string HexOf(std::string_view data);

 private:
  void Block(const uint8_t* block);

  std::array<uint32_t, 8> h_;
  std::array<uint8_t, 64> buffer_{};
  size_t buffered_ = 0;
  uint64_t total_bytes_ = 0;
};

}  // namespace drover::bench

#endif  // DROVER_TOOLS_BENCH_BASELINES_FIPS_SHA256_H_
