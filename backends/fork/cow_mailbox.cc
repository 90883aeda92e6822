#include "backends/fork/cow_mailbox.h"

#include <sys/mman.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace drover {

struct CowMailbox::Slot {
  // Each on a cache line of its own: the writer bumps `posted` while the
  // reader polls it, and the reader flips `looking` while the writer reads it.
  alignas(64) std::atomic<uint64_t> posted;
  alignas(64) std::atomic<uint32_t> looking;
  uint32_t size;  // of the last message posted, written before `posted`
  alignas(64) char data[kMaxMessage];
};

struct CowMailbox::Shared {
  Slot to_process;
  Slot to_backend;
};

// Shared between processes: the atomics must not need a lock.
static_assert(std::atomic<uint64_t>::is_always_lock_free);
static_assert(std::atomic<uint32_t>::is_always_lock_free);

Result<UniqueFd> CowMailbox::Create() {
  UniqueFd fd(::memfd_create("drover-cow-mailbox", MFD_CLOEXEC));
  if (!fd.valid()) return ErrnoError("memfd_create", errno);
  if (::ftruncate(fd.get(), sizeof(Shared)) != 0) return ErrnoError("ftruncate", errno);
  return fd;  // zero-filled: no message, nobody looking
}

Result<std::unique_ptr<CowMailbox>> CowMailbox::Map(int fd, Side side) {
  void* p = ::mmap(nullptr, sizeof(Shared), PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  if (p == MAP_FAILED) return ErrnoError("mmap of the cow mailbox", errno);
  return std::unique_ptr<CowMailbox>(new CowMailbox(static_cast<Shared*>(p), side));
}

CowMailbox::CowMailbox(Shared* shared, Side side)
    : shared_(shared),
      out_(side == Side::kBackend ? &shared->to_process : &shared->to_backend),
      in_(side == Side::kBackend ? &shared->to_backend : &shared->to_process) {
  // Both ends count from 0, the fresh mapping's counts: the backend may
  // post the first request before the process has mapped it.
}

CowMailbox::~CowMailbox() { ::munmap(shared_, sizeof(Shared)); }

bool CowMailbox::Post(std::string_view a, std::string_view b, std::string_view c) {
  char* p = out_->data;
  for (std::string_view part : {a, b, c}) {
    if (part.empty()) continue;  // its data() may be null, which memcpy may not take
    std::memcpy(p, part.data(), part.size());
    p += part.size();
  }
  out_->size = static_cast<uint32_t>(p - out_->data);
  out_->posted.store(++posted_);  // seq_cst, then the flag (see the header)
  return out_->looking.load() == 0;
}

bool CowMailbox::Waiting() const { return in_->posted.load() != taken_; }

bool CowMailbox::Take(std::string_view* message) {
  const uint64_t posted = in_->posted.load();
  if (posted == taken_) return false;
  taken_ = posted;
  const size_t size = in_->size < kMaxMessage ? in_->size : kMaxMessage;
  *message = std::string_view(in_->data, size);
  return true;
}

void CowMailbox::Looking(bool on) { in_->looking.store(on ? 1 : 0); }

}  // namespace drover
