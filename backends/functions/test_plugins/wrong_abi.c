/* Test fixture: a plugin built for a future ABI (99). Loading it must fail
 * with "plugin X was built for plugin ABI 99; this drover speaks 1". */
#include <stddef.h>

#include "drover/plugin.h"

static int Never(const struct drover_call* call) {
  (void)call;
  return 1;
}

static const struct drover_function kFunctions[] = {{"future", Never}};
static const struct drover_plugin kPlugin = {99, "future", 1, kFunctions};

DROVER_PLUGIN_EXPORT const struct drover_plugin* drover_plugin_entry(void) { return &kPlugin; }
