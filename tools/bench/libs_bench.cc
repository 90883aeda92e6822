// libs_bench: drover's hand-written pieces against the Debian 12 libraries
// that do the same job, side by side in one process (issue 13, "Libraries
// before hand-written code"; results in docs/benchmarks.md).
//
//   sha256  the hand-written FIPS 180-4 code (tools/bench/baselines/, the
//           code libcrypto replaced) against libcrypto through
//           artifacts::Sha256, drover's one wrapper of OpenSSL's EVP
//   json    the fork channel's scanners (backends/fork/json_scan.h) against
//           simdjson 3.0: ValidateJson against simdjson's DOM parser and an
//           On-Demand walk that visits every value (both validate the whole
//           text and build nothing the caller keeps); drover's integer-array
//           reader (eight digits at a time) against an On-Demand array of
//           get_int64, as drover called it before (a padded copy) and at its
//           best (padded input), and against the first hand-written reader
//           (tools/bench/baselines/); small messages (the round trip) and the
//           1,000,000-number array of the issue's sort
//   http    `drover serve`'s request parser (ParseHttpRequest in
//           backends/services/http_server.h) against the parse-only HTTP/1.1
//           parsers Debian 12 packages: nodejs's http-parser 2.9.4
//           (libhttp-parser-dev), its successor llhttp 8.1 (node-llhttp, C
//           sources only) and Boost.Beast's basic_parser (Boost 1.81)
//
// Each contender first proves it gives the same answer as the hand-written
// code on the same input; then, for --runs rounds, each is timed in turn
// (interleaved) on that input, and the median is printed with the range
// and the ratio hand-written / library (above 1: the library is faster).
// Time is this thread's CPU time (CLOCK_THREAD_CPUTIME_ID), which unlike
// wall time does not count the moments another process holds the core.
// Asserts nothing: timings are never tests.
//
//   libs_bench [--runs R] [--only sha256|json|http]
#include <http_parser.h>
#include <openssl/opensslv.h>
#include <simdjson.h>
#include <time.h>

#include <algorithm>
#include <boost/beast/http/basic_parser.hpp>
#include <boost/beast/version.hpp>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <random>
#include <string>
#include <string_view>
#include <vector>

#include "backends/fork/json_scan.h"
#include "backends/services/http_server.h"
#include "core/artifacts/sha256.h"
#include "tools/bench/baselines/fips_sha256.h"
#include "tools/bench/baselines/hand_int_array.h"
#include "tools/bench/libs_llhttp.h"
#include "tools/bench/libs_ondemand.h"

