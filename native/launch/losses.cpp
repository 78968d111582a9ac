// The losses of the C ABI (kernels/losses.cu): softmax cross-entropy, knowledge distillation (KD),
// attention transfer (AT), forward and backward, and the argmax accuracy count. Each forward loss is two
// launches: a row- or sample-parallel kernel writes one partial per sample into the caller's workspace,
// then cc_loss_reduce_kernel adds them in a fixed order into the one-float loss (deterministic, no
// atomics). Ported from the C# launcher (GpuBackend.Loss.cs) and CpuBackend.CheckRows / CheckActivations /
// CheckTemperature.
#include "checks.h"
#include "geometry.h"
#include "launch.h"

#include <cstdint>

namespace cc {
namespace {

using i64 = std::int64_t;

constexpr unsigned kRowBlock = 256;    // one warp per row: 8 rows per block
constexpr unsigned kSampleBlock = 256; // one block per sample (AT), and the one block of the reduction
constexpr const char* kWorkspaceQuery = "cc_loss_workspace_size";

struct LossText {
    const char* loss;
    const cc_loss_problem& p;
    void operator()(char* text, std::size_t capacity) const
    {
        format_into(text, capacity, "%s n=%d classes=%d temperature=%g c=%d h=%d w=%d", loss, p.n, p.classes,
                    static_cast<double>(p.temperature), p.c, p.h, p.w);
    }
};

i64 bytes(i64 elements) { return elements * static_cast<i64>(sizeof(float)); }
i64 logit_elements(const cc_loss_problem& p) { return i64{p.n} * p.classes; }
i64 feature_elements(const cc_loss_problem& p) { return product({p.n, p.c, p.h, p.w}); }
i64 map_elements(const cc_loss_problem& p) { return product({p.n, p.h, p.w}); }

// Every field that is set must make sense; each loss then asks for the fields it uses (require_*).
cc_status validate(const char* call, const cc_loss_problem* problem)
{
    CC_TRY(check_not_null(call, problem, "problem"));
    const cc_loss_problem& p = *problem;
    CC_TRY(check_positive(call, "n", p.n));
    CC_TRY(check_not_negative(call, "classes", p.classes));
    CC_TRY(check_not_negative(call, "c", p.c));
    CC_TRY(check_not_negative(call, "h", p.h));
    CC_TRY(check_not_negative(call, "w", p.w));
    CC_TRY(check_finite_at_least(call, "temperature", p.temperature, 0.0f, "finite and non-negative (0 where unused)"));
    CC_TRY(check_elements(call, "the logits (n*classes)", logit_elements(p)));
    return check_elements(call, "the feature maps (n*c*h*w)", feature_elements(p));
}

// Cross-entropy, KD and count-correct work on n x classes logits.
cc_status require_rows(const char* call, const cc_loss_problem& p)
{
    if (p.classes < 1) return fail(CC_ERROR_INVALID_VALUE, "%s: classes must be positive, got %d", call, p.classes);
    return CC_SUCCESS;
}

cc_status require_temperature(const char* call, const cc_loss_problem& p)
{
    if (!(p.temperature > 0.0f))
        return fail(CC_ERROR_INVALID_VALUE, "%s: the KD temperature must be positive and finite, got %g", call,
                    static_cast<double>(p.temperature));
    return CC_SUCCESS;
}

// Attention transfer works on n x c x h x w feature maps.
cc_status require_maps(const char* call, const cc_loss_problem& p)
{
    CC_TRY(check_positive(call, "c", p.c));
    CC_TRY(check_positive(call, "h", p.h));
    return check_positive(call, "w", p.w);
}

cc_status prepare(const char* call, cc_handle handle, const cc_loss_problem* problem)
{
    CC_TRY(check_handle(call, handle));
    return validate(call, problem);
}

// The forward losses' shared tail: partials (one per sample, in the workspace) -> loss[0] = scale * sum.
cc_status check_partials(const char* call, const cc_loss_problem& p, const void* workspace, std::size_t workspace_bytes,
                         const float* loss, std::initializer_list<Extent> others)
{
    CC_TRY(check_tensors(call, {{loss, "loss"}}));
    CC_TRY(check_workspace(call, workspace, workspace_bytes, static_cast<std::size_t>(bytes(p.n)), kWorkspaceQuery));
    const Extent partials{workspace, bytes(p.n), "workspace"};
    CC_TRY(check_disjoint(call, {partials}, others));
    return check_disjoint(call, {{loss, bytes(1), "loss"}}, {partials});
}

cc_status reduce(const cc_handle_s& handle, const cc_loss_problem& p, float scale, const float* partials, float* loss, void* stream,
                 const ProblemText& text)
{
    return launch<KernelId::loss_reduce>(handle, block_per_item_geometry(1, kSampleBlock), stream, text, p.n, scale, partials, loss);
}

// The count-correct calls: the rows' checks, correct[0] zeroed on the stream (the kernels add to it; 0 has the same bits
// as an int and as a float), then one warp per row. Counter is int32_t or float.
template <KernelId Kernel, class Counter>
cc_status count_correct(const char* call, cc_handle handle, const cc_loss_problem* problem, const float* logits, const int32_t* labels,
                        Counter* correct, void* stream)
{
    CC_TRY(prepare(call, handle, problem));
    const cc_loss_problem& p = *problem;
    CC_TRY(require_rows(call, p));
    CC_TRY(check_tensors(call, {{logits, "logits"}, {labels, "labels"}, {correct, "correct"}}));
    CC_TRY(check_disjoint(call, {{correct, bytes(1), "correct"}},
                          {{logits, bytes(logit_elements(p)), "logits"}, {labels, bytes(p.n), "labels"}}));
    const LossText text{"count correct", p};
    CC_TRY(memset32(*handle, correct, 0, 1, stream, text));
    return launch<Kernel>(*handle, warp_per_item_geometry(p.n, kRowBlock), stream, text, p.n, p.classes, logits, labels, correct);
}

} // namespace
} // namespace cc

