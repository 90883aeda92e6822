// SHA-256 over libcrypto (OpenSSL's EVP interface), the one hash of the
// artifact store: a blob's name is the sha256 of its content.
//
// Details callers may rely on:
//  - Sha256 is incremental: Update any number of times, then Final once.
//    After Final the object must not be updated again.
//  - Digests are 64 lowercase hex digits.
//  - Not thread-safe; one owner. Cheap to move.
#ifndef DROVER_CORE_ARTIFACTS_SHA256_H_
#define DROVER_CORE_ARTIFACTS_SHA256_H_

#include <filesystem>
#include <memory>
#include <string>
#include <string_view>

#include "core/base/status.h"

namespace drover::artifacts {

class Sha256 {
 public:
  Sha256();
  ~Sha256();
  Sha256(Sha256&&) noexcept;
  Sha256& operator=(Sha256&&) noexcept;

  void Update(std::string_view data);
  // The hex digest of everything given to Update.
  std::string Final();

 private:
  struct Ctx;
  std::unique_ptr<Ctx> ctx_;
};

// The hex sha256 of `data`.
std::string Sha256Hex(std::string_view data);
// The hex sha256 of the file at `path`, read in 1 MiB blocks. kIoError
// naming the file when it cannot be read.
Result<std::string> Sha256File(const std::filesystem::path& path);
// Whether `text` is 64 lowercase hex digits.
bool IsSha256Hex(std::string_view text);

}  // namespace drover::artifacts

#endif  // DROVER_CORE_ARTIFACTS_SHA256_H_
