// Turning job ids and task names into file names under <state_dir>/logs.
// Internal to core/store; Store::LogPath is the public entry point.
#ifndef DROVER_CORE_STORE_LOG_PATH_H_
#define DROVER_CORE_STORE_LOG_PATH_H_

#include <string>
#include <string_view>

namespace drover::store {

// Encodes `name` as one safe path component, injectively:
//  - bytes outside [A-Za-z0-9._=,[]-] become %XX (upper-case hex), so '/',
//    '%', NUL and control bytes never reach the file system;
//  - a leading '.' becomes %2E, so neither "." nor ".." nor a hidden file
//    can result;
//  - the empty name becomes "%" (no other encoding is a lone '%');
//  - an encoding longer than kMaxComponent bytes keeps a prefix and appends
//    '~' and 16 hex digits of a 64-bit FNV-1a hash of the whole name, to
//    stay under the 255-byte NAME_MAX of common file systems ('~' is always
//    encoded otherwise, so these cannot collide with short names).
std::string EncodePathComponent(std::string_view name);

inline constexpr size_t kMaxComponent = 200;

}  // namespace drover::store

#endif  // DROVER_CORE_STORE_LOG_PATH_H_
