// The element-wise calls of the C ABI (kernels/elementwise.cu): ReLU forward/backward, add, fill, scale,
// axpy, and the deterministic two-pass sum (partial sums per block into the caller's workspace, then one
// block adds them). Ported from the C# launcher (GpuBackend.Norm.cs) and CpuBackend.CheckNormElementCount.
// A length of 0 launches nothing (a zero grid is a launch error), except cc_sum, which writes 0.
#include "checks.h"
#include "geometry.h"
#include "launch.h"

#include <algorithm>
#include <cstdint>

namespace cc {
namespace {

using i64 = std::int64_t;

constexpr unsigned kSumBlock = 256;
constexpr i64 kSumMaxBlocks = 256; // the second pass adds at most this many partial sums in one block

struct LengthText {
    i64 length;
    void operator()(char* text, std::size_t capacity) const { format_into(text, capacity, "%lld elements", static_cast<long long>(length)); }
};

struct TensorListText {
    int count;
    void operator()(char* text, std::size_t capacity) const { format_into(text, capacity, "a list of %d tensors", count); }
};

cc_status validate(const char* call, const cc_elementwise_problem* problem)
{
    CC_TRY(check_not_null(call, problem, "problem"));
    CC_TRY(check_not_negative(call, "length", problem->length));
    return check_elements(call, "the tensor", problem->length);
}

cc_status prepare(const char* call, cc_handle handle, const cc_elementwise_problem* problem)
{
    CC_TRY(check_handle(call, handle));
    return validate(call, problem);
}

// Blocks of the sum's first pass: one per kSumBlock elements, at least 1, at most kSumMaxBlocks. Depends
// on the length only, so the order of additions does too.
i64 sum_blocks(i64 length) { return std::clamp((length + kSumBlock - 1) / kSumBlock, i64{1}, kSumMaxBlocks); }

i64 bytes(i64 length) { return length * static_cast<i64>(sizeof(float)); }

// The one-thread-per-element calls: (int length, args...) over the whole tensor. Their pointers may alias
// one another (the kernels read each element before writing it, and declare no restrict).
template <KernelId Id, class... Args>
cc_status flat(const char* call, cc_handle handle, const cc_elementwise_problem* problem, std::initializer_list<Tensor> tensors,
               void* stream, Args... args)
{
    CC_TRY(prepare(call, handle, problem));
    const i64 n = problem->length;
    if (n == 0) return CC_SUCCESS;
    CC_TRY(check_tensors(call, tensors));
    return launch<Id>(*handle, elementwise_geometry(n), stream, LengthText{n}, static_cast<int>(n), args...);
}

} // namespace
} // namespace cc

using namespace cc;

extern "C" {

CC_API cc_status cc_elementwise_validate(const cc_elementwise_problem* problem) { return validate("cc_elementwise_validate", problem); }

CC_API cc_status cc_sum_workspace_size(const cc_elementwise_problem* problem, size_t* bytes)
{
    constexpr const char* call = "cc_sum_workspace_size";
    CC_TRY(check_not_null(call, bytes, "bytes"));
    CC_TRY(validate(call, problem));
    *bytes = static_cast<size_t>(sum_blocks(problem->length)) * sizeof(float);
    return CC_SUCCESS;
}

CC_API cc_status cc_relu_forward(cc_handle handle, const cc_elementwise_problem* problem, const float* x, float* y, void* stream)
{
    return flat<KernelId::relu_forward>("cc_relu_forward", handle, problem, {{x, "x"}, {y, "y"}}, stream, x, y);
}

CC_API cc_status cc_relu_backward(cc_handle handle, const cc_elementwise_problem* problem, const float* y, const float* dy, float* dx,
                                  void* stream)
{
    return flat<KernelId::relu_backward>("cc_relu_backward", handle, problem, {{y, "y"}, {dy, "dy"}, {dx, "dx"}}, stream, y, dy, dx);
}

CC_API cc_status cc_add(cc_handle handle, const cc_elementwise_problem* problem, const float* a, const float* b, float* y, void* stream)
{
    return flat<KernelId::add>("cc_add", handle, problem, {{a, "a"}, {b, "b"}, {y, "y"}}, stream, a, b, y);
}

CC_API cc_status cc_fill(cc_handle handle, const cc_elementwise_problem* problem, float value, float* x, void* stream)
{
    return flat<KernelId::fill>("cc_fill", handle, problem, {{x, "x"}}, stream, value, x);
}

CC_API cc_status cc_scale(cc_handle handle, const cc_elementwise_problem* problem, float alpha, float* x, void* stream)
{
    return flat<KernelId::scale>("cc_scale", handle, problem, {{x, "x"}}, stream, alpha, x);
}

CC_API cc_status cc_axpy(cc_handle handle, const cc_elementwise_problem* problem, float alpha, const float* x, float* y, void* stream)
{
    return flat<KernelId::axpy>("cc_axpy", handle, problem, {{x, "x"}, {y, "y"}}, stream, alpha, x, y);
}

CC_API cc_status cc_sum(cc_handle handle, const cc_elementwise_problem* problem, const float* x, float* result, void* workspace,
                        size_t workspace_bytes, void* stream)
{
    constexpr const char* call = "cc_sum";
    CC_TRY(prepare(call, handle, problem));
    const i64 n = problem->length;
    const i64 blocks = sum_blocks(n);
    const i64 needed = bytes(blocks);
    if (n > 0) CC_TRY(check_tensors(call, {{x, "x"}}));
    CC_TRY(check_tensors(call, {{result, "result"}}));
    CC_TRY(check_workspace(call, workspace, workspace_bytes, static_cast<size_t>(needed), "cc_sum_workspace_size"));
    const Extent ex{x, bytes(n), "x"}, epartials{workspace, needed, "workspace"};
    CC_TRY(check_disjoint(call, {{result, bytes(1), "result"}}, {ex, epartials}));
    CC_TRY(check_disjoint(call, {epartials}, {ex}));

    auto* partials = static_cast<float*>(workspace);
    const LengthText text{n};
    Geometry first;
    first.grid.x = static_cast<unsigned>(blocks);
    first.block.x = kSumBlock;
    CC_TRY(launch<KernelId::sum_partials>(*handle, first, stream, text, static_cast<int>(n), x, partials));
    return launch<KernelId::sum_final>(*handle, block_per_item_geometry(1, kSumBlock), stream, text, static_cast<int>(blocks), partials,
                                       result);
}

CC_API cc_status cc_first_nonfinite(cc_handle handle, const cc_tensor_ref* tensors, int count, float* result, void* stream)
{
    constexpr const char* call = "cc_first_nonfinite";
    CC_TRY(check_handle(call, handle));
    CC_TRY(check_positive(call, "count", count));
    // The grid has one block per tensor: its x extent allows 2^31 - 1, so any positive int count fits.
    CC_TRY(check_tensors(call, {{tensors, "tensors"}, {result, "result"}}));
    const i64 list_bytes = i64{count} * static_cast<i64>(sizeof(cc_tensor_ref));
    CC_TRY(check_disjoint(call, {{result, bytes(count), "result"}}, {{tensors, list_bytes, "tensors"}}));
    return launch<KernelId::first_nonfinite>(*handle, block_per_item_geometry(count, CC_FIRST_NONFINITE_BLOCK), stream,
                                             TensorListText{count}, tensors, result);
}

} // extern "C"
