// FileStamp: what identifies a file's content without reading it, for a
// file whose bytes were hashed once: its device and inode, its size and
// its status change time (ctime). Any change made through the file system
// (a write, a truncation, a replacement by rename, a chmod) gives the file
// another stamp: a write or a chmod moves its ctime (which no system call
// sets back), a truncation its size, a replacement its inode.
//
// A stamp does not see damage below the file system (a disk that returns
// other bytes): whoever receives the bytes still checks their sha256.
#ifndef DROVER_CORE_ARTIFACTS_FILE_STAMP_H_
#define DROVER_CORE_ARTIFACTS_FILE_STAMP_H_

#include <sys/stat.h>

#include <cstdint>

namespace drover::artifacts {

struct FileStamp {
  uint64_t dev = 0;
  uint64_t ino = 0;
  uint64_t size = 0;
  int64_t ctime_sec = 0;
  int64_t ctime_nsec = 0;

  static FileStamp Of(const struct stat& st) {
    return FileStamp{static_cast<uint64_t>(st.st_dev), static_cast<uint64_t>(st.st_ino),
                     static_cast<uint64_t>(st.st_size),
                     static_cast<int64_t>(st.st_ctim.tv_sec),
                     static_cast<int64_t>(st.st_ctim.tv_nsec)};
  }
  bool operator==(const FileStamp&) const = default;
};

}  // namespace drover::artifacts

#endif  // DROVER_CORE_ARTIFACTS_FILE_STAMP_H_
