#include "worker/outputs.h"

#include <sys/stat.h>

#include <fstream>
#include <nlohmann/json.hpp>
#include <system_error>
#include <utility>

namespace drover {
namespace {

std::string Line(size_t n) { return "line " + std::to_string(n); }

std::string Shown(std::string_view text) {
  constexpr size_t kShown = 60;
  std::string s(text.substr(0, kShown));
  if (text.size() > kShown) s += "...";
  return "'" + s + "'";
}

}  // namespace

Result<Outputs> ParseOutputFile(std::string_view text) {
  Outputs out;
  size_t line_no = 0;
  size_t at = 0;
  auto next_line = [&](std::string_view* line) {
    if (at >= text.size()) return false;
    const size_t end = text.find('\n', at);
    const size_t stop = end == std::string_view::npos ? text.size() : end;
    *line = text.substr(at, stop - at);
    at = stop == text.size() ? stop : stop + 1;
    ++line_no;
    return true;
  };
  std::string_view line;
  while (next_line(&line)) {
    if (line.empty()) continue;
    const size_t eq = line.find('=');
    const size_t heredoc = line.find("<<");
    if (eq != std::string_view::npos &&
        (heredoc == std::string_view::npos || eq < heredoc)) {
      const std::string_view key = line.substr(0, eq);
      if (!ValidOutputKey(key)) {
        return InvalidArgument(Line(line_no) + ": " + Shown(key) +
                               " is not an output name (1 to 128 of A-Z a-z 0-9 _ -)");
      }
      out[std::string(key)] = std::string(line.substr(eq + 1));
      continue;
    }
    if (heredoc == std::string_view::npos) {
      return InvalidArgument(Line(line_no) + ": " + Shown(line) +
                             " is neither KEY=VALUE nor KEY<<DELIMITER");
    }
    const std::string_view key = line.substr(0, heredoc);
    const std::string_view delim = line.substr(heredoc + 2);
    if (!ValidOutputKey(key)) {
      return InvalidArgument(Line(line_no) + ": " + Shown(key) +
                             " is not an output name (1 to 128 of A-Z a-z 0-9 _ -)");
    }
    if (delim.empty()) {
      return InvalidArgument(Line(line_no) + ": " + Shown(line) +
                             " has no delimiter after '<<'");
    }
    const size_t opened = line_no;
    std::string value;
    bool first = true;
    bool closed = false;
    std::string_view body;
    while (next_line(&body)) {
      if (body == delim) {
        closed = true;
        break;
      }
      if (!first) value += '\n';
      value.append(body);
      first = false;
    }
    if (!closed) {
      return InvalidArgument(Line(opened) + ": the value of '" + std::string(key) +
                             "' has no closing line " + Shown(delim));
    }
    out[std::string(key)] = std::move(value);
  }
  return out;
}

bool CollectOutputs(const std::filesystem::path& file, AttemptOutcome* outcome,
                    bool keep_empty) {
  std::error_code ec;
  // One stat(2) for whether it is there and its size.
  struct stat st {};
  const bool present = !file.empty() && ::stat(file.c_str(), &st) == 0;
  auto fail = [&](std::string why) {
    outcome->reason = FailureReason::kBadOutputs;
    outcome->message = std::move(why);
    outcome->outputs.clear();
  };
  if (outcome->ok() && present) {
    const auto size = static_cast<uintmax_t>(st.st_size);
    if (!S_ISREG(st.st_mode)) {
      fail("cannot read $DROVER_OUTPUT: not a regular file");
    } else if (size > 2 * kMaxOutputBytes) {
      // Not read at all: parsing it could only end over the cap.
      fail("$DROVER_OUTPUT is " + std::to_string(size) + " bytes, more than the cap of " +
           std::to_string(kMaxOutputBytes) + " bytes of outputs");
    } else if (size > 0) {
      std::ifstream in(file, std::ios::binary);
      std::string text(static_cast<size_t>(size), '\0');
      in.read(text.data(), static_cast<std::streamsize>(text.size()));
      text.resize(static_cast<size_t>(in.gcount()));
      Result<Outputs> parsed = ParseOutputFile(text);
      if (!parsed.ok()) {
        fail("$DROVER_OUTPUT " + parsed.status().message());
      } else {
        for (auto& [k, v] : *parsed) outcome->outputs[k] = std::move(v);
      }
    }
  }
  if (outcome->ok() && !outcome->result_json.empty()) {
    // A JSON string result reads as its text (`"v1.2"` gives v1.2), any
    // other result as its JSON. Only a string needs parsing.
    const size_t start = outcome->result_json.find_first_not_of(" \t\r\n");
    nlohmann::json j;
    if (start != std::string::npos && outcome->result_json[start] == '"') {
      j = nlohmann::json::parse(outcome->result_json, nullptr,
                                /*allow_exceptions=*/false);
    }
    outcome->outputs["result"] =
        j.is_string() ? j.get<std::string>() : outcome->result_json;
  }
  if (outcome->ok()) {
    if (std::string over = CheckOutputCaps(outcome->outputs); !over.empty()) fail(over);
  } else {
    outcome->outputs.clear();
  }
  if (!present) return false;
  // A file still empty is as good as a new one for the next attempt, unless
  // the task made it a link to something else: lstat, not the stat above.
  struct stat own {};
  if (keep_empty && st.st_size == 0 && ::lstat(file.c_str(), &own) == 0 &&
      S_ISREG(own.st_mode) && own.st_nlink == 1 && own.st_size == 0) {
    return true;
  }
  std::filesystem::remove(file, ec);
  return false;
}

}  // namespace drover
