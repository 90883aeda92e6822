// llhttp for libs_bench: Node's HTTP parser, the maintained successor of
// http-parser. Debian 12 ships it only as C sources (node-llhttp:
// /usr/share/llhttp/*.c), compiled here into the bench. Its names clash
// with http-parser's (HTTP_REQUEST, ...), so it has a file of its own.
#ifndef DROVER_TOOLS_BENCH_LIBS_LLHTTP_H_
#define DROVER_TOOLS_BENCH_LIBS_LLHTTP_H_

#include <cstddef>
#include <string_view>

namespace drover::bench {

// The version of the llhttp sources, e.g. "8.1.0".
const char* LlhttpVersion();

// Parses the request at the front of `in`; true with its size, body and
// keep-alive when a whole request is there.
bool LlhttpParse(std::string_view in, size_t* size, std::string_view* body,
                 bool* keep_alive);

}  // namespace drover::bench

#endif  // DROVER_TOOLS_BENCH_LIBS_LLHTTP_H_
