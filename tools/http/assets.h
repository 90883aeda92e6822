// The dashboard's files (tools/http/assets/), embedded in the binary at
// build time (embed_assets.cmake), so that drover serves its page on a
// network without the internet.
#ifndef DROVER_TOOLS_HTTP_ASSETS_H_
#define DROVER_TOOLS_HTTP_ASSETS_H_

#include <string_view>

namespace drover::http {

struct Asset {
  const char* path;          // "/index.html"
  const char* content_type;  // "text/html; charset=utf-8"
  std::string_view body;
};

// The asset served at `path`, or nullptr.
const Asset* FindAsset(std::string_view path);

}  // namespace drover::http

#endif  // DROVER_TOOLS_HTTP_ASSETS_H_
