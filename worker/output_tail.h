// OutputTail: what a backend appended to one captured stream of a running
// attempt since the last look, so the worker can send it as OUTPUT chunks
// (docs/protocol.md) while the attempt runs; the RESULT still carries the
// whole kept tail at the end.
//
// Capture files grow linearly up to the attempt's output limit and then
// wrap in ring fashion (backends/process/output_capture.h): a tail follows the
// linear part only, and stops at the limit. A file that does not exist yet
// (the stream printed nothing) reads as empty. Not thread-safe; the worker's
// I/O thread owns it.
#ifndef DROVER_WORKER_OUTPUT_TAIL_H_
#define DROVER_WORKER_OUTPUT_TAIL_H_

#include <cstdint>
#include <string>

namespace drover {

class OutputTail {
 public:
  OutputTail() = default;
  OutputTail(std::string path, uint64_t limit) : path_(std::move(path)), limit_(limit) {}

  // The bytes appended since the last call, at most `max_bytes`; empty when
  // there are none or the limit was reached. offset() before the call is
  // the chunk's offset in the stream.
  std::string Read(size_t max_bytes);
  uint64_t offset() const { return offset_; }

 private:
  std::string path_;
  uint64_t limit_ = 0;
  uint64_t offset_ = 0;
};

}  // namespace drover

#endif  // DROVER_WORKER_OUTPUT_TAIL_H_
