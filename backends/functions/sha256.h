// SHA-256 (FIPS 180-4), small and dependency-free, for the `sha256`
// built-in. Tested against the FIPS 180-4 example vectors.
#ifndef DROVER_BACKENDS_FUNCTIONS_SHA256_H_
#define DROVER_BACKENDS_FUNCTIONS_SHA256_H_

#include <array>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace drover {

// Incremental hashing: Update any number of times, then Finish once.
class Sha256 {
 public:
  using Digest = std::array<uint8_t, 32>;

  Sha256();
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

}  // namespace drover

#endif  // DROVER_BACKENDS_FUNCTIONS_SHA256_H_
