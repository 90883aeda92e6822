// Reading a whole file without exceptions. std::ifstream read through
// istreambuf_iterator throws from libstdc++'s underflow when read(2) fails
// (EISDIR, EIO, and ESRCH from /proc/PID/... of a process that exited
// after the open), which a scan of /proc meets as a matter of course.
#ifndef DROVER_CORE_BASE_FILES_H_
#define DROVER_CORE_BASE_FILES_H_

#include <string>

namespace drover {

// Appends the whole of `path` to *text. Returns 0, or the errno of the
// failed open or read (the caller words the error with the file's name);
// after a failed read *text holds what was read before it.
int ReadWholeFile(const std::string& path, std::string* text);

}  // namespace drover

#endif  // DROVER_CORE_BASE_FILES_H_
