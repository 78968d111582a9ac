// The checks every family makes before it launches anything: handle, descriptor and tensor pointers,
// sizes against the kernels' 32-bit indexing (in 64-bit arithmetic, so the check itself cannot overflow)
// and the caller's workspace. Each returns CC_SUCCESS or records a message that starts with the C
// function's name and returns the failure status; chain them with CC_TRY.
#ifndef CHEAPCONV_LAUNCH_CHECKS_H
#define CHEAPCONV_LAUNCH_CHECKS_H

#include "cheapconv.h"
#include "status.h"

#include <cstddef>
#include <cstdint>
#include <initializer_list>

namespace cc {

// The kernels index every tensor with 32-bit ints.
inline constexpr std::int64_t kMaxElements = 2147483647;

// The product of non-negative factors, saturated at INT64_MAX: four int sizes can overflow even 64 bits
// (2^124), and a saturated count still fails check_elements, as it should.
inline std::int64_t product(std::initializer_list<std::int64_t> factors)
{
    std::int64_t result = 1;
    for (const std::int64_t factor : factors)
        if (__builtin_mul_overflow(result, factor, &result)) return INT64_MAX;
    return result;
}

cc_status check_handle(const char* call, cc_handle handle);

// `what` is the parameter's name ("problem", "options", ...).
cc_status check_not_null(const char* call, const void* pointer, const char* what);

struct Tensor {
    const void* pointer;
    const char* name;
};

// Every tensor non-NULL and aligned to its 4-byte elements (fp32 or int32): a misaligned device pointer
// would fault asynchronously, far from the call that caused it.
cc_status check_tensors(const char* call, std::initializer_list<Tensor> tensors);

// A tensor's extent, for the aliasing check.
struct Extent {
    const void* pointer;
    std::int64_t bytes;
    const char* name;
};

// No output overlaps an input: the kernels read inputs through `const __restrict__` pointers (the GPU's
// read-only cache), so an aliased output gives wrong results that no emulator run would show.
cc_status check_disjoint(const char* call, std::initializer_list<Extent> outputs, std::initializer_list<Extent> inputs);

// value >= 1.
cc_status check_positive(const char* call, const char* name, std::int64_t value);

// 0 <= value.
cc_status check_not_negative(const char* call, const char* name, std::int64_t value);

// A tensor of `count` elements fits the kernels' indices (count <= 2^31 - 1); `what` names it.
cc_status check_elements(const char* call, const char* what, std::int64_t count);

// options->precision is a cc_precision.
cc_status check_precision(const char* call, int precision);

// A float parameter is finite and at least `minimum`; `rule` completes "must be ..." in the message.
cc_status check_finite_at_least(const char* call, const char* name, float value, float minimum, const char* rule);

// needed == 0: any workspace (NULL included) is fine. Otherwise the workspace must be non-NULL, 4-byte
// aligned and at least `needed` bytes; `query` is the *_workspace_size call that says how much.
cc_status check_workspace(const char* call, const void* workspace, std::size_t bytes, std::size_t needed, const char* query);

} // namespace cc

#endif
