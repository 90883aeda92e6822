// durable_loop: a second floor for `tools/bench spawn`. Runs a command N
// times with at most J children in flight, like spawn_loop, but does on one
// thread the work a durable job runner cannot skip for each task, the way
// drover's worker and coordinator do it, and nothing else:
//
//   - the child's stdout and stderr are pipes, read to their end;
//   - an empty outputs file is made for it before it starts ($DROVER_OUTPUT),
//     and looked at and removed after it ends;
//   - its exit is seen through a pidfd in an epoll set, then reaped;
//   - its start and its end are recorded in a SQLite database in WAL mode
//     (synchronous=NORMAL, as drover's store), in one transaction for all
//     the starts and ends of a loop turn.
//
//   durable_loop DIR N J CMD [ARGS...]
//
// DIR holds the database and the outputs files (created; left behind for
// the caller to remove). Prints "tasks=N seconds=S rate=R/s". The ratio of
// drover to it is what drover's own design costs beyond that work (threads,
// messages, scheduling); the ratio of it to spawn_loop, what the work
// costs. Exit status: 0 when every child exited 0, 1 when one failed or a
// step failed, 2 on bad usage.
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <spawn.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "loop_args.h"

extern char** environ;

enum { kMaxInFlight = 1024, kMaxEvents = 64 };

struct Child {
  pid_t pid;
  int pidfd;
  int out, err;  // read ends, -1 once at their end
  long task;
};

static struct Child children[kMaxInFlight];
static sqlite3* db;
static sqlite3_stmt* start_stmt;
static sqlite3_stmt* end_stmt;
static const char* dir;

static void Usage(void) {
  fprintf(stderr,
          "usage: durable_loop DIR N J CMD [ARGS...]\n"
          "  runs CMD N times with J in flight, with pipes, an outputs file,\n"
          "  a pidfd and a SQLite record of each start and end\n"
          "  and prints: tasks=N seconds=S rate=R/s\n");
}

static _Noreturn void Die(const char* what, const char* detail) {
  fprintf(stderr, "durable_loop: %s: %s\n", what, detail);
  exit(1);
}

static void Exec(const char* sql) {
  char* message = NULL;
  if (sqlite3_exec(db, sql, NULL, NULL, &message) != SQLITE_OK) Die(sql, message);
}

static void Step(sqlite3_stmt* stmt, long task, long value) {
  sqlite3_bind_int64(stmt, 1, task);
  sqlite3_bind_int64(stmt, 2, value);
  if (sqlite3_step(stmt) != SQLITE_DONE) Die("sqlite3_step", sqlite3_errmsg(db));
  sqlite3_reset(stmt);
}

static void OutputsPath(long task, char* path, size_t size) {
  snprintf(path, size, "%s/%ld.outputs", dir, task);
}

// Drains `*fd` without blocking; closes it at its end.
static void Drain(int epfd, int* fd) {
  char buffer[4096];
  for (;;) {
    const ssize_t n = read(*fd, buffer, sizeof buffer);
    if (n > 0) continue;
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && errno == EAGAIN) return;
    epoll_ctl(epfd, EPOLL_CTL_DEL, *fd, NULL);
    close(*fd);
    *fd = -1;
    return;
  }
}

static int Start(int epfd, struct Child* c, long task, char** argv) {
  char path[PATH_MAX];
  OutputsPath(task, path, sizeof path);
  const int file = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0666);
  if (file < 0) Die("open", strerror(errno));
  close(file);
  int out[2], err[2];
  if (pipe2(out, O_CLOEXEC) != 0 || pipe2(err, O_CLOEXEC) != 0) Die("pipe2", strerror(errno));
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_adddup2(&actions, out[1], 1);
  posix_spawn_file_actions_adddup2(&actions, err[1], 2);
  const int rc = posix_spawnp(&c->pid, argv[0], &actions, NULL, argv, environ);
  posix_spawn_file_actions_destroy(&actions);
  close(out[1]);
  close(err[1]);
  if (rc != 0) Die("posix_spawnp", strerror(rc));
  c->pidfd = (int)syscall(SYS_pidfd_open, c->pid, 0);
  if (c->pidfd < 0) Die("pidfd_open", strerror(errno));
  c->out = out[0];
  c->err = err[0];
  c->task = task;
  fcntl(c->out, F_SETFL, O_NONBLOCK);
  fcntl(c->err, F_SETFL, O_NONBLOCK);
  const long slot = c - children;
  struct epoll_event ev = {.events = EPOLLIN};
  ev.data.u64 = (uint64_t)slot * 4;
  if (epoll_ctl(epfd, EPOLL_CTL_ADD, c->pidfd, &ev) != 0) Die("epoll_ctl", strerror(errno));
  ev.data.u64 = (uint64_t)slot * 4 + 1;
  epoll_ctl(epfd, EPOLL_CTL_ADD, c->out, &ev);
  ev.data.u64 = (uint64_t)slot * 4 + 2;
  epoll_ctl(epfd, EPOLL_CTL_ADD, c->err, &ev);
  Step(start_stmt, task, (long)c->pid);
  return 0;
}

