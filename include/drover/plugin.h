/*
 * drover plugin ABI, version 1: functions for the `threads` backend (and for
 * `fork` pools in `cow` mode) from a shared library.
 *
 * This header is public surface: a plugin built against it keeps working
 * with every drover that speaks the same DROVER_PLUGIN_ABI_VERSION. Plain C,
 * so a plugin may be written in C, C++, Rust, Zig or anything else that can
 * export a C function. docs/backends/threads.md has a complete example.
 *
 * How it works
 *   drover dlopen()s the library (RTLD_NOW | RTLD_LOCAL), looks up the single
 *   entry symbol DROVER_PLUGIN_ENTRY_SYMBOL ("drover_plugin_entry"), calls
 *   it once and reads the returned `struct drover_plugin`. Its first field is
 *   the ABI version the plugin was built for; drover refuses a plugin whose
 *   version it does not speak, naming the file and both versions. Each
 *   listed function is then registered under its name; a name already taken
 *   (by a built-in or another plugin) is an error naming both sources, and
 *   nothing of that plugin is registered.
 *
 * Versioning
 *   The layout of every struct below and the meaning of every field are
 *   frozen for version 1. Any change to them is a new version number. The
 *   entry symbol's name and signature never change across versions, and
 *   `abi_version` stays the first field of `struct drover_plugin`, so any
 *   drover can read a plugin's version and give a clear error.
 *
 * Threading
 *   A function may be called on several threads at once (one call per pool
 *   thread), so it must be thread-safe. Everything in a `drover_call` is
 *   valid only until the function returns, and only for that call; the
 *   callbacks may be called from any thread while the call is running.
 *
 * Timeouts and cancellation are cooperative: drover cannot stop a thread. A
 *   function that runs for a while should poll `cancelled` (or wait with
 *   `sleep_ms`) and return soon after it reports 1. One that ignores it keeps
 *   its pool thread busy until it returns; the attempt is reported as timed
 *   out (or cancelled) anyway, and its late result is discarded.
 *
 * Crashes: a function that crashes (SIGSEGV, abort, ...) kills the whole
 *   worker process. Run code that may crash or hang in a `fork` pool with
 *   `mode: cow` instead, where the same plugin runs in child processes.
 */
#ifndef DROVER_PLUGIN_H_
#define DROVER_PLUGIN_H_

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* The ABI version this header describes. */
#define DROVER_PLUGIN_ABI_VERSION 1

/* The name of the one symbol a plugin exports (see drover_plugin_entry). */
#define DROVER_PLUGIN_ENTRY_SYMBOL "drover_plugin_entry"

/* Marks the entry function as exported even when the plugin is built with
 * -fvisibility=hidden (recommended: nothing else needs to be visible). */
#if defined(__GNUC__)
#define DROVER_PLUGIN_EXPORT __attribute__((visibility("default")))
#else
#define DROVER_PLUGIN_EXPORT
#endif

/*
 * One call of a plugin function. drover owns it and everything it points to;
 * it lives until the function returns. Never store the pointer.
 */
struct drover_call {
  /* The call's arguments: JSON text (the task's `args:`), UTF-8, exactly
   * `args_len` bytes, NOT NUL-terminated. "null" when the task has no args.
   * drover has parsed it already, so it is always valid JSON. Read-only. */
  const char* args_json;
  size_t args_len;

  /* Returns 1 once the call should stop (its timeout passed, the task was
   * cancelled, the worker is shutting down), else 0. Cheap (an atomic
   * load): poll it every few milliseconds of work. Once 1, stays 1. */
  int (*cancelled)(const struct drover_call* call);

  /* Waits up to `ms` milliseconds, returning early when the call is
   * cancelled. Returns 1 if cancelled, else 0 (the full time passed). Use it
   * instead of sleep() so that a timeout or cancel wakes the function. */
  int (*sleep_ms)(const struct drover_call* call, uint64_t ms);

  /* Milliseconds left until the call's deadline (0 when it has passed), or
   * -1 when the task has no timeout. */
  int64_t (*remaining_ms)(const struct drover_call* call);

  /* Sets the call's result: `len` bytes of JSON text at `json` (need not be
   * NUL-terminated). drover copies the bytes before returning, so the
   * plugin keeps ownership of its buffer. A later call replaces an earlier
   * one. Text that is not valid JSON fails the task with a message naming
   * the plugin file and the function. Without set_result a successful call
   * returns JSON null. */
  void (*set_result)(const struct drover_call* call, const char* json,
                     size_t len);

  /* Sets the call's error message: a NUL-terminated UTF-8 string, copied
   * before returning (NULL counts as ""). It is shown to the user when the
   * function returns non-zero; a later call replaces an earlier one. */
  void (*set_error)(const struct drover_call* call, const char* message);

  /* Private to drover. Do not read or write. */
  void* host;
};

/*
 * A plugin function. Returns 0 on success (the result is what set_result
 * stored, or null) and non-zero on failure (the task fails with the message
 * given to set_error, or "function 'NAME' failed with code N"). It must not
 * let a C++ exception, a longjmp or a Rust panic escape.
 */
typedef int (*drover_function_fn)(const struct drover_call* call);

struct drover_function {
  /* The name tasks use in `fn:`. NUL-terminated, 1 to 128 characters from
   * [A-Za-z0-9_.:-]. Must stay valid while the library is loaded (a string
   * literal is ideal). */
  const char* name;
  /* The function. Must not be NULL. */
  drover_function_fn fn;
};

struct drover_plugin {
  /* DROVER_PLUGIN_ABI_VERSION as the plugin saw it when it was built. This
   * field stays first in every version. */
  uint32_t abi_version;
  /* A short human name for messages (e.g. "example"); may be NULL. */
  const char* name;
  /* The functions, `function_count` entries. The array and the strings it
   * points to must stay valid while the library is loaded (static data). */
  size_t function_count;
  const struct drover_function* functions;
};

/*
 * The entry point. drover calls it once per load, from one thread, and
 * reads the struct immediately; the plugin keeps ownership (return the
 * address of a static const struct). Returning NULL refuses the load.
 */
DROVER_PLUGIN_EXPORT const struct drover_plugin* drover_plugin_entry(void);

/* The entry point's type, for hosts that look it up with dlsym. */
typedef const struct drover_plugin* (*drover_plugin_entry_fn)(void);

#ifdef __cplusplus
} /* extern "C" */
#endif

#endif /* DROVER_PLUGIN_H_ */
