// The drover version (the project's, from CMake): what `drover --version`
// prints and what a worker says in Hello.version. Not the protocol version.
#ifndef DROVER_CORE_BASE_VERSION_H_
#define DROVER_CORE_BASE_VERSION_H_

namespace drover {

const char* DroverVersion();

}  // namespace drover

#endif  // DROVER_CORE_BASE_VERSION_H_
