// OutputCapture: writes one output stream of an attempt to a file, keeping
// at most `limit` bytes of it: the tail.
//
// Bytes are written linearly until the limit is reached; after that the
// writing goes on in ring fashion inside the file (byte i of the stream lands
// at offset i % limit), so memory use never depends on how much a task
// prints, and the file never grows past the limit. Finish() rotates the file
// so that it holds the last `limit` bytes in order.
//
// The file, and its missing parent directories, are created with the first
// byte: a stream that prints nothing leaves no file behind.
//
// Not thread-safe: one owner (the spawn reactor) drives it.
#ifndef DROVER_BACKENDS_PROCESS_OUTPUT_CAPTURE_H_
#define DROVER_BACKENDS_PROCESS_OUTPUT_CAPTURE_H_

#include <cstddef>
#include <cstdint>
#include <string>

#include "backends/process/unique_fd.h"
#include "core/base/outcome.h"
#include "core/base/status.h"

namespace drover {

class OutputCapture {
 public:
  // A capture into `path` that keeps at most `limit` bytes. A limit of 0
  // keeps nothing (and creates no file); every byte counts as dropped.
  // A string, not a std::filesystem::path: one is made per attempt, and a
  // path allocates a list of its components.
  OutputCapture(std::string path, uint64_t limit);
  ~OutputCapture() = default;  // closes the file without rotating it

  OutputCapture(OutputCapture&&) = default;
  OutputCapture& operator=(OutputCapture&&) = default;
  OutputCapture(const OutputCapture&) = delete;
  OutputCapture& operator=(const OutputCapture&) = delete;

  // Takes the next `n` bytes of the stream. Returns the error the first time
  // the file cannot be created or written; from then on bytes are only
  // counted (the caller must keep draining the pipe regardless) and Ok is
  // returned, so each failure is reported once.
  Status Append(const char* data, size_t n);

  // Puts the kept tail in order and closes the file. Returns the first error
  // seen by Append, or a rotation error; on error the partial file is
  // removed. Idempotent: later calls return Ok and do nothing.
  Status Finish();

  // Bytes kept and bytes dropped from the head. After a failure nothing
  // counts as kept.
  StreamInfo info() const;
  uint64_t total() const { return total_; }

 private:
  Status Open();
  Status WriteAt(const char* data, size_t n, uint64_t offset);
  Status Rotate(uint64_t head);

  std::string path_;
  uint64_t limit_;
  uint64_t total_ = 0;  // bytes the stream produced so far
  UniqueFd fd_;
  Status error_;  // the first failure, if any
  bool finished_ = false;
};

}  // namespace drover

#endif  // DROVER_BACKENDS_PROCESS_OUTPUT_CAPTURE_H_
