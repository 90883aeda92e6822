// What the C loops of tools/bench (spawn_loop.c, durable_loop.c) share:
// their count arguments, read strictly.
#ifndef DROVER_TOOLS_BENCH_LOOP_ARGS_H_
#define DROVER_TOOLS_BENCH_LOOP_ARGS_H_

#include <errno.h>
#include <stdlib.h>

// Parses a positive decimal integer no larger than `max`; 0 on failure.
static inline long ParsePositive(const char* text, long max) {
  char* end = NULL;
  errno = 0;
  long value = strtol(text, &end, 10);
  if (errno != 0 || end == text || *end != '\0' || value <= 0 || value > max) {
    return 0;
  }
  return value;
}

#endif  // DROVER_TOOLS_BENCH_LOOP_ARGS_H_
