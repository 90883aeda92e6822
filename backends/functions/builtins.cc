#include "backends/functions/builtins.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <bit>
#include <cerrno>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <functional>
#include <limits>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "core/artifacts/sha256.h"

namespace drover {
namespace {

using nlohmann::json;

// Files are read in chunks of this size; the token is checked between them.
constexpr size_t kChunk = 64 * 1024;
// fib checks its token every 2^16 calls: about every 0.2 ms of work.
constexpr uint64_t kFibPollMask = (uint64_t{1} << 16) - 1;
// fib(93) does not fit in 64 bits.
constexpr int64_t kMaxFib = 92;

Status BadArgs(std::string_view fn, std::string_view usage) {
  return InvalidArgument(std::string(fn) + ": args must be " + std::string(usage));
}

// The member `key` of an object, or nullptr.
const json* Member(const json& args, const char* key) {
  if (!args.is_object()) return nullptr;
  auto it = args.find(key);
  return it == args.end() ? nullptr : &*it;
}

// Reads `path` in chunks, giving each to `consume`. Stops with a Cancelled
// error when the token fires between two chunks.
Status ReadFile(std::string_view fn, const std::string& path, const CancelToken& token,
                const std::function<void(const char*, size_t)>& consume) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    return IoError(std::string(fn) + ": cannot open " + path + ": " + std::strerror(errno));
  }
  struct Closer {  // closes fd on every path out
    int fd;
    ~Closer() { ::close(fd); }
  } closer{fd};
  std::vector<char> buffer(kChunk);
  for (;;) {
    if (token.cancelled()) return Cancelled(std::string(fn) + ": cancelled");
    const ssize_t n = ::read(fd, buffer.data(), buffer.size());
    if (n < 0) {
      if (errno == EINTR) continue;
      return IoError(std::string(fn) + ": cannot read " + path + ": " + std::strerror(errno));
    }
    if (n == 0) return Status::Ok();
    consume(buffer.data(), static_cast<size_t>(n));
  }
}

Result<json> Noop(const json&, const CancelToken&) { return json(nullptr); }

Result<json> Sleep(const json& args, const CancelToken& token) {
  constexpr std::string_view kUsage = R"({"seconds": S}, {"ms": MS} or a number of seconds)";
  double seconds = 0;
  if (args.is_number()) {
    seconds = args.get<double>();
  } else if (const json* s = Member(args, "seconds"); s && s->is_number()) {
    seconds = s->get<double>();
  } else if (const json* ms = Member(args, "ms"); ms && ms->is_number()) {
    seconds = ms->get<double>() / 1000.0;
  } else {
    return BadArgs("sleep", kUsage);
  }
  // About 100 years: beyond that the nanosecond count would overflow.
  if (!std::isfinite(seconds) || seconds < 0 || seconds > 3.0e9) {
    return InvalidArgument("sleep: the time must be between 0 and 3e9 seconds");
  }
  const auto d = std::chrono::duration_cast<Duration>(std::chrono::duration<double>(seconds));
  if (!token.SleepFor(d)) return Cancelled("sleep: cancelled");
  return json(nullptr);
}

long double AsLongDouble(const json& v) {
  if (v.is_number_unsigned()) return static_cast<long double>(v.get<uint64_t>());
  if (v.is_number_integer()) return static_cast<long double>(v.get<int64_t>());
  return static_cast<long double>(v.get<double>());
}

// An LSD radix sort of `keys` (n of them, all below 2^(passes * bits)),
// through `spare` (as large, contents unused), `passes` passes of `bits`
// bits. `counts` holds every pass's counts of each digit (passes x 2^bits),
// taken by the caller in its one read of the input. Returns where the
// sorted keys are: `keys` or `spare`. A pass whose digit every key shares
// moves nothing and is skipped.
template <typename Key>
Key* RadixPasses(Key* keys, Key* spare, size_t n, int passes, int bits,
                 const std::vector<size_t>& counts) {
  const size_t digits = size_t{1} << bits;
  const Key mask = static_cast<Key>(digits - 1);
  std::vector<size_t> at(digits);
  for (int p = 0; p < passes; ++p) {
    const int shift = bits * p;
    const size_t* c = counts.data() + p * digits;
    if (c[(keys[0] >> shift) & mask] == n) continue;
    size_t sum = 0;
    for (size_t d = 0; d < digits; ++d) {
      at[d] = sum;
      sum += c[d];
    }
    for (size_t i = 0; i < n; ++i) spare[at[(keys[i] >> shift) & mask]++] = keys[i];
    std::swap(keys, spare);
  }
  return keys;
}