namespace drover {
namespace {

namespace beast_http = boost::beast::http;

int g_runs = 5;
// Each timed sample runs the operation for about this long.
constexpr double kSampleSeconds = 0.05;
// Results are folded in here so the compiler cannot drop the work.
volatile uint64_t g_sink = 0;

double ThreadCpuSeconds() {
  timespec ts;
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) * 1e-9;
}

double Median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  const size_t n = v.size();
  return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

// One way of doing the operation: returns something that depends on the
// whole result (folded into g_sink).
struct Contender {
  std::string name;
  std::function<uint64_t()> run;
};

// ns per operation of `run`, over about kSampleSeconds.
double NsPerOp(const std::function<uint64_t()>& run, uint64_t iterations) {
  const double t0 = ThreadCpuSeconds();
  uint64_t sink = 0;
  for (uint64_t i = 0; i < iterations; ++i) sink += run();
  const double t1 = ThreadCpuSeconds();
  g_sink = g_sink + sink;
  return (t1 - t0) * 1e9 / static_cast<double>(iterations);
}

// Times every contender on one input, interleaved, --runs rounds. The
// first contender is the hand-written code; the ratio of each other one is
// hand-written ns / its ns. `bytes` > 0 adds a MB/s column.
void Compare(const std::string& title, size_t bytes,
             const std::vector<Contender>& contenders) {
  std::vector<uint64_t> iterations;
  for (const Contender& c : contenders) {
    // Warm up (caches, lazy initialisation) and size the sample.
    const double once = std::max(NsPerOp(c.run, 1), NsPerOp(c.run, 1));
    uint64_t n = static_cast<uint64_t>(kSampleSeconds * 1e9 / std::max(once, 1.0));
    n = std::max<uint64_t>(1, n);
    // Refine with a short pass: a first call is often far slower.
    const double est = NsPerOp(c.run, std::max<uint64_t>(1, n / 10));
    iterations.push_back(
        std::max<uint64_t>(3, static_cast<uint64_t>(kSampleSeconds * 1e9 / est)));
  }
  std::vector<std::vector<double>> samples(contenders.size());
  for (int r = 0; r < g_runs; ++r) {
    for (size_t i = 0; i < contenders.size(); ++i) {
      samples[i].push_back(NsPerOp(contenders[i].run, iterations[i]));
    }
  }
  std::printf("\n%s\n", title.c_str());
  std::printf("  %-46s %12s %12s %10s  %s\n", "contender", "ns/op", "range", "MB/s",
              "hand-written / it");
  const double base = Median(samples[0]);
  for (size_t i = 0; i < contenders.size(); ++i) {
    const double med = Median(samples[i]);
    const auto [lo, hi] = std::minmax_element(samples[i].begin(), samples[i].end());
    char range[64];
    std::snprintf(range, sizeof range, "%.0f-%.0f", *lo, *hi);
    char rate[32] = "-";
    if (bytes > 0)
      std::snprintf(rate, sizeof rate, "%.0f", static_cast<double>(bytes) / med * 1e3);
    std::printf("  %-46s %12.1f %12s %10s  %.2fx\n", contenders[i].name.c_str(), med,
                range, rate, base / med);
  }
}

[[noreturn]] void Mismatch(const std::string& what) {
  std::fprintf(stderr, "libs_bench: contenders disagree: %s\n", what.c_str());
  std::exit(1);
}

// ---- sha256 -------------------------------------------------------------------

uint64_t Fold(const std::string& hex) {
  return static_cast<unsigned char>(hex[0]) + hex.size();
}

void BenchSha256() {
  std::printf("\n== sha256: hand-written FIPS 180-4 vs libcrypto (%s) ==\n",
              OPENSSL_VERSION_TEXT);
  std::mt19937_64 rng(13);
  for (size_t size : {3ul, 55ul, 1024ul, 64ul << 10, 16ul << 20}) {
    std::string data(size, '\0');
    for (char& c : data) c = static_cast<char>(rng());
    if (bench::FipsSha256::HexOf(data) != artifacts::Sha256Hex(data)) {
      Mismatch("sha256 of " + std::to_string(size) + " bytes");
    }
    Compare("sha256 of " + std::to_string(size) + " bytes, one call (hex digest)", size,
            {{"hand-written FIPS 180-4 (FipsSha256::HexOf)",
              [&] { return Fold(bench::FipsSha256::HexOf(data)); }},
             {"libcrypto EVP (artifacts::Sha256Hex)",
              [&] { return Fold(artifacts::Sha256Hex(data)); }}});
  }
}

// ---- json -----------------------------------------------------------------------

void BenchJson() {
  const bool avx2 = __builtin_cpu_supports("avx2");
  std::printf(
      "\n== json: the fork channel's scanners (json_scan) vs simdjson %d.%d.%d ==\n",
      simdjson::SIMDJSON_VERSION_MAJOR, simdjson::SIMDJSON_VERSION_MINOR,
      simdjson::SIMDJSON_VERSION_REVISION);
  std::printf(
      "simdjson kernels: DOM %s (chosen at run time); On-Demand %s (portable build)%s\n",
      simdjson::get_active_implementation()->name().c_str(), bench::portable::Kernel(),
      avx2 ? (std::string(" and ") + bench::haswell::Kernel() + " (-march=haswell)")
                 .c_str()
           : ", no AVX2 here for the -march=haswell one");
  simdjson::dom::parser dom;

  // Small messages of a round trip: a task's message to a Node child and
  // the reply of a pool process.
  const std::vector<std::pair<std::string, std::string>> small = {
      {"message [1,5,2,3,4] (11 B)", "[1,5,2,3,4]"},
      {"a 180 B reply object",
       R"({"id":"sort-in-child","ok":true,"result":{"numbers":[1,2,3,4,5],)"
       R"("took_ms":0.25,"host":"worker-1","tags":["fork","node"],"note":null,)"
       R"("text":"caf\u00e9 \u2603 done"}})"},
  };
  std::mt19937_64 rng(20261126);
  std::vector<int64_t> numbers(1'000'000);
  for (int64_t& n : numbers) n = static_cast<int64_t>(rng() % 1000000000);
  std::string big;
  AppendIntArray(numbers, &big);

  auto view = [](const simdjson::padded_string& p) {
    return std::string_view(p.data(), p.size());
  };
  auto validate = [&](const std::string& label, const std::string& text) {
    const simdjson::padded_string padded(text);
    if (!ValidateJson(text).ok() || dom.parse(padded).error() ||
        !bench::portable::Validate(view(padded)) ||
        (avx2 && !bench::haswell::Validate(view(padded)))) {
      Mismatch("validating " + label);
    }
    std::vector<Contender> contenders = {
        {"hand-written ValidateJson", [&] { return uint64_t{ValidateJson(text).ok()}; }},
        {"simdjson DOM parse",
         [&] { return uint64_t{dom.parse(padded).error() == simdjson::SUCCESS}; }},
        {"simdjson On-Demand walk, portable",
         [&] { return uint64_t{bench::portable::Validate(view(padded))}; }},
    };
    if (avx2) {
      contenders.push_back({"simdjson On-Demand walk, -march=haswell", [&] {
                              return uint64_t{bench::haswell::Validate(view(padded))};
                            }});
      contenders.push_back({"  the same + copying the text to pad it", [&] {
                              const simdjson::padded_string copy(text);
                              return uint64_t{bench::haswell::Validate(view(copy))};
                            }});
    }
    Compare("validate " + label, text.size(), contenders);
  };
  auto int_array = [&](const std::string& label, const std::string& text) {
    const simdjson::padded_string padded(text);
    std::vector<int64_t> mine;
    const auto shipped = ParseIntArray(text);
    const auto first = bench::HandParseIntArray(text);
    if (!shipped || !first || *first != *shipped ||
        !bench::portable::IntArray(view(padded), &mine) || mine != *shipped ||
        (avx2 && (!bench::haswell::IntArray(view(padded), &mine) || mine != *shipped))) {
      Mismatch("reading the integers of " + label);
    }
    auto fold = [](const std::vector<int64_t>& v) {
      return v.size() + static_cast<uint64_t>(v.back());
    };
    auto fold_optional = [&](const std::optional<std::vector<int64_t>>& v) {
      return v ? fold(*v) : 0;
    };
    std::vector<Contender> contenders = {
        {"hand-written: drover's ParseIntArray",
         [&] { return fold_optional(ParseIntArray(text)); }},
        {"hand-written, the first (replaced)",
         [&] { return fold_optional(bench::HandParseIntArray(text)); }},
        {"simdjson On-Demand + copying the text to pad it",
         [&] {
           // What drover's reader did from the first one's replacement
           // until the hand-written one of docs/benchmarks.md, "bench libs".
           const simdjson::padded_string copy(text);
           return bench::portable::IntArray(view(copy), &mine) ? fold(mine) : 0;
         }},
        {"simdjson On-Demand, input padded already",
         [&] { return bench::portable::IntArray(view(padded), &mine) ? fold(mine) : 0; }},
    };
    if (avx2) {
      contenders.push_back({"  the same, -march=haswell", [&] {
                              return bench::haswell::IntArray(view(padded), &mine)
                                         ? fold(mine)
                                         : 0;
                            }});
    }
    Compare("integers of " + label + " into a vector<int64_t>", text.size(), contenders);
  };
  for (const auto& [label, text] : small) validate(label, text);
  int_array(small[0].first, small[0].second);
  validate("1,000,000-number array (" + std::to_string(big.size() >> 10) + " KiB)", big);
  int_array("1,000,000-number array", big);
}

// ---- http -----------------------------------------------------------------------

// What every parser must find in a request: its size, body and keep-alive.
struct Parsed {
  size_t size = 0;
  std::string_view body;
  bool keep_alive = false;
};

bool HandWritten(std::string_view in, Parsed* p) {
  const services::HttpRequestParse r = services::ParseHttpRequest(in, 64u << 20);
  if (r.state != services::HttpRequestParse::State::kRequest) return false;
  *p = {r.size, r.body, r.keep_alive};
  return true;
}

// nodejs/http-parser: callbacks for the body and the message's end; it
// reads Content-Length, Connection and Transfer-Encoding itself.
struct HttpParserRun {
  Parsed* out;
  bool complete = false;
};

const http_parser_settings kHttpParserSettings = [] {
  http_parser_settings s;
  http_parser_settings_init(&s);
  s.on_body = [](http_parser* hp, const char* at, size_t n) {
    auto* run = static_cast<HttpParserRun*>(hp->data);
    // A Content-Length body in one buffer comes in one call.
    run->out->body = std::string_view(at, n);
    return 0;
  };
  s.on_message_complete = [](http_parser* hp) {
    auto* run = static_cast<HttpParserRun*>(hp->data);
    run->complete = true;
    run->out->keep_alive = http_should_keep_alive(hp) != 0;
    http_parser_pause(hp, 1);  // one request at a time, as the server reads them
    return 0;
  };
  return s;
}();

bool NodeHttpParser(std::string_view in, Parsed* p) {
  http_parser hp;
  http_parser_init(&hp, HTTP_REQUEST);
  HttpParserRun run{p};
  hp.data = &run;
  *p = {};
  const size_t n = http_parser_execute(&hp, &kHttpParserSettings, in.data(), in.size());
  const auto err = static_cast<http_errno>(hp.http_errno);
  if (!run.complete || (err != HPE_OK && err != HPE_PAUSED)) return false;
  p->size = n;
  return true;
}

// Boost.Beast's parse-only interface: a basic_parser whose callbacks keep
// the body's place and nothing else.
class BeastRequestParser : public beast_http::basic_parser<true> {
 public:
  std::string_view body;

