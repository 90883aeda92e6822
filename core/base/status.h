// Status and Result<T>: errors are values inside drover's core.
//
// Exceptions thrown by yaml-cpp, cppzmq and SQLite stop at their adapter and
// come out of it as a Status. A Status is cheap to copy when ok (no message).
#ifndef DROVER_CORE_BASE_STATUS_H_
#define DROVER_CORE_BASE_STATUS_H_

#include <cassert>
#include <string>
#include <string_view>
#include <utility>
#include <variant>

namespace drover {

enum class StatusCode {
  kOk = 0,
  kInvalidArgument,    // the caller's input is wrong (a bad spec, a bad flag)
  kNotFound,           // a job, task, file or name that does not exist
  kAlreadyExists,      // a duplicate name or id
  kFailedPrecondition, // the call is not valid in the current state
  kUnavailable,        // a peer or resource is not reachable right now
  kDeadlineExceeded,   // a wait ran out of time
  kCancelled,          // the operation was cancelled
  kIoError,            // a syscall or file operation failed
  kInternal,           // a bug: an invariant does not hold
};

std::string_view StatusCodeName(StatusCode code);

class Status {
 public:
  Status() = default;  // ok
  Status(StatusCode code, std::string message)
      : code_(code), message_(std::move(message)) {}

  static Status Ok() { return Status(); }

  bool ok() const { return code_ == StatusCode::kOk; }
  StatusCode code() const { return code_; }
  const std::string& message() const { return message_; }

  // "ok" or "not-found: job j-123 is not in the state directory".
  std::string ToString() const;

  // Returns a copy whose message is "context: message".
  Status WithContext(std::string_view context) const;

 private:
  StatusCode code_ = StatusCode::kOk;
  std::string message_;
};

Status InvalidArgument(std::string message);
Status NotFound(std::string message);
Status AlreadyExists(std::string message);
Status FailedPrecondition(std::string message);
Status Unavailable(std::string message);
Status DeadlineExceeded(std::string message);
Status Cancelled(std::string message);
Status IoError(std::string message);
Status Internal(std::string message);
// IoError whose message is "what: strerror(err)".
Status ErrnoError(std::string_view what, int err);

// Result<T> holds either a T or a non-ok Status.
template <typename T>
class Result {
 public:
  Result(T value) : v_(std::move(value)) {}  // NOLINT: implicit by design
  Result(Status status) : v_(std::move(status)) {  // NOLINT
    assert(!std::get<Status>(v_).ok() && "Result built from an ok Status");
  }

  bool ok() const { return std::holds_alternative<T>(v_); }
  // The error; Status::Ok() when a value is held.
  Status status() const { return ok() ? Status() : std::get<Status>(v_); }

  T& value() & { return std::get<T>(v_); }
  const T& value() const& { return std::get<T>(v_); }
  T&& value() && { return std::get<T>(std::move(v_)); }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }

 private:
  std::variant<T, Status> v_;
};

}  // namespace drover

// Evaluates an expression yielding a Status and returns it if not ok.
#define DROVER_RETURN_IF_ERROR(expr)            \
  do {                                          \
    ::drover::Status drover_status_ = (expr);   \
    if (!drover_status_.ok()) return drover_status_; \
  } while (0)

#endif  // DROVER_CORE_BASE_STATUS_H_
