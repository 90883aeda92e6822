// Fuzz target: the HTTP request parser of `drover serve`
// (ParseHttpRequest), which reads whatever a client sends to a service,
// and the sort handler's number reader (SortNumbers) on the bodies it
// finds.
//
// The input is the byte stream of one connection: it is parsed request
// after request, as the server does, until the parser needs more bytes or
// answers an error. Besides not crashing, it checks that each request
// takes at least one byte and no more than what is there, that its body
// lies inside it within the limit, and that an error is one of the
// documented statuses. The input is then parsed again in two pieces, split
// where its first byte says, so that every request is also seen arriving
// in parts: a request found whole is found the same way in parts.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

// The header moves with the HTTP server (its library is named once in
// tests/fuzz/CMakeLists.txt).
#include "backends/services/http_server.h"
#include "tests/fuzz/fuzz_check.h"

namespace {

using drover::services::HttpRequestParse;
using drover::services::ParseHttpRequest;

constexpr size_t kMaxBody = 4096;

// The requests of `in` and how the stream ends, as one string.
std::string ParseAll(std::string_view in) {
  std::string trace;
  while (true) {
    const HttpRequestParse r = ParseHttpRequest(in, kMaxBody);
    switch (r.state) {
      case HttpRequestParse::State::kIncomplete:
        return trace + "incomplete";
      case HttpRequestParse::State::kError:
        FUZZ_CHECK(r.status == 400 || r.status == 413 || r.status == 431 || r.status == 501);
        FUZZ_CHECK(!r.reason.empty());
        return trace + "error " + std::to_string(r.status);
      case HttpRequestParse::State::kRequest:
        break;
    }
    FUZZ_CHECK(r.size > 0 && r.size <= in.size());
    FUZZ_CHECK(r.body.size() <= kMaxBody);
    FUZZ_CHECK(r.body.data() >= in.data() &&
               r.body.data() + r.body.size() == in.data() + r.size);
    (void)drover::services::SortNumbers(r.body);
    trace += "request " + std::to_string(r.size) + (r.keep_alive ? " keep-alive\n" : "\n");
    in.remove_prefix(r.size);
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view in(reinterpret_cast<const char*>(data), size);
  const std::string whole = ParseAll(in);
  // The same bytes arriving in two reads: the parser sees the first part
  // alone, then all of it (the server keeps unparsed bytes).
  if (size > 0) {
    const size_t split = data[0] % size;
    const std::string first = ParseAll(in.substr(0, split));
    // What was complete in the first part was already the same requests.
    const size_t done = first.rfind('\n');
    if (done != std::string::npos) FUZZ_CHECK(whole.compare(0, done + 1, first, 0, done + 1) == 0);
  }
  return 0;
}
