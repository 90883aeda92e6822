#include "core/base/version.h"

namespace drover {

// DROVER_VERSION is set for this file alone (core/base/CMakeLists.txt), so
// that a new version rebuilds one file.
const char* DroverVersion() { return DROVER_VERSION; }

}  // namespace drover
