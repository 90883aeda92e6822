// Reading a whole file without exceptions. std::ifstream read through
// istreambuf_iterator throws from libstdc++'s underflow when read(2) fails
// (EISDIR, EIO, and ESRCH from /proc/PID/... of a process that exited
// after the open), which a scan of /proc meets as a matter of course.
#ifndef DROVER_CORE_BASE_FILES_H_
#define DROVER_CORE_BASE_FILES_H_

#include <cstddef>
#include <cstdint>
#include <string>

namespace drover {

// Appends the whole of `path` to *text. Returns 0, or an errno for the
// caller to word with the file's name: that of the failed open or read,
// EISDIR for a directory, EFBIG for more than `limit` bytes. After a
// failure *text holds what was read before it.
//
// Safe on any path a user may name: a regular file larger than `limit`
// is refused before it is read, anything else (a pipe, /dev/zero, a
// device) is read up to `limit` + 1 bytes, and a FIFO that no process
// has open for writing reads as empty instead of blocking in open(2).
// A pipe with a writer (`<(cat job.yaml)`) is read to its end.
int ReadWholeFile(const std::string& path, std::string* text, size_t limit = SIZE_MAX);

}  // namespace drover

#endif  // DROVER_CORE_BASE_FILES_H_