// The passes for keys of `bits_used` significant bits: as few of at most
// 11 bits as cover them, the bits split evenly: 30 bits take 3 passes of 10
// (1,024 buckets, whose write streams the TLB holds better than 2,048).
struct PassPlan {
  int passes = 0;
  int bits = 0;
};
PassPlan PlanPasses(int bits_used) {
  constexpr int kMaxBits = 11;  // 2,048 counts of a pass (16 KB) stay in cache
  PassPlan plan;
  plan.passes = (bits_used + kMaxBits - 1) / kMaxBits;
  plan.bits = plan.passes == 0 ? 0 : (bits_used + plan.passes - 1) / plan.passes;
  return plan;
}

}  // namespace

// Below this many numbers std::sort is faster than the radix passes.
constexpr size_t kRadixFrom = 256;

void SortIntegers(std::vector<int64_t>& numbers) {
  if (numbers.empty()) return;
  const auto [lo_it, hi_it] = std::minmax_element(numbers.begin(), numbers.end());
  SortIntegers(numbers, *lo_it, *hi_it);
}

void SortIntegers(std::vector<int64_t>& numbers, int64_t min, int64_t max) {
  const size_t n = numbers.size();
  if (n < kRadixFrom) {
    std::sort(numbers.begin(), numbers.end());
    return;
  }
  // Keys are the numbers' distances from the smallest (v - min, taken
  // modulo 2^64, which is exact since no distance reaches 2^64): unsigned
  // order is then signed order, and only the bits of the range are sorted
  // on. Numbers below 10^9 differ in 30 bits: 3 passes. A range below 2^32
  // sorts 32-bit keys, half the memory traffic of 64-bit ones.
  const uint64_t lo = static_cast<uint64_t>(min);
  const uint64_t range = static_cast<uint64_t>(max) - lo;
  if (range == 0) return;  // all equal
  const PassPlan plan = PlanPasses(std::bit_width(range));
  const size_t digits = size_t{1} << plan.bits;
  // Every pass's counts, from the one read that makes the keys.
  std::vector<size_t> counts(static_cast<size_t>(plan.passes) * digits, 0);
  auto count = [&](uint64_t key) {
    for (int p = 0; p < plan.passes; ++p) {
      ++counts[p * digits + ((key >> (plan.bits * p)) & (digits - 1))];
    }
  };
  // Scratch left uninitialised: no zeroing of pages about to be written.
  if (range <= std::numeric_limits<uint32_t>::max()) {
    const auto scratch = std::make_unique_for_overwrite<uint32_t[]>(2 * n);
    uint32_t* keys = scratch.get();
    for (size_t i = 0; i < n; ++i) {
      keys[i] = static_cast<uint32_t>(static_cast<uint64_t>(numbers[i]) - lo);
      count(keys[i]);
    }
    const uint32_t* sorted =
        RadixPasses(keys, keys + n, n, plan.passes, plan.bits, counts);
    for (size_t i = 0; i < n; ++i) numbers[i] = static_cast<int64_t>(lo + sorted[i]);
    return;
  }
  // int64_t storage read as uint64_t (the same type but for the sign).
  uint64_t* keys = reinterpret_cast<uint64_t*>(numbers.data());
  for (size_t i = 0; i < n; ++i) {
    keys[i] -= lo;
    count(keys[i]);
  }
  const auto scratch = std::make_unique_for_overwrite<uint64_t[]>(n);
  const uint64_t* sorted =
      RadixPasses(keys, scratch.get(), n, plan.passes, plan.bits, counts);
  // Back to the numbers (where they are, or out of the scratch).
  for (size_t i = 0; i < n; ++i) keys[i] = sorted[i] + lo;
}

