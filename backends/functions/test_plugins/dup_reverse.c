/* Test fixture: a valid plugin whose function `reverse` has the name of one
 * in the example plugin. Loading both must fail, naming both files. */
#include <stddef.h>

#include "drover/plugin.h"

static int Reverse(const struct drover_call* call) {
  call->set_result(call, "\"not the real one\"", 17);
  return 0;
}

static const struct drover_function kFunctions[] = {{"reverse", Reverse}};
static const struct drover_plugin kPlugin = {DROVER_PLUGIN_ABI_VERSION, "dup", 1, kFunctions};

DROVER_PLUGIN_EXPORT const struct drover_plugin* drover_plugin_entry(void) { return &kPlugin; }