// The child of slot `c` exited: its pipes drained, reaped, its outputs file
// looked at and removed, its end recorded. 1 when it failed.
static int End(int epfd, struct Child* c) {
  if (c->out >= 0) Drain(epfd, &c->out);
  if (c->err >= 0) Drain(epfd, &c->err);
  epoll_ctl(epfd, EPOLL_CTL_DEL, c->pidfd, NULL);
  close(c->pidfd);
  int status = 0;
  while (waitpid(c->pid, &status, 0) < 0 && errno == EINTR) {
  }
  char path[PATH_MAX];
  OutputsPath(c->task, path, sizeof path);
  struct stat st;
  if (stat(path, &st) == 0) unlink(path);
  const int code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  Step(end_stmt, c->task, code);
  c->pid = 0;
  return code != 0;
}

int main(int argc, char** argv) {
  if (argc < 5) {
    Usage();
    return 2;
  }
  dir = argv[1];
  const long n = ParsePositive(argv[2], LONG_MAX);
  const long j = ParsePositive(argv[3], kMaxInFlight);
  if (n == 0 || j == 0) {
    fprintf(stderr, "durable_loop: N and J must be positive integers (J at most %d)\n",
            kMaxInFlight);
    Usage();
    return 2;
  }
  char** child_argv = &argv[4];
  if (mkdir(dir, 0755) != 0 && errno != EEXIST) Die(dir, strerror(errno));
  char db_path[PATH_MAX];
  snprintf(db_path, sizeof db_path, "%s/state.db", dir);
  if (sqlite3_open(db_path, &db) != SQLITE_OK) Die(db_path, sqlite3_errmsg(db));
  Exec("PRAGMA journal_mode=WAL");
  Exec("PRAGMA synchronous=NORMAL");
  Exec("CREATE TABLE IF NOT EXISTS attempts (task INTEGER PRIMARY KEY, pid INTEGER, "
       "exit_code INTEGER)");
  if (sqlite3_prepare_v2(db, "INSERT OR REPLACE INTO attempts (task, pid) VALUES (?1, ?2)",
                         -1, &start_stmt, NULL) != SQLITE_OK ||
      sqlite3_prepare_v2(db, "UPDATE attempts SET exit_code = ?2 WHERE task = ?1", -1,
                         &end_stmt, NULL) != SQLITE_OK) {
    Die("prepare", sqlite3_errmsg(db));
  }
  const int epfd = epoll_create1(EPOLL_CLOEXEC);
  if (epfd < 0) Die("epoll_create1", strerror(errno));

  struct timespec start, end;
  clock_gettime(CLOCK_MONOTONIC, &start);
  long started = 0, in_flight = 0, failed = 0;
  Exec("BEGIN");
  for (long s = 0; s < j && started < n; ++s) {
    Start(epfd, &children[s], started++, child_argv);
    ++in_flight;
  }
  Exec("COMMIT");
  while (in_flight > 0) {
    struct epoll_event events[kMaxEvents];
    const int count = epoll_wait(epfd, events, kMaxEvents, -1);
    if (count < 0 && errno == EINTR) continue;
    if (count < 0) Die("epoll_wait", strerror(errno));
    Exec("BEGIN");
    for (int i = 0; i < count; ++i) {
      struct Child* c = &children[events[i].data.u64 / 4];
      const int kind = (int)(events[i].data.u64 % 4);
      if (c->pid == 0) continue;  // ended earlier in this turn
      if (kind == 1 && c->out >= 0) Drain(epfd, &c->out);
      if (kind == 2 && c->err >= 0) Drain(epfd, &c->err);
      if (kind != 0) continue;
      failed += End(epfd, c);
      --in_flight;
      if (started < n) {
        Start(epfd, c, started++, child_argv);
        ++in_flight;
      }
    }
    Exec("COMMIT");
  }
  clock_gettime(CLOCK_MONOTONIC, &end);
  const double seconds =
      (double)(end.tv_sec - start.tv_sec) + (double)(end.tv_nsec - start.tv_nsec) / 1e9;
  printf("tasks=%ld seconds=%.3f rate=%.0f/s\n", n, seconds,
         seconds > 0 ? (double)n / seconds : 0.0);
  sqlite3_finalize(start_stmt);
  sqlite3_finalize(end_stmt);
  sqlite3_close(db);
  if (failed > 0) fprintf(stderr, "durable_loop: %ld children failed\n", failed);
  return failed > 0 ? 1 : 0;
}
