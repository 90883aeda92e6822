// spawn_loop: the floor for `tools/bench spawn`. Runs a command N times with
// at most J children in flight, using nothing but posix_spawnp and waitpid,
// and prints "tasks=N seconds=S rate=R/s".
//
//   spawn_loop N J CMD [ARGS...]
//
// It is what any runner on this machine pays per task before it does anything
// of its own (no capture, no bookkeeping), so drover's figure is read as a
// ratio to it. Exit status: 0 when every child exited 0, 1 when any child
// failed or could not be spawned, 2 on bad usage.
#include <errno.h>
#include <limits.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "loop_args.h"

extern char** environ;

static void Usage(void) {
  fprintf(stderr,
          "usage: spawn_loop N J CMD [ARGS...]\n"
          "  runs CMD N times with J in flight (posix_spawnp + waitpid)\n"
          "  and prints: tasks=N seconds=S rate=R/s\n"
          "example: spawn_loop 10000 2 true\n");
}

static double Seconds(const struct timespec* start, const struct timespec* end) {
  return (double)(end->tv_sec - start->tv_sec) +
         (double)(end->tv_nsec - start->tv_nsec) / 1e9;
}

// Waits for one child; counts it as failed unless it exited 0. Returns 0 when
// a child was reaped, -1 when waitpid failed (no children left).
static int ReapOne(long* failed) {
  int status = 0;
  pid_t pid;
  do {
    pid = waitpid(-1, &status, 0);
  } while (pid < 0 && errno == EINTR);
  if (pid < 0) return -1;
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) ++*failed;
  return 0;
}

int main(int argc, char** argv) {
  if (argc < 4) {
    Usage();
    return 2;
  }
  const long n = ParsePositive(argv[1], LONG_MAX);
  const long j = ParsePositive(argv[2], 100000);
  if (n == 0 || j == 0) {
    fprintf(stderr, "spawn_loop: N and J must be positive integers\n");
    Usage();
    return 2;
  }
  char** child_argv = &argv[3];

  struct timespec start, end;
  clock_gettime(CLOCK_MONOTONIC, &start);

  long started = 0, in_flight = 0, failed = 0, spawn_errors = 0;
  int first_error = 0;
  while (started < n || in_flight > 0) {
    if (started < n && in_flight < j) {
      pid_t pid;
      const int rc = posix_spawnp(&pid, child_argv[0], NULL, NULL, child_argv, environ);
      ++started;
      if (rc != 0) {
        // Counted as a failed task; the loop goes on so the figure stays
        // comparable, but the exit status says something went wrong.
        if (spawn_errors++ == 0) first_error = rc;
        continue;
      }
      ++in_flight;
      continue;
    }
    if (ReapOne(&failed) != 0) break;  // no children: cannot happen, but never spin
    --in_flight;
  }

  clock_gettime(CLOCK_MONOTONIC, &end);
  const double seconds = Seconds(&start, &end);
  printf("tasks=%ld seconds=%.3f rate=%.0f/s\n", n, seconds,
         seconds > 0 ? (double)n / seconds : 0.0);
  if (spawn_errors > 0) {
    fprintf(stderr, "spawn_loop: %ld spawns failed (first: %s: %s)\n", spawn_errors,
            child_argv[0], strerror(first_error));
  }
  if (failed > 0) fprintf(stderr, "spawn_loop: %ld children failed\n", failed);
  return (spawn_errors > 0 || failed > 0) ? 1 : 0;
}
