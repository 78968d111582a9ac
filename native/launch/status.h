// Failure reporting for every C ABI call: the calling thread's last-error message and the CC_TRY chain.
//
// Why fixed buffers and printf: a call into the library must never throw or allocate on its success path,
// and reporting a failure must not fail in turn. The message lives in a thread-local buffer (status.cpp)
// that cc_last_error() hands out.
#ifndef CHEAPCONV_LAUNCH_STATUS_H
#define CHEAPCONV_LAUNCH_STATUS_H

#include "cheapconv.h"

#include <cstddef>

namespace cc {

// Capacity of the last-error message, NUL included; longer messages are truncated.
inline constexpr std::size_t kMessageCapacity = 4096;

// Records the printf-formatted message as the calling thread's last error and returns `status`, so a
// check reads `return fail(CC_ERROR_INVALID_VALUE, "n must be positive, got %d", n);`.
cc_status fail(cc_status status, const char* format, ...) __attribute__((format(printf, 2, 3)));

// snprintf that always NUL-terminates and never writes past `capacity` (a zero capacity writes nothing).
void format_into(char* text, std::size_t capacity, const char* format, ...) __attribute__((format(printf, 3, 4)));

} // namespace cc

// Returns from the enclosing function with the status of `expr` unless it is CC_SUCCESS. The failing
// check has already recorded the message.
#define CC_TRY(expr)                                   \
    do {                                               \
        const cc_status cc_try_status_ = (expr);       \
        if (cc_try_status_ != CC_SUCCESS) return cc_try_status_; \
    } while (0)

#endif
