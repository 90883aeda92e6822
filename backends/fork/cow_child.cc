#include "backends/fork/cow_child.h"

#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <exception>
#include <functional>
#include <iostream>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "backends/fork/cow_mailbox.h"
#include "backends/fork/ipc_channel.h"
#include "backends/fork/json_scan.h"
#include "backends/functions/builtins.h"
#include "backends/functions/function.h"
#include "backends/process/adaptive_spin.h"

namespace drover {
namespace {

constexpr std::string_view kFnPrefix = R"({"fn":")";
constexpr std::string_view kArgsKey = R"(,"args":)";
constexpr std::string_view kResultHead = R"({"result":)";
// A fast-path reply is sent in parts of this size as it is written.
constexpr size_t kReplyPart = 1 << 20;

struct Request {
  std::string fn;
  std::string args_storage;  // only when the slow path had to re-serialise
  std::string_view args;
};

// The backend writes requests as {"fn":"NAME","args":ARGS} with nothing
// else around ARGS: take the name and the args text without parsing ARGS
// twice (FunctionRegistry::Prepare parses it once). Anything else goes
// through a full parse.
std::optional<Request> ParseRequest(std::string_view line, std::string* error) {
  line = TrimJsonSpace(line);
  if (line.size() > kFnPrefix.size() + kArgsKey.size() + 2 &&
      line.substr(0, kFnPrefix.size()) == kFnPrefix && line.back() == '}') {
    const size_t name_begin = kFnPrefix.size();
    const size_t quote = line.find_first_of("\"\\", name_begin);
    if (quote != std::string_view::npos && line[quote] == '"' &&
        line.substr(quote + 1, kArgsKey.size()) == kArgsKey) {
      Request r;
      r.fn = std::string(line.substr(name_begin, quote - name_begin));
      const size_t args_begin = quote + 1 + kArgsKey.size();
      r.args = line.substr(args_begin, line.size() - 1 - args_begin);
      return r;
    }
  }
  try {
    nlohmann::json value = nlohmann::json::parse(line);
    auto fn = value.find("fn");
    if (!value.is_object() || fn == value.end() || !fn->is_string()) {
      *error = R"(a request must be {"fn": NAME, "args": ...})";
      return std::nullopt;
    }
    Request r;
    r.fn = fn->get<std::string>();
    auto args = value.find("args");
    r.args_storage = args == value.end() ? "null" : args->dump();
    r.args = r.args_storage;
    return r;
  } catch (const std::exception& e) {
    *error = std::string("a request that is not JSON: ") + e.what();
    return std::nullopt;
  }
}

void AppendError(const AttemptOutcome& outcome, std::string* reply) {
  nlohmann::json error = {{"error", outcome.message},
                          {"reason", std::string(ReasonName(outcome.reason))},
                          {"exit_code", outcome.exit_code}};
  // A message may carry invalid UTF-8 (an exception's what()): replace it
  // rather than fail the reply.
  *reply += error.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

// The built-in `sort` on a plain integer array, without a DOM.
bool FastSort(const FunctionRegistry& registry, const Request& request,
              std::string* reply, const std::function<void(std::string*)>& send_part) {
  if (request.fn != "sort" || registry.SourceOf("sort") != kBuiltinSource) return false;
  std::optional<IntArray> ints = ReadIntArray(request.args);
  if (!ints) return false;
  SortIntegers(ints->numbers, ints->min, ints->max);
  *reply += kResultHead;
  if (send_part) {
    AppendIntArray(ints->numbers, reply, kReplyPart, send_part);
  } else {
    AppendIntArray(ints->numbers, reply);
  }
  *reply += '}';
  return true;
}

void WriteAll(int fd, const std::string& data) {
  size_t done = 0;
  while (done < data.size()) {
    ssize_t n = ::send(fd, data.data() + done, data.size() - done, MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) _exit(0);  // the backend is gone: nobody wants the reply
    done += static_cast<size_t>(n);
  }
}

}  // namespace

void HandleCowRequest(const FunctionRegistry& registry, std::string_view line,
                      std::string* reply,
                      const std::function<void(std::string*)>& send_part) {
  try {
    std::string error;
    std::optional<Request> request = ParseRequest(line, &error);
    if (!request) {
      AttemptOutcome outcome;
      outcome.reason = FailureReason::kLaunchFailed;
      outcome.message = error;
      AppendError(outcome, reply);
    } else if (!FastSort(registry, *request, reply, send_part)) {
      CancelToken token;  // cow tasks stop by signal, not by token
      AttemptOutcome outcome = registry.Invoke(request->fn, request->args, token);
      if (outcome.ok()) {
        *reply += kResultHead;
        *reply += outcome.result_json;
        *reply += '}';
      } else {
        AppendError(outcome, reply);
      }
    }
  } catch (const std::exception& e) {
    // Out of memory, most likely: say so rather than die silently.
    AttemptOutcome outcome;
    outcome.reason = FailureReason::kExit;
    outcome.exit_code = 1;
    outcome.message = std::string("cow process failed: ") + e.what();
    reply->clear();
    AppendError(outcome, reply);
  }
  *reply += '\n';
}

void RunCowChild(const FunctionRegistry& registry, int fd, CowMailbox* mailbox) {
  LineReader reader;
  std::string reply;
  // A busy pool's next request comes microseconds after the reply: looked
  // for before the read blocks (backends/process/adaptive_spin.h).
  AdaptiveSpin spin;
  auto replied = std::chrono::steady_clock::now();
  while (true) {
    // The next request: from the mailbox, or a line from the socket (one
    // too large for the mailbox). An empty line is a doorbell: skipped.
    std::string_view line;
    bool waited = false;
    for (;;) {
      if (mailbox != nullptr && mailbox->Take(&line)) break;
      if (reader.NextLine(&line)) {
        if (TrimJsonSpace(line).empty()) continue;
        break;
      }
      if (!waited) {
        waited = true;
        if (mailbox != nullptr) {
          mailbox->Looking(true);
          SpinUntil(spin.Budget(), [&] { return mailbox->Waiting(); });
          mailbox->Looking(false);  // then one more look before the read blocks
          if (mailbox->Waiting()) continue;
        } else {
          SpinUntilReadable(fd, spin.Budget());
        }
      }
      LineReader::Fill fill = reader.FillFrom(fd);
      if (fill == LineReader::Fill::kEof || fill == LineReader::Fill::kError) _exit(0);
      if (reader.oversize()) _exit(2);  // the backend never sends one
    }
    if (waited) spin.Answered(std::chrono::steady_clock::now() - replied);
    reply.clear();
    // A large reply goes out in parts while the rest is written, so that
    // the backend reads one while this process writes the next. Output
    // first, so the backend has it before the reply ends the task.
    auto flush_output = [] {
      std::cout.flush();
      std::cerr.flush();
      std::fflush(stdout);
      std::fflush(stderr);
    };
    bool parts_sent = false;
    HandleCowRequest(registry, line, &reply, [&](std::string* part) {
      flush_output();
      WriteAll(fd, *part);
      part->clear();
      parts_sent = true;
    });
    flush_output();
    // The reply ends with its "\n"; the mailbox takes it without.
    if (mailbox != nullptr && !parts_sent &&
        reply.size() - 1 <= CowMailbox::kMaxMessage) {
      if (mailbox->Post(std::string_view(reply).substr(0, reply.size() - 1)))
        WriteAll(fd, "\n");  // the backend is not looking: wake it
    } else {
      WriteAll(fd, reply);
    }
    replied = std::chrono::steady_clock::now();
  }
}

}  // namespace drover