namespace {

Result<json> Sort(const json& args, const CancelToken&) {
  constexpr std::string_view kUsage = R"({"numbers": [...]} or an array of numbers)";
  const json* list = args.is_array() ? &args : Member(args, "numbers");
  if (list == nullptr || !list->is_array()) return BadArgs("sort", kUsage);

  bool all_int64 = true;
  for (const json& v : *list) {
    if (!v.is_number()) return BadArgs("sort", kUsage);
    if (v.is_number_float() ||
        (v.is_number_unsigned() &&
         v.get<uint64_t>() > static_cast<uint64_t>(std::numeric_limits<int64_t>::max()))) {
      all_int64 = false;
    }
  }
  if (all_int64) {
    // The common case, and the fast one: plain integers.
    std::vector<int64_t> numbers;
    numbers.reserve(list->size());
    for (const json& v : *list) numbers.push_back(v.get<int64_t>());
    SortIntegers(numbers);
    return json(std::move(numbers));
  }
  // Floats, or integers beyond int64: compare as long double, which holds
  // every int64, uint64 and double exactly on x86-64 (json's own operator<
  // casts uint64 to int64). Each number keeps its representation (3 stays 3).
  json sorted = *list;
  std::stable_sort(sorted.begin(), sorted.end(), [](const json& a, const json& b) {
    return AsLongDouble(a) < AsLongDouble(b);
  });
  return sorted;
}

Result<json> Sha(const json& args, const CancelToken& token) {
  constexpr std::string_view kUsage = R"({"string": S} or {"file": PATH})";
  if (const json* s = Member(args, "string"); s && s->is_string()) {
    return json(artifacts::Sha256Hex(s->get_ref<const std::string&>()));
  }
  const json* file = Member(args, "file");
  if (file == nullptr || !file->is_string()) return BadArgs("sha256", kUsage);
  artifacts::Sha256 hash;
  DROVER_RETURN_IF_ERROR(ReadFile("sha256", file->get_ref<const std::string&>(), token,
                                  [&](const char* p, size_t n) { hash.Update({p, n}); }));
  return json(hash.Final());
}

// Counts like wc: lines are '\n' characters, words are maximal runs of
// bytes that are not ASCII white space (the C locale), bytes are bytes.
class WordCounter {
 public:
  void Add(const char* p, size_t n) {
    bytes_ += n;
    for (size_t i = 0; i < n; ++i) {
      const char c = p[i];
      const bool space = c == ' ' || c == '\n' || c == '\t' || c == '\r' || c == '\v' || c == '\f';
      if (c == '\n') ++lines_;
      if (!space && !in_word_) ++words_;
      in_word_ = !space;
    }
  }
  json ToJson() const { return json{{"lines", lines_}, {"words", words_}, {"bytes", bytes_}}; }

 private:
  uint64_t lines_ = 0;
  uint64_t words_ = 0;
  uint64_t bytes_ = 0;
  bool in_word_ = false;
};

Result<json> WordCount(const json& args, const CancelToken& token) {
  constexpr std::string_view kUsage = R"({"file": PATH} or {"string": S})";
  WordCounter counter;
  if (const json* s = Member(args, "string"); s && s->is_string()) {
    const std::string& text = s->get_ref<const std::string&>();
    counter.Add(text.data(), text.size());
    return counter.ToJson();
  }
  const json* file = Member(args, "file");
  if (file == nullptr || !file->is_string()) return BadArgs("wordcount", kUsage);
  DROVER_RETURN_IF_ERROR(ReadFile("wordcount", file->get_ref<const std::string&>(), token,
                                  [&](const char* p, size_t n) { counter.Add(p, n); }));
  return counter.ToJson();
}

// Naive doubly recursive Fibonacci: deliberately exponential, a CPU burner
// for benchmarks. Checks the token every kFibPollMask + 1 calls and unwinds
// as soon as it fired.
class NaiveFib {
 public:
  explicit NaiveFib(const CancelToken& token) : token_(token) {}
  uint64_t Run(int n) {
    if ((++calls_ & kFibPollMask) == 0 && token_.cancelled()) stopped_ = true;
    if (stopped_) return 0;
    if (n < 2) return static_cast<uint64_t>(n);
    return Run(n - 1) + Run(n - 2);
  }
  bool stopped() const { return stopped_; }

 private:
  const CancelToken& token_;
  uint64_t calls_ = 0;
  bool stopped_ = false;
};

Result<json> Fib(const json& args, const CancelToken& token) {
  constexpr std::string_view kUsage = R"({"n": N} or a number, 0 <= N <= 92)";
  const json* n = args.is_number() ? &args : Member(args, "n");
  if (n == nullptr || !n->is_number_integer()) return BadArgs("fib", kUsage);
  const int64_t value = n->get<int64_t>();
  if (value < 0 || value > kMaxFib) return BadArgs("fib", kUsage);
  NaiveFib fib(token);
  const uint64_t result = fib.Run(static_cast<int>(value));
  if (fib.stopped()) return Cancelled("fib: cancelled");
  return json(result);
}

}  // namespace

Status RegisterBuiltins(FunctionRegistry& registry) {
  struct Builtin {
    const char* name;
    Result<json> (*fn)(const json&, const CancelToken&);
  };
  static constexpr Builtin kBuiltins[] = {
      {"noop", Noop},           {"sleep", Sleep},     {"sort", Sort},
      {"sha256", Sha},          {"wordcount", WordCount}, {"fib", Fib},
  };
  // All or nothing: check every name before adding any.
  for (const Builtin& b : kBuiltins) DROVER_RETURN_IF_ERROR(registry.CheckName(b.name, kBuiltinSource));
  for (const Builtin& b : kBuiltins) DROVER_RETURN_IF_ERROR(registry.Add(b.name, b.fn, kBuiltinSource));
  return Status::Ok();
}

}  // namespace drover
