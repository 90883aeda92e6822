#include "core/artifacts/sha256.h"

#include <openssl/evp.h>

#include <fstream>
#include <vector>

namespace drover::artifacts {
namespace {

// SHA-256 fetched from the default provider once. EVP_sha256() would make
// every EVP_DigestInit_ex look it up again (OpenSSL 3's implicit fetch),
// about 250 ns a digest: more than hashing a short string takes. Never
// freed: it lives as long as the process. Should the fetch fail, the legacy
// handle is used and OpenSSL reports the failure at the first digest.
const EVP_MD* Sha256Md() {
  static const EVP_MD* const md = [] {
    const EVP_MD* fetched = EVP_MD_fetch(nullptr, "SHA256", nullptr);
    return fetched != nullptr ? fetched : EVP_sha256();
  }();
  return md;
}

std::string Hex(const unsigned char* digest, unsigned int n) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  out.reserve(2 * n);
  for (unsigned int i = 0; i < n; ++i) {
    out.push_back(kHex[digest[i] >> 4]);
    out.push_back(kHex[digest[i] & 0xF]);
  }
  return out;
}

}  // namespace

struct Sha256::Ctx {
  EVP_MD_CTX* md = nullptr;
  ~Ctx() { EVP_MD_CTX_free(md); }
};

Sha256::Sha256() : ctx_(std::make_unique<Ctx>()) {
  ctx_->md = EVP_MD_CTX_new();
  // Allocation failure is the only way these fail; the digest would then be
  // wrong and every receiver would refuse it, which is the safe outcome.
  if (ctx_->md != nullptr) (void)EVP_DigestInit_ex(ctx_->md, Sha256Md(), nullptr);
}
Sha256::~Sha256() = default;
Sha256::Sha256(Sha256&&) noexcept = default;
Sha256& Sha256::operator=(Sha256&&) noexcept = default;

void Sha256::Update(std::string_view data) {
  if (ctx_ && ctx_->md != nullptr && !data.empty()) {
    (void)EVP_DigestUpdate(ctx_->md, data.data(), data.size());
  }
}

std::string Sha256::Final() {
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int n = 0;
  if (!ctx_ || ctx_->md == nullptr || EVP_DigestFinal_ex(ctx_->md, digest, &n) != 1) {
    return std::string();
  }
  return Hex(digest, n);
}

std::string Sha256Hex(std::string_view data) {
  // One call, no context of ours to allocate. (A context kept per thread
  // and reused saves no more than 5%: OpenSSL 3 sets up its provider's
  // state on every init either way.)
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int n = 0;
  if (EVP_Digest(data.data(), data.size(), digest, &n, Sha256Md(), nullptr) != 1) {
    return std::string();
  }
  return Hex(digest, n);
}

Result<std::string> Sha256File(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return IoError("cannot read " + path.string());
  Sha256 h;
  std::vector<char> buf(1 << 20);
  while (in) {
    in.read(buf.data(), static_cast<std::streamsize>(buf.size()));
    h.Update(std::string_view(buf.data(), static_cast<size_t>(in.gcount())));
  }
  if (in.bad()) return IoError("cannot read " + path.string());
  return h.Final();
}

bool IsSha256Hex(std::string_view text) {
  if (text.size() != 64) return false;
  for (char c : text) {
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  }
  return true;
}

}  // namespace drover::artifacts