 private:
  void on_request_impl(beast_http::verb, boost::beast::string_view,
                       boost::beast::string_view, int,
                       boost::beast::error_code&) override {}
  void on_response_impl(int, boost::beast::string_view, int,
                        boost::beast::error_code&) override {}
  void on_field_impl(beast_http::field, boost::beast::string_view,
                     boost::beast::string_view, boost::beast::error_code&) override {}
  void on_header_impl(boost::beast::error_code&) override {}
  void on_body_init_impl(const boost::optional<std::uint64_t>&,
                         boost::beast::error_code&) override {}
  std::size_t on_body_impl(boost::beast::string_view b,
                           boost::beast::error_code&) override {
    body = std::string_view(b.data(), b.size());
    return b.size();
  }
  void on_chunk_header_impl(std::uint64_t, boost::beast::string_view,
                            boost::beast::error_code&) override {}
  std::size_t on_chunk_body_impl(std::uint64_t, boost::beast::string_view b,
                                 boost::beast::error_code&) override {
    return b.size();
  }
  void on_finish_impl(boost::beast::error_code&) override {}
};

bool Llhttp(std::string_view in, Parsed* p) {
  return bench::LlhttpParse(in, &p->size, &p->body, &p->keep_alive);
}

bool Beast(std::string_view in, Parsed* p) {
  BeastRequestParser parser;
  parser.eager(true);
  parser.header_limit(64 << 10);
  parser.body_limit(64u << 20);
  boost::beast::error_code ec;
  const size_t n = parser.put(boost::asio::const_buffer(in.data(), in.size()), ec);
  if (ec || !parser.is_done()) return false;
  *p = {n, parser.body, parser.keep_alive()};
  return true;
}

void BenchHttp() {
  std::printf(
      "\n== http: drover serve's request parser vs http-parser %d.%d.%d, llhttp %s, "
      "Boost.Beast %d ==\n",
      HTTP_PARSER_VERSION_MAJOR, HTTP_PARSER_VERSION_MINOR, HTTP_PARSER_VERSION_PATCH,
      bench::LlhttpVersion(), BOOST_BEAST_VERSION);
  std::string numbers;
  for (int i = 0; i < 200; ++i) numbers += std::to_string((i * 7919) % 1000) + " ";
  const std::vector<std::pair<std::string, std::string>> requests = {
      {"wrk's GET", "GET / HTTP/1.1\r\nHost: 127.0.0.1:8080\r\n\r\n"},
      {"a browser's GET, 9 headers",
       "GET /api/v1/jobs/seed-tour/tasks?state=running&limit=50 HTTP/1.1\r\n"
       "Host: drover.example.internal:8080\r\n"
       "User-Agent: Mozilla/5.0 (X11; Linux x86_64; rv:109.0) Gecko/20100101 "
       "Firefox/115.0\r\n"
       "Accept: text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8\r\n"
       "Accept-Language: en-US,en;q=0.5\r\n"
       "Accept-Encoding: gzip, deflate, br\r\n"
       "Connection: keep-alive\r\n"
       "Cookie: session=8f14e45fceea167a5a36dedd4bea2543; theme=dark\r\n"
       "Upgrade-Insecure-Requests: 1\r\n"
       "Cache-Control: max-age=0\r\n\r\n"},
      {"a POST to sort, " + std::to_string(numbers.size()) + " B body",
       "POST /sort HTTP/1.1\r\nHost: 127.0.0.1:8080\r\nContent-Type: text/plain\r\n"
       "Content-Length: " +
           std::to_string(numbers.size()) + "\r\n\r\n" + numbers},
  };
  for (const auto& request : requests) {
    // Named, not a structured binding: clang 14 (CI's asan and tsan builds)
    // refuses a lambda that captures one.
    const std::string& label = request.first;
    const std::string& text = request.second;
    Parsed a, b, c, d;
    if (!HandWritten(text, &a) || !NodeHttpParser(text, &b) || !Beast(text, &c) ||
        !Llhttp(text, &d) || a.size != text.size()) {
      Mismatch("parsing " + label);
    }
    for (const Parsed* other : {&b, &c, &d}) {
      if (other->size != a.size || other->body != a.body ||
          other->keep_alive != a.keep_alive) {
        Mismatch("parsing " + label);
      }
    }
    auto fold = [](bool ok, const Parsed& p) {
      return ok ? p.size + p.body.size() + p.keep_alive : 0;
    };
    Compare("parse " + label + " (" + std::to_string(text.size()) + " B)", text.size(),
            {{"hand-written ParseHttpRequest",
              [&] {
                Parsed p;
                return fold(HandWritten(text, &p), p);
              }},
             {"http-parser (libhttp-parser2.9)",
              [&] {
                Parsed p;
                return fold(NodeHttpParser(text, &p), p);
              }},
             {"llhttp (node-llhttp's C sources)",
              [&] {
                Parsed p;
                return fold(Llhttp(text, &p), p);
              }},
             {"Boost.Beast basic_parser", [&] {
                Parsed p;
                return fold(Beast(text, &p), p);
              }}});
  }
}

int Main(int argc, char** argv) {
  std::string only;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    if (arg == "--runs" && i + 1 < argc) {
      g_runs = std::atoi(argv[++i]);
    } else if (arg == "--only" && i + 1 < argc) {
      only = argv[++i];
    } else {
      std::fprintf(stderr, "usage: libs_bench [--runs R] [--only sha256|json|http]\n");
      return 2;
    }
  }
  if (g_runs < 1 ||
      (!only.empty() && only != "sha256" && only != "json" && only != "http")) {
    std::fprintf(stderr, "usage: libs_bench [--runs R] [--only sha256|json|http]\n");
    return 2;
  }
  std::printf(
      "libs_bench: %d runs per contender, interleaved; thread CPU time per operation\n",
      g_runs);
  if (only.empty() || only == "sha256") BenchSha256();
  if (only.empty() || only == "json") BenchJson();
  if (only.empty() || only == "http") BenchHttp();
  return 0;
}

}  // namespace
}  // namespace drover

int main(int argc, char** argv) { return drover::Main(argc, argv); }
