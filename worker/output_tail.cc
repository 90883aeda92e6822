#include "worker/output_tail.h"

#include <algorithm>
#include <fstream>
#include <system_error>

namespace drover {

std::string OutputTail::Read(size_t max_bytes) {
  if (path_.empty() || offset_ >= limit_) return {};
  std::error_code ec;
  const uint64_t size = std::filesystem::file_size(path_, ec);
  if (ec || size <= offset_) return {};
  const uint64_t end = std::min<uint64_t>({size, limit_, offset_ + max_bytes});
  std::ifstream in(path_, std::ios::binary);
  if (!in) return {};
  in.seekg(static_cast<std::streamoff>(offset_));
  std::string chunk(static_cast<size_t>(end - offset_), '\0');
  in.read(chunk.data(), static_cast<std::streamsize>(chunk.size()));
  chunk.resize(static_cast<size_t>(in.gcount()));
  offset_ += chunk.size();
  return chunk;
}

}  // namespace drover
