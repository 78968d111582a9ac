// Shared argument checks of the launchers (see checks.h).
#include "checks.h"

#include <cmath>
#include <cstdint>

namespace cc {
namespace {

bool misaligned(const void* pointer) { return reinterpret_cast<std::uintptr_t>(pointer) % 4 != 0; }

} // namespace

cc_status check_handle(const char* call, cc_handle handle)
{
    if (handle == nullptr) return fail(CC_ERROR_INVALID_VALUE, "%s: handle is NULL (create one with cc_create)", call);
    return CC_SUCCESS;
}

cc_status check_not_null(const char* call, const void* pointer, const char* what)
{
    if (pointer == nullptr) return fail(CC_ERROR_INVALID_VALUE, "%s: %s is NULL", call, what);
    return CC_SUCCESS;
}

cc_status check_tensors(const char* call, std::initializer_list<Tensor> tensors)
{
    for (const Tensor& t : tensors) {
        if (t.pointer == nullptr) return fail(CC_ERROR_INVALID_VALUE, "%s: %s is NULL", call, t.name);
        if (misaligned(t.pointer))
            return fail(CC_ERROR_INVALID_VALUE, "%s: %s (%p) is not aligned to its 4-byte elements", call, t.name, t.pointer);
    }
    return CC_SUCCESS;
}

cc_status check_disjoint(const char* call, std::initializer_list<Extent> outputs, std::initializer_list<Extent> inputs)
{
    for (const Extent& out : outputs) {
        const auto out_begin = reinterpret_cast<std::uintptr_t>(out.pointer);
        for (const Extent& in : inputs) {
            if (out.bytes <= 0 || in.bytes <= 0) continue; // an empty extent overlaps nothing
            const auto in_begin = reinterpret_cast<std::uintptr_t>(in.pointer);
            if (out_begin < in_begin + static_cast<std::uintptr_t>(in.bytes) &&
                in_begin < out_begin + static_cast<std::uintptr_t>(out.bytes))
                return fail(CC_ERROR_INVALID_VALUE, "%s: %s overlaps %s; the kernel reads %s through a restrict pointer, so the output must be a separate buffer",
                            call, out.name, in.name, in.name);
        }
    }
    return CC_SUCCESS;
}

cc_status check_positive(const char* call, const char* name, std::int64_t value)
{
    if (value < 1) return fail(CC_ERROR_INVALID_VALUE, "%s: %s must be positive, got %lld", call, name, static_cast<long long>(value));
    return CC_SUCCESS;
}

cc_status check_not_negative(const char* call, const char* name, std::int64_t value)
{
    if (value < 0) return fail(CC_ERROR_INVALID_VALUE, "%s: %s must not be negative, got %lld", call, name, static_cast<long long>(value));
    return CC_SUCCESS;
}

cc_status check_precision(const char* call, int precision)
{
    if (precision != CC_PRECISION_TF32 && precision != CC_PRECISION_FP32)
        return fail(CC_ERROR_INVALID_VALUE, "%s: options->precision must be CC_PRECISION_TF32 (0) or CC_PRECISION_FP32 (1), got %d", call,
                    precision);
    return CC_SUCCESS;
}

cc_status check_elements(const char* call, const char* what, std::int64_t count)
{
    if (count > kMaxElements)
        return fail(CC_ERROR_INVALID_VALUE, "%s: %s has %lld elements, more than the 2^31-1 the kernels index", call, what,
                    static_cast<long long>(count));
    return CC_SUCCESS;
}

cc_status check_finite_at_least(const char* call, const char* name, float value, float minimum, const char* rule)
{
    if (!std::isfinite(value) || !(value >= minimum))
        return fail(CC_ERROR_INVALID_VALUE, "%s: %s must be %s, got %g", call, name, rule, static_cast<double>(value));
    return CC_SUCCESS;
}

cc_status check_workspace(const char* call, const void* workspace, std::size_t bytes, std::size_t needed, const char* query)
{
    if (needed == 0) return CC_SUCCESS;
    if (workspace == nullptr)
        return fail(CC_ERROR_WORKSPACE, "%s: workspace is NULL, %zu bytes needed; ask %s", call, needed, query);
    if (bytes < needed)
        return fail(CC_ERROR_WORKSPACE, "%s: workspace of %zu bytes given, %zu needed; ask %s", call, bytes, needed, query);
    if (misaligned(workspace))
        return fail(CC_ERROR_INVALID_VALUE, "%s: workspace (%p) is not aligned to 4 bytes", call, workspace);
    return CC_SUCCESS;
}

} // namespace cc
