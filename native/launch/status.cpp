// Status strings, the thread-local last-error message and the version: the parts of the C ABI that
// every other call relies on and that need no handle.
#include "status.h"

#include <cstdarg>
#include <cstdio>

namespace cc {
namespace {

// One message per thread: a failure on one thread never overwrites what another thread is reading.
thread_local char t_last_error[kMessageCapacity] = "";

} // namespace

cc_status fail(cc_status status, const char* format, ...)
{
    va_list args;
    va_start(args, format);
    std::vsnprintf(t_last_error, sizeof t_last_error, format, args);
    va_end(args);
    return status;
}

void format_into(char* text, std::size_t capacity, const char* format, ...)
{
    if (text == nullptr || capacity == 0) return;
    va_list args;
    va_start(args, format);
    std::vsnprintf(text, capacity, format, args);
    va_end(args);
}

} // namespace cc

extern "C" {

CC_API int cc_version(void) { return CC_VERSION; }

CC_API const char* cc_status_string(cc_status status)
{
    // As an int: a C caller may pass any value, and a C++ switch over the enum could assume it cannot.
    switch (static_cast<int>(status)) {
    case CC_SUCCESS: return "CC_SUCCESS";
    case CC_ERROR_INVALID_VALUE: return "CC_ERROR_INVALID_VALUE";
    case CC_ERROR_NOT_SUPPORTED: return "CC_ERROR_NOT_SUPPORTED";
    case CC_ERROR_WORKSPACE: return "CC_ERROR_WORKSPACE";
    case CC_ERROR_NO_DEVICE: return "CC_ERROR_NO_DEVICE";
    case CC_ERROR_DRIVER: return "CC_ERROR_DRIVER";
    case CC_ERROR_LAUNCH: return "CC_ERROR_LAUNCH";
    case CC_ERROR_EMULATOR: return "CC_ERROR_EMULATOR";
    case CC_ERROR_INTERNAL: return "CC_ERROR_INTERNAL";
    }
    return "CC_ERROR_UNKNOWN";
}

CC_API const char* cc_last_error(void) { return cc::t_last_error; }

} // extern "C"
