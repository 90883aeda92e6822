/*
 * drover/handoff.h: receive connections from drover's cluster supervisor.
 *
 * In `mode: round-robin` the supervisor accepts every connection on the
 * service's port itself and passes each one to the next instance, Node
 * `cluster` style. An instance takes part through this protocol (version 1):
 *
 *   - The instance is started with DROVER_HANDOFF_FD=3 in its environment
 *     (and no LISTEN_FDS). Descriptor 3 is one end of an AF_UNIX
 *     SOCK_SEQPACKET socket pair; the supervisor holds the other end.
 *   - Each message from the supervisor is one byte, 'C', with exactly one
 *     descriptor attached as SCM_RIGHTS ancillary data: an accepted,
 *     connected stream socket in blocking mode. The instance owns it from
 *     then on (it serves it and closes it). A message may carry a
 *     connection the supervisor made itself to check readiness.
 *   - The instance sends nothing. It is ready once it reads the channel:
 *     the supervisor checks that a connection it passed has arrived in the
 *     instance's descriptor table (and, for an HTTP ready check, that a
 *     request on it is answered).
 *   - End of file on the channel means the supervisor will pass no more
 *     connections (it is replacing or stopping this instance; SIGTERM
 *     follows or has come). The instance reads the channel to its end, so
 *     that no connection passed to it is lost, finishes the requests it
 *     has, and exits.
 *
 * The same file also reads the systemd socket-passing variables that the
 * other modes use (LISTEN_FDS=1, LISTEN_PID=<the instance's pid>, the
 * listening socket on descriptor 3).
 *
 * Everything here is static inline C99 over POSIX, no library to link.
 * Thread-safety: the functions keep no state; the channel may be read from
 * one thread at a time.
 */
#ifndef DROVER_HANDOFF_H_
#define DROVER_HANDOFF_H_

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <unistd.h>

#ifdef __cplusplus
extern "C" {
#endif

#define DROVER_HANDOFF_VERSION 1
/* The descriptor that carries the socket or the channel. */
#define DROVER_LISTEN_FDS_START 3
/* The byte of a connection message. */
#define DROVER_HANDOFF_CONNECTION 'C'

/* The hand-off channel's descriptor from $DROVER_HANDOFF_FD, or -1 when
 * the process was not started in round-robin mode. */
static inline int drover_handoff_fd(void) {
  const char* text = getenv("DROVER_HANDOFF_FD");
  if (text == NULL || *text == '\0') return -1;
  char* end = NULL;
  long fd = strtol(text, &end, 10);
  if (*end != '\0' || fd < 0 || fd > 1 << 20) return -1;
  return (int)fd;
}

/* How many listening sockets systemd-style socket passing gave this
 * process (they start at descriptor 3), or 0: LISTEN_FDS is unset or
 * LISTEN_PID names another process (the variables were inherited). */
static inline int drover_listen_fds(void) {
  const char* pid_text = getenv("LISTEN_PID");
  const char* fds_text = getenv("LISTEN_FDS");
  if (pid_text == NULL || fds_text == NULL) return 0;
  char* end = NULL;
  long pid = strtol(pid_text, &end, 10);
  if (*end != '\0' || pid != (long)getpid()) return 0;
  long fds = strtol(fds_text, &end, 10);
  if (*end != '\0' || fds < 0 || fds > 1 << 16) return 0;
  return (int)fds;
}

/* Receives the next connection from the channel `chan`. Returns the
 * connection's descriptor (close-on-exec), or -1 with errno set: EAGAIN
 * when `chan` is non-blocking and nothing is queued, EPIPE at the end of
 * the channel, EPROTO for a message that breaks the protocol (skipped; call
 * again), or the error of recvmsg. */
static inline int drover_handoff_recv(int chan) {
  char byte = 0;
  struct iovec iov;
  iov.iov_base = &byte;
  iov.iov_len = 1;
  union {
    struct cmsghdr align;
    char buf[CMSG_SPACE(sizeof(int))];
  } control;
  memset(&control, 0, sizeof(control));
  struct msghdr msg;
  memset(&msg, 0, sizeof(msg));
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  msg.msg_control = control.buf;
  msg.msg_controllen = sizeof(control.buf);
  ssize_t n;
  do {
#ifdef MSG_CMSG_CLOEXEC
    n = recvmsg(chan, &msg, MSG_CMSG_CLOEXEC);
#else
    n = recvmsg(chan, &msg, 0);
#endif
  } while (n < 0 && errno == EINTR);
  if (n < 0) return -1;
  if (n == 0) {
    errno = EPIPE;
    return -1;
  }
  int fd = -1;
  struct cmsghdr* cmsg = CMSG_FIRSTHDR(&msg);
  if (cmsg != NULL && cmsg->cmsg_level == SOL_SOCKET && cmsg->cmsg_type == SCM_RIGHTS &&
      cmsg->cmsg_len == CMSG_LEN(sizeof(int))) {
    memcpy(&fd, CMSG_DATA(cmsg), sizeof(int));
  }
  if (fd < 0 || byte != DROVER_HANDOFF_CONNECTION || (msg.msg_flags & MSG_CTRUNC)) {
    if (fd >= 0) close(fd);
    errno = EPROTO;
    return -1;
  }
#ifndef MSG_CMSG_CLOEXEC
  fcntl(fd, F_SETFD, FD_CLOEXEC);
#endif
  return fd;
}

/* The supervisor's side: passes `conn` over `chan` (the caller keeps its
 * own copy and closes it). Returns 0, or -1 with errno (EAGAIN when a
 * non-blocking channel is full). */
static inline int drover_handoff_send(int chan, int conn) {
  char byte = DROVER_HANDOFF_CONNECTION;
  struct iovec iov;
  iov.iov_base = &byte;
  iov.iov_len = 1;
  union {
    struct cmsghdr align;
    char buf[CMSG_SPACE(sizeof(int))];
  } control;
  memset(&control, 0, sizeof(control));
  struct msghdr msg;
  memset(&msg, 0, sizeof(msg));
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  msg.msg_control = control.buf;
  msg.msg_controllen = sizeof(control.buf);
  struct cmsghdr* cmsg = CMSG_FIRSTHDR(&msg);
  cmsg->cmsg_level = SOL_SOCKET;
  cmsg->cmsg_type = SCM_RIGHTS;
  cmsg->cmsg_len = CMSG_LEN(sizeof(int));
  memcpy(CMSG_DATA(cmsg), &conn, sizeof(int));
  ssize_t n;
  do {
    n = sendmsg(chan, &msg, MSG_NOSIGNAL | MSG_DONTWAIT);
  } while (n < 0 && errno == EINTR);
  return n == 1 ? 0 : -1;
}

#ifdef __cplusplus
}
#endif

#endif /* DROVER_HANDOFF_H_ */
