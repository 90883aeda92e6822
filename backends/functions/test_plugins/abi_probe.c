/* Test fixture: a plugin written in plain C that exercises every callback of
 * the ABI, including the ways a plugin can misbehave:
 *   bad_json     sets a result that is not JSON           -> error naming the file
 *   fail_code    returns 7 without an error message        -> "failed with code 7"
 *   fail_msg     set_error("disk on fire"), returns 1      -> that message
 *   echo         returns its args text unchanged           -> the args
 *   wait_cancel  sleeps with sleep_ms until cancelled      -> error "stopped"
 *   remaining    returns remaining_ms()                    -> -1 without timeout */
#include <stdint.h>
#include <stdio.h>

#include "drover/plugin.h"

static int BadJson(const struct drover_call* call) {
  call->set_result(call, "{nope", 5);
  return 0;
}

static int FailCode(const struct drover_call* call) {
  (void)call;
  return 7;
}

static int FailMsg(const struct drover_call* call) {
  call->set_error(call, "disk on fire");
  return 1;
}

static int Echo(const struct drover_call* call) {
  call->set_result(call, call->args_json, call->args_len);
  return 0;
}

static int WaitCancel(const struct drover_call* call) {
  /* Bounded: at most 10 minutes, in 50 ms naps that a cancel interrupts. */
  for (int i = 0; i < 12000; ++i) {
    if (call->sleep_ms(call, 50)) break;
  }
  if (!call->cancelled(call)) {
    call->set_error(call, "never cancelled");
    return 1;
  }
  call->set_error(call, "stopped");
  return 2;
}

static int Remaining(const struct drover_call* call) {
  char text[32];
  const int n = snprintf(text, sizeof text, "%lld", (long long)call->remaining_ms(call));
  call->set_result(call, text, (size_t)n);
  return 0;
}

static const struct drover_function kFunctions[] = {
    {"bad_json", BadJson}, {"fail_code", FailCode},       {"fail_msg", FailMsg},
    {"echo", Echo},        {"wait_cancel", WaitCancel}, {"remaining", Remaining},
};
static const struct drover_plugin kPlugin = {
    DROVER_PLUGIN_ABI_VERSION, "abi-probe", sizeof kFunctions / sizeof kFunctions[0], kFunctions};

DROVER_PLUGIN_EXPORT const struct drover_plugin* drover_plugin_entry(void) { return &kPlugin; }
