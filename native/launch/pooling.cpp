// Global average pooling and zero padding of the C ABI (kernels/pooling.cu), forward and backward.
// Ported from the C# launcher (GpuBackend.Norm.cs) and CpuBackend.CheckNormShape / CheckPadding.
#include "checks.h"
#include "geometry.h"
#include "launch.h"

#include <cstdint>

namespace cc {
namespace {

using i64 = std::int64_t;

constexpr unsigned kPoolBlock = 256; // global average pool forward: 8 warps, one (n, c) plane each

struct PoolText {
    const cc_pool_problem& p;
    void operator()(char* text, std::size_t capacity) const
    {
        format_into(text, capacity, "pool n=%d c=%d h=%d w=%d padding top=%d bottom=%d left=%d right=%d", p.n, p.c, p.h, p.w,
                    p.pad_top, p.pad_bottom, p.pad_left, p.pad_right);
    }
};

i64 input_elements(const cc_pool_problem& p) { return product({p.n, p.c, p.h, p.w}); }
i64 padded_elements(const cc_pool_problem& p)
{
    return product({p.n, p.c, i64{p.h} + p.pad_top + p.pad_bottom, i64{p.w} + p.pad_left + p.pad_right});
}
i64 bytes(i64 elements) { return elements * static_cast<i64>(sizeof(float)); }

cc_status validate(const char* call, const cc_pool_problem* problem)
{
    CC_TRY(check_not_null(call, problem, "problem"));
    const cc_pool_problem& p = *problem;
    CC_TRY(check_positive(call, "n", p.n));
    CC_TRY(check_positive(call, "c", p.c));
    CC_TRY(check_positive(call, "h", p.h));
    CC_TRY(check_positive(call, "w", p.w));
    CC_TRY(check_not_negative(call, "pad_top", p.pad_top));
    CC_TRY(check_not_negative(call, "pad_bottom", p.pad_bottom));
    CC_TRY(check_not_negative(call, "pad_left", p.pad_left));
    CC_TRY(check_not_negative(call, "pad_right", p.pad_right));
    CC_TRY(check_elements(call, "x (n*c*h*w)", input_elements(p)));
    return check_elements(call, "the padded tensor (n*c*(h+pad_top+pad_bottom)*(w+pad_left+pad_right))", padded_elements(p));
}

// Global average pooling reads the whole plane: padding would change the mean, so it must be 0.
cc_status prepare_global(const char* call, cc_handle handle, const cc_pool_problem* problem)
{
    CC_TRY(check_handle(call, handle));
    CC_TRY(validate(call, problem));
    const cc_pool_problem& p = *problem;
    if (p.pad_top != 0 || p.pad_bottom != 0 || p.pad_left != 0 || p.pad_right != 0)
        return fail(CC_ERROR_INVALID_VALUE, "%s: global average pooling takes no padding, got top=%d bottom=%d left=%d right=%d", call,
                    p.pad_top, p.pad_bottom, p.pad_left, p.pad_right);
    return CC_SUCCESS;
}

// Zero padding: from (source, source_elements) to (destination, destination_elements).
template <KernelId Id>
cc_status pad(const char* call, cc_handle handle, const cc_pool_problem* problem, const float* source, const char* source_name,
              float* destination, const char* destination_name, bool forward, void* stream)
{
    CC_TRY(check_handle(call, handle));
    CC_TRY(validate(call, problem));
    const cc_pool_problem& p = *problem;
    CC_TRY(check_tensors(call, {{source, source_name}, {destination, destination_name}}));
    const i64 source_elements = forward ? input_elements(p) : padded_elements(p);
    const i64 destination_elements = forward ? padded_elements(p) : input_elements(p);
    CC_TRY(check_disjoint(call, {{destination, bytes(destination_elements), destination_name}},
                          {{source, bytes(source_elements), source_name}}));
    // One thread per destination element; every size fits an int (validated).
    return launch<Id>(*handle, elementwise_geometry(destination_elements), stream, PoolText{p}, p.n * p.c, p.h, p.w, p.pad_top,
                      p.pad_bottom, p.pad_left, p.pad_right, source, destination);
}

} // namespace
} // namespace cc

using namespace cc;

extern "C" {

CC_API cc_status cc_pool_validate(const cc_pool_problem* problem) { return validate("cc_pool_validate", problem); }

CC_API cc_status cc_global_avg_pool_forward(cc_handle handle, const cc_pool_problem* problem, const float* x, float* y, void* stream)
{
    constexpr const char* call = "cc_global_avg_pool_forward";
    CC_TRY(prepare_global(call, handle, problem));
    const cc_pool_problem& p = *problem;
    const int planes = p.n * p.c;
    CC_TRY(check_tensors(call, {{x, "x"}, {y, "y"}}));
    CC_TRY(check_disjoint(call, {{y, bytes(planes), "y"}}, {{x, bytes(input_elements(p)), "x"}}));
    return launch<KernelId::global_avg_pool_forward>(*handle, warp_per_item_geometry(planes, kPoolBlock), stream, PoolText{p}, planes,
                                                     p.h * p.w, x, y);
}

CC_API cc_status cc_global_avg_pool_backward(cc_handle handle, const cc_pool_problem* problem, const float* dy, float* dx, void* stream)
{
    constexpr const char* call = "cc_global_avg_pool_backward";
    CC_TRY(prepare_global(call, handle, problem));
    const cc_pool_problem& p = *problem;
    const int planes = p.n * p.c;
    CC_TRY(check_tensors(call, {{dy, "dy"}, {dx, "dx"}}));
    CC_TRY(check_disjoint(call, {{dx, bytes(input_elements(p)), "dx"}}, {{dy, bytes(planes), "dy"}}));
    return launch<KernelId::global_avg_pool_backward>(*handle, elementwise_geometry(input_elements(p)), stream, PoolText{p}, planes,
                                                      p.h * p.w, dy, dx);
}

CC_API cc_status cc_zero_pad_forward(cc_handle handle, const cc_pool_problem* problem, const float* x, float* y, void* stream)
{
    return pad<KernelId::zero_pad_forward>("cc_zero_pad_forward", handle, problem, x, "x", y, "y", true, stream);
}

CC_API cc_status cc_zero_pad_backward(cc_handle handle, const cc_pool_problem* problem, const float* dy, float* dx, void* stream)
{
    return pad<KernelId::zero_pad_backward>("cc_zero_pad_backward", handle, problem, dy, "dy", dx, "dx", false, stream);
}

} // extern "C"