using namespace cc;

extern "C" {

CC_API cc_status cc_loss_validate(const cc_loss_problem* problem) { return validate("cc_loss_validate", problem); }

CC_API cc_status cc_loss_workspace_size(const cc_loss_problem* problem, size_t* bytes)
{
    constexpr const char* call = "cc_loss_workspace_size";
    CC_TRY(check_not_null(call, bytes, "bytes"));
    CC_TRY(validate(call, problem));
    *bytes = static_cast<size_t>(cc::bytes(problem->n));
    return CC_SUCCESS;
}

CC_API cc_status cc_cross_entropy_forward(cc_handle handle, const cc_loss_problem* problem, const float* logits, const int32_t* labels,
                                          float* loss, float* probabilities, void* workspace, size_t workspace_bytes, void* stream)
{
    constexpr const char* call = "cc_cross_entropy_forward";
    CC_TRY(prepare(call, handle, problem));
    const cc_loss_problem& p = *problem;
    CC_TRY(require_rows(call, p));
    CC_TRY(check_tensors(call, {{logits, "logits"}, {labels, "labels"}, {probabilities, "probabilities"}}));
    const Extent elogits{logits, bytes(logit_elements(p)), "logits"}, elabels{labels, bytes(p.n), "labels"},
        eprobabilities{probabilities, bytes(logit_elements(p)), "probabilities"};
    CC_TRY(check_disjoint(call, {eprobabilities}, {elogits, elabels}));
    CC_TRY(check_partials(call, p, workspace, workspace_bytes, loss, {elogits, elabels, eprobabilities}));
    auto* partials = static_cast<float*>(workspace);
    const LossText text{"cross-entropy", p};
    CC_TRY(launch<KernelId::cross_entropy_forward>(*handle, warp_per_item_geometry(p.n, kRowBlock), stream, text, p.n, p.classes,
                                                   logits, labels, probabilities, partials));
    return reduce(*handle, p, 1.0f / static_cast<float>(p.n), partials, loss, stream, text);
}

CC_API cc_status cc_cross_entropy_backward(cc_handle handle, const cc_loss_problem* problem, const float* probabilities,
                                           const int32_t* labels, const float* dloss, float* dlogits, void* stream)
{
    constexpr const char* call = "cc_cross_entropy_backward";
    CC_TRY(prepare(call, handle, problem));
    const cc_loss_problem& p = *problem;
    CC_TRY(require_rows(call, p));
    CC_TRY(check_tensors(call, {{probabilities, "probabilities"}, {labels, "labels"}, {dloss, "dloss"}, {dlogits, "dlogits"}}));
    // dlogits may be the probabilities buffer (each element is read before it is written).
    CC_TRY(check_disjoint(call, {{dlogits, bytes(logit_elements(p)), "dlogits"}}, {{labels, bytes(p.n), "labels"}, {dloss, bytes(1), "dloss"}}));
    return launch<KernelId::cross_entropy_backward>(*handle, elementwise_geometry(logit_elements(p)), stream,
                                                    LossText{"cross-entropy backward", p}, p.n, p.classes, probabilities, labels,
                                                    dloss, dlogits);
}

CC_API cc_status cc_kd_forward(cc_handle handle, const cc_loss_problem* problem, const float* student, const float* teacher, float* loss,
                               float* student_soft, float* teacher_soft, void* workspace, size_t workspace_bytes, void* stream)
{
    constexpr const char* call = "cc_kd_forward";
    CC_TRY(prepare(call, handle, problem));
    const cc_loss_problem& p = *problem;
    CC_TRY(require_rows(call, p));
    CC_TRY(require_temperature(call, p));
    CC_TRY(check_tensors(call, {{student, "student"}, {teacher, "teacher"}, {student_soft, "student_soft"}, {teacher_soft, "teacher_soft"}}));
    const i64 b = bytes(logit_elements(p));
    const Extent es{student, b, "student"}, et{teacher, b, "teacher"}, ess{student_soft, b, "student_soft"},
        ets{teacher_soft, b, "teacher_soft"};
    CC_TRY(check_disjoint(call, {ess, ets}, {es, et}));
    CC_TRY(check_disjoint(call, {ess}, {ets}));
    CC_TRY(check_partials(call, p, workspace, workspace_bytes, loss, {es, et, ess, ets}));
    auto* partials = static_cast<float*>(workspace);
    const LossText text{"KD", p};
    CC_TRY(launch<KernelId::kd_forward>(*handle, warp_per_item_geometry(p.n, kRowBlock), stream, text, p.n, p.classes, p.temperature,
                                        student, teacher, student_soft, teacher_soft, partials));
    return reduce(*handle, p, p.temperature * p.temperature / static_cast<float>(p.n), partials, loss, stream, text);
}

CC_API cc_status cc_kd_backward(cc_handle handle, const cc_loss_problem* problem, const float* student_soft, const float* teacher_soft,
                                const float* dloss, float* dstudent, void* stream)
{
    constexpr const char* call = "cc_kd_backward";
    CC_TRY(prepare(call, handle, problem));
    const cc_loss_problem& p = *problem;
    CC_TRY(require_rows(call, p));
    CC_TRY(require_temperature(call, p));
    CC_TRY(check_tensors(call, {{student_soft, "student_soft"}, {teacher_soft, "teacher_soft"}, {dloss, "dloss"}, {dstudent, "dstudent"}}));
    // dstudent may be either softmax buffer.
    CC_TRY(check_disjoint(call, {{dstudent, bytes(logit_elements(p)), "dstudent"}}, {{dloss, bytes(1), "dloss"}}));
    return launch<KernelId::kd_backward>(*handle, elementwise_geometry(logit_elements(p)), stream, LossText{"KD backward", p}, p.n,
                                         p.classes, p.temperature, student_soft, teacher_soft, dloss, dstudent);
}

CC_API cc_status cc_at_forward(cc_handle handle, const cc_loss_problem* problem, const float* student, const float* teacher, float* loss,
                               float* student_map, float* teacher_map, float* student_norm, void* workspace, size_t workspace_bytes,
                               void* stream)
{
    constexpr const char* call = "cc_at_forward";
    CC_TRY(prepare(call, handle, problem));
    const cc_loss_problem& p = *problem;
    CC_TRY(require_maps(call, p));
    CC_TRY(check_tensors(call, {{student, "student"}, {teacher, "teacher"}, {student_map, "student_map"}, {teacher_map, "teacher_map"},
                                {student_norm, "student_norm"}}));
    const i64 features = bytes(feature_elements(p)), maps = bytes(map_elements(p));
    const Extent es{student, features, "student"}, et{teacher, features, "teacher"}, esm{student_map, maps, "student_map"},
        etm{teacher_map, maps, "teacher_map"}, esn{student_norm, bytes(p.n), "student_norm"};
    CC_TRY(check_disjoint(call, {esm, etm, esn}, {es, et}));
    CC_TRY(check_disjoint(call, {esm}, {etm, esn}));
    CC_TRY(check_disjoint(call, {etm}, {esn}));
    CC_TRY(check_partials(call, p, workspace, workspace_bytes, loss, {es, et, esm, etm, esn}));
    auto* partials = static_cast<float*>(workspace);
    const int hw = p.h * p.w; // <= n*c*h*w, checked to fit an int
    const LossText text{"AT", p};
    CC_TRY(launch<KernelId::at_forward>(*handle, block_per_item_geometry(p.n, kSampleBlock), stream, text, p.n, p.c, hw, student, teacher,
                                        student_map, teacher_map, student_norm, partials));
    // The mean over every map element, as the C# launcher computes it (in double, then rounded once).
    return reduce(*handle, p, static_cast<float>(1.0 / (static_cast<double>(p.n) * hw)), partials, loss, stream, text);
}

CC_API cc_status cc_at_backward(cc_handle handle, const cc_loss_problem* problem, const float* student, const float* student_map,
                                const float* teacher_map, const float* student_norm, const float* dloss, float* dstudent, void* stream)
{
    constexpr const char* call = "cc_at_backward";
    CC_TRY(prepare(call, handle, problem));
    const cc_loss_problem& p = *problem;
    CC_TRY(require_maps(call, p));
    CC_TRY(check_tensors(call, {{student, "student"}, {student_map, "student_map"}, {teacher_map, "teacher_map"},
                                {student_norm, "student_norm"}, {dloss, "dloss"}, {dstudent, "dstudent"}}));
    const i64 maps = bytes(map_elements(p));
    CC_TRY(check_disjoint(call, {{dstudent, bytes(feature_elements(p)), "dstudent"}},
                          {{student, bytes(feature_elements(p)), "student"}, {student_map, maps, "student_map"},
                           {teacher_map, maps, "teacher_map"}, {student_norm, bytes(p.n), "student_norm"}, {dloss, bytes(1), "dloss"}}));
    return launch<KernelId::at_backward>(*handle, block_per_item_geometry(p.n, kSampleBlock), stream, LossText{"AT backward", p}, p.n,
                                         p.c, p.h * p.w, student, student_map, teacher_map, student_norm, dloss, dstudent);
}

CC_API cc_status cc_count_correct(cc_handle handle, const cc_loss_problem* problem, const float* logits, const int32_t* labels,
                                  int32_t* correct, void* stream)
{
    return count_correct<KernelId::count_correct>("cc_count_correct", handle, problem, logits, labels, correct, stream);
}

CC_API cc_status cc_count_correct_f32(cc_handle handle, const cc_loss_problem* problem, const float* logits, const int32_t* labels,
                                      float* correct, void* stream)
{
    constexpr const char* call = "cc_count_correct_f32";
    // Float additions of 1 stay exact (and so independent of their order) only below 2^24.
    if (problem != nullptr && problem->n >= (1 << 24))
        return fail(CC_ERROR_INVALID_VALUE, "%s: n (%d) must be below 2^24 for a float count to be exact; use cc_count_correct", call,
                    problem->n);
    return count_correct<KernelId::count_correct_f32>(call, handle, problem, logits, labels, correct, stream);
}

} // extern "C"
