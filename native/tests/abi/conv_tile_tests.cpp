// The implicit GEMM's forward pass on every block tile (launch/conv_implicit_gemm.h): the wide and flat tiles' kernels
// (cc_implicit_gemm_forward_3x3_wide_kernel, 64 x 128; _flat_, 32 x 128) within the tf32 bound of the textbook loops in
// double, and bit for bit the square tile's (cc_implicit_gemm_forward_3x3_kernel, 64 x 64): each output's sum runs over
// the same mma steps in the same order whichever warp and block hold it, and the store is the same code. Each tile
// both ways of reading x: through the window in shared memory (stride 1; cheapconv/halo_plan.h) and gathered per tap,
// bit for bit the square tile's gather (the kernels before the window). The launcher's
// rule gives the other tiles only to batch-128-sized grids, too slow for the emulator, so the tests plan each explicitly
// (plan_implicit_gemm_forward) on small problems: the real shapes' channels and strides at batch 2, grouped problems, and
// odd sizes whose M, N and Kr are not multiples of the tiles. Then the rule itself, on the catalogue's shapes.
#include "abi_test.h"
#include "conv_implicit_gemm.h"
#include "runtime.h"

#include <cstring>
#include <limits>

namespace cc_abi_test {
namespace {

constexpr float kNaN = std::numeric_limits<float>::quiet_NaN();

cc_conv_problem problem(int n, int c, int h, int w, int k, int stride, int pad, int groups)
{
    cc_conv_problem p{};
    cc_conv_init(&p, n, c, h, w, k, 3, 3, pad, pad, stride, stride, groups);
    return p;
}

std::size_t outputs(const cc_conv_problem& p) { return static_cast<std::size_t>(p.n) * p.k * p.p * p.q; }

std::string text_of(const cc_conv_problem& p)
{
    char text[160];
    std::snprintf(text, sizeof text, "n=%d c=%d h=%d w=%d k=%d stride=%d pad=%d groups=%d", p.n, p.c, p.h, p.w, p.k, p.stride_h,
                  p.pad_h, p.groups);
    return text;
}

constexpr cc::ForwardTile kTiles[] = {cc::ForwardTile::square, cc::ForwardTile::wide, cc::ForwardTile::flat};
constexpr cc::ForwardGather kGathers[] = {cc::ForwardGather::window_where_it_fits, cc::ForwardGather::per_tap};

const char* tile_name(cc::ForwardTile tile) { return tile == cc::ForwardTile::wide ? "wide" : tile == cc::ForwardTile::flat ? "flat" : "square"; }

// The window wherever the rule gives it: every stride-1 problem below fits each tile's shared memory.
bool windowed(const cc_conv_problem& p, cc::ForwardGather gather)
{
    return gather == cc::ForwardGather::window_where_it_fits && p.stride_h == 1;
}

const char* gather_name(cc::ForwardGather gather) { return gather == cc::ForwardGather::per_tap ? "gathered per tap" : "x window"; }

// y of the forward pass planned on `tile` and `gather`, with the epilogue `ep` (NaN-poisoned outputs first).
std::vector<float> forward_on(Tally& t, const cc_conv_problem& p, cc::ForwardTile tile, const ConvTensors& in, const cc_conv_epilogue& ep,
                              const std::string& name, cc::ForwardGather gather = cc::ForwardGather::per_tap)
{
    std::vector<float> y(outputs(p), kNaN);
    cc::ImplicitGemmPlan plan;
    cc_status s = cc::plan_implicit_gemm_forward("conv_tile_tests", p, tile, &plan, gather);
    const cc::KernelId want = tile == cc::ForwardTile::wide   ? cc::KernelId::implicit_gemm_forward_3x3_wide
                              : tile == cc::ForwardTile::flat ? cc::KernelId::implicit_gemm_forward_3x3_flat
                                                              : cc::KernelId::implicit_gemm_forward_3x3;
    t.check(s == CC_SUCCESS && plan.kernel == want, name + ": planned on the " + tile_name(tile) + " tile");
    t.check((plan.window.row_stride != 0) == windowed(p, gather), name + ": " + tile_name(tile) + " tile " + gather_name(gather));
    if (s == CC_SUCCESS)
        s = cc::launch_implicit_gemm(*emulator(), plan, CC_CONV_FORWARD, p, in.x.data(), in.w.data(), y.data(), nullptr, nullptr,
                                     [&](char* text, std::size_t capacity) { std::snprintf(text, capacity, "%s", name.c_str()); },
                                     0, ep);
    expect_status(t, s, CC_SUCCESS, {}, name + ": launch");
    return y;
}

bool bitwise_equal(const std::vector<float>& a, const std::vector<float>& b)
{
    return a.size() == b.size() && std::memcmp(a.data(), b.data(), a.size() * sizeof(float)) == 0;
}

void check_tiles(Tally& t, const cc_conv_problem& p)
{
    const std::string name = text_of(p);
    const ConvTensors in{random_values(static_cast<std::size_t>(p.n) * p.c * p.h * p.w, 81),
                         random_values(static_cast<std::size_t>(p.k) * (p.c / p.groups) * p.r * p.s, 82), {}};
    const std::vector<float> square = forward_on(t, p, cc::ForwardTile::square, in, cc_conv_epilogue{}, name);
    Sums y(outputs(p)), dx(in.x.size()), dw(in.w.size());
    ConvTensors with_dy = in;
    with_dy.dy.assign(outputs(p), 0.0f);
    conv_reference(p, with_dy, y, dx, dw);
    expect_sums_tf32(t, square, y, name + ": square tile gathered per tap against the reference");
    for (cc::ForwardTile tile : kTiles)
        for (cc::ForwardGather gather : kGathers) {
            if (tile == cc::ForwardTile::square && gather == cc::ForwardGather::per_tap) continue; // `square` itself
            const std::string what = name + ": " + tile_name(tile) + " tile, " + gather_name(gather);
            const std::vector<float> other = forward_on(t, p, tile, in, cc_conv_epilogue{}, name, gather);
            expect_sums_tf32(t, other, y, what + ", against the reference");
            t.check(bitwise_equal(other, square), what + ", bit for bit the square tile gathered per tap");
        }
}

// The epilogue's store on the other tiles: a residual add and the eval batch norm + ReLU beside y, bit for bit the square
// tile's (the store code every tile shares, with its own accumulator layout).
void check_epilogue(Tally& t, const cc_conv_problem& p)
{
    const std::string name = text_of(p) + " with a residual and batch norm";
    const ConvTensors in{random_values(static_cast<std::size_t>(p.n) * p.c * p.h * p.w, 91),
                         random_values(static_cast<std::size_t>(p.k) * (p.c / p.groups) * p.r * p.s, 92), {}};
    const std::vector<float> residual = random_values(outputs(p), 93), gamma = random_values(p.k, 94), beta = random_values(p.k, 95),
                             mean = random_values(p.k, 96), var = random_values(p.k, 97, 0.1f, 2.0f);
    std::vector<float> activated_other(outputs(p), kNaN), activated_square(outputs(p), kNaN);
    cc_conv_epilogue ep{};
    ep.residual = residual.data();
    ep.bn_gamma = gamma.data();
    ep.bn_beta = beta.data();
    ep.bn_mean = mean.data();
    ep.bn_var = var.data();
    ep.bn_eps = 1e-5f;
    ep.activated = activated_square.data();
    const std::vector<float> square = forward_on(t, p, cc::ForwardTile::square, in, ep, name);
    for (cc::ForwardTile tile : kTiles)
        for (cc::ForwardGather gather : kGathers) {
            if (tile == cc::ForwardTile::square && gather == cc::ForwardGather::per_tap) continue;
            std::fill(activated_other.begin(), activated_other.end(), kNaN);
            ep.activated = activated_other.data();
            const std::vector<float> other = forward_on(t, p, tile, in, ep, name, gather);
            t.check(bitwise_equal(other, square) && bitwise_equal(activated_other, activated_square),
                    name + ": " + tile_name(tile) + " tile, " + gather_name(gather) + ", bit for bit the square tile gathered per tap");
        }
}

// An infinite x element in channel 12 of 20, which the window's slot 4 holds until channel 20 (past Cg, in the last tile)
// takes it: that slot must be zeros, or the zero weights there multiply the infinity into NaN. The window's y is the
// gather's, infinities and NaNs (opposite infinities meeting in one sum) included.
void check_nonfinite_window(Tally& t)
{
    const cc_conv_problem p = problem(1, 20, 8, 8, 8, 1, 1, 1);
    const std::string name = text_of(p) + " with an infinite x";
    ConvTensors in{random_values(static_cast<std::size_t>(p.c) * p.h * p.w, 101), random_values(static_cast<std::size_t>(p.k) * p.c * 9, 102), {}};
    in.x[12 * 64 + 27] = std::numeric_limits<float>::infinity();
    const std::vector<float> gathered = forward_on(t, p, cc::ForwardTile::square, in, cc_conv_epilogue{}, name);
    for (cc::ForwardTile tile : kTiles) {
        const std::vector<float> windowed_y = forward_on(t, p, tile, in, cc_conv_epilogue{}, name, cc::ForwardGather::window_where_it_fits);
        t.check(bitwise_equal(windowed_y, gathered), name + ": " + tile_name(tile) + " tile, x window, bit for bit the gather");
    }
}

// dx of the stride-1 3x3 data gradient planned by plan_implicit_gemm (dy's window where it planned one), or with the
// window taken out of the plan (`gathered`: dy gathered per tap, the kernel before the window). NaN-poisoned first.
std::vector<float> data_gradient(Tally& t, const cc_conv_problem& p, const ConvTensors& in, bool gathered, const std::string& name)
{
    std::vector<float> dx(in.x.size(), kNaN);
    cc::ImplicitGemmPlan plan;
    cc_status s = cc::plan_implicit_gemm("conv_tile_tests", p, CC_CONV_BACKWARD_DATA, 0, &plan);
    t.check(s == CC_SUCCESS && plan.kernel == cc::KernelId::implicit_gemm_backward_data_3x3, name + ": planned on the stride-1 3x3 data-gradient kernel");
    if (gathered) plan.window = cc_halo_plan{};
    if (s == CC_SUCCESS)
        s = cc::launch_implicit_gemm(*emulator(), plan, CC_CONV_BACKWARD_DATA, p, in.dy.data(), in.w.data(), dx.data(), nullptr, nullptr,
                                     [&](char* text, std::size_t capacity) { std::snprintf(text, capacity, "%s", name.c_str()); });
    expect_status(t, s, CC_SUCCESS, {}, name + ": launch");
    return dx;
}

// The stride-1 data gradient through dy's window (the forward pass's window over dy, the input of the convolution the
// kernel computes: launch/conv_implicit_gemm.cpp, data_gradient_as_forward): planned for every stride-1 problem below,
// within the tf32 bound of the reference, and bit for bit the gather (the same tiles, k order and mma steps).
void check_data_gradient_window(Tally& t, const cc_conv_problem& p)
{
    const std::string name = text_of(p) + ", data gradient";
    ConvTensors in{random_values(static_cast<std::size_t>(p.n) * p.c * p.h * p.w, 111),
                   random_values(static_cast<std::size_t>(p.k) * (p.c / p.groups) * p.r * p.s, 112), random_values(outputs(p), 113)};
    cc::ImplicitGemmPlan plan;
    t.check(cc::plan_implicit_gemm("conv_tile_tests", p, CC_CONV_BACKWARD_DATA, 0, &plan) == CC_SUCCESS && plan.window.row_stride != 0,
            name + ": dy's window planned");
    const std::vector<float> windowed_dx = data_gradient(t, p, in, false, name);
    Sums y(outputs(p)), dx(in.x.size()), dw(in.w.size());
    conv_reference(p, in, y, dx, dw);
    expect_sums_tf32(t, windowed_dx, dx, name + ": dy's window, against the reference");
    t.check(bitwise_equal(windowed_dx, data_gradient(t, p, in, true, name)), name + ": dy's window, bit for bit the gather");
}

// An infinite dy element in channel 12 of 20 (the ring's slot 4 until channel 20, past Kg, takes it: zeros there, or
// the zero-filled weights multiply the infinity into NaN): the window's dx is the gather's, non-finite values included.
void check_nonfinite_data_gradient_window(Tally& t)
{
    const cc_conv_problem p = problem(1, 8, 8, 8, 20, 1, 1, 1);
    const std::string name = text_of(p) + ", data gradient with an infinite dy";
    ConvTensors in{random_values(static_cast<std::size_t>(p.c) * p.h * p.w, 121), random_values(static_cast<std::size_t>(p.k) * p.c * 9, 122),
                   random_values(outputs(p), 123)};
    in.dy[12 * 64 + 27] = std::numeric_limits<float>::infinity();
    t.check(bitwise_equal(data_gradient(t, p, in, false, name), data_gradient(t, p, in, true, name)), name + ": dy's window, bit for bit the gather");
}

// The rule (implicit_gemm_forward_tile): 3x3 filters off the square tile where the wide grid keeps at least 7/8 of 132
// SMs busy, flat with at most 32 filters per group.
void check_rule(Tally& t)
{
    // WRN-40-2 at batch 128: 32x32 images (1024 blocks of 128 columns) and 16x16 (256) and 8x8 with 128 filters (128
    // blocks) leave the square tile; 8x8 with 64 filters (64 blocks) does not.
    const struct {
        cc_conv_problem p;
        cc::ForwardTile want;
        const char* what;
    } cases[] = {
        {problem(128, 16, 32, 32, 16, 1, 1, 1), cc::ForwardTile::flat, "128x16x32x32 -> 16"},
        {problem(128, 32, 16, 16, 32, 1, 1, 1), cc::ForwardTile::flat, "128x32x16x16 -> 32"},
        {problem(128, 64, 16, 16, 64, 1, 1, 4), cc::ForwardTile::flat, "128x64x16x16 -> 64 in 4 groups"},
        {problem(128, 32, 16, 16, 64, 1, 1, 1), cc::ForwardTile::wide, "128x32x16x16 -> 64"},
        {problem(128, 128, 8, 8, 128, 1, 1, 1), cc::ForwardTile::wide, "128x128x8x8 -> 128"},
        {problem(128, 64, 8, 8, 64, 1, 1, 1), cc::ForwardTile::square, "128x64x8x8 -> 64"},
        {problem(128, 64, 16, 16, 64, 2, 1, 1), cc::ForwardTile::square, "128x64x16x16 -> 64 stride 2"},
        {problem(2, 16, 32, 32, 16, 1, 1, 1), cc::ForwardTile::square, "batch 2"},
    };
    for (const auto& c : cases)
        t.check(cc::implicit_gemm_forward_tile(c.p) == c.want, std::string("rule: ") + c.what + " on the " + tile_name(c.want) + " tile");
    cc_conv_problem one{};
    cc_conv_init(&one, 128, 16, 32, 32, 16, 1, 1, 0, 0, 1, 1, 1);
    t.check(cc::implicit_gemm_forward_tile(one) == cc::ForwardTile::square, "rule: 1x1 filters on the square tile");
    cc::ImplicitGemmPlan plan;
    expect_status(t, cc::plan_implicit_gemm_forward("conv_tile_tests", one, cc::ForwardTile::wide, &plan), CC_ERROR_NOT_SUPPORTED,
                  {"3x3 filters only"}, "wide tile refused for 1x1 filters");
}

// The window's rule (halo_plan_for): the strides of the catalogue's image sizes on the tiles the rule gives them (rows of
// W + 2 floats rounded up to 12, 16 or 20 mod 32 banks; slots holding the block's window rows: 4 + 2 at 32x32, 8 + 2 at
// 16x16, 2 images of 8 + 2 at 8x8), and no window where it cannot pay or fit.
void check_window_rule(Tally& t)
{
    const struct {
        cc_conv_problem p;
        int row_stride, slot_stride;
        const char* what;
    } cases[] = {
        {problem(128, 32, 32, 32, 32, 1, 1, 1), 44, 260, "32x32 on the flat tile: 6 window rows of 44 floats"},
        {problem(128, 64, 16, 16, 64, 1, 1, 1), 20, 212, "16x16 on the wide tile: 10 window rows of 20 floats"},
        {problem(128, 128, 8, 8, 128, 1, 1, 1), 12, 260, "8x8 on the wide tile: 20 window rows of 12 floats"},
        {problem(128, 64, 8, 8, 64, 1, 1, 1), 12, 132, "8x8 on the square tile: 10 window rows of 12 floats"},
        {problem(128, 64, 16, 16, 64, 2, 1, 1), 0, 0, "stride 2: gathered per tap"},
        {problem(1, 4, 3, 400, 8, 1, 1, 1), 0, 0, "a 402-float row: 8 slots of 3 rows do not fit"},
    };
    for (const auto& c : cases) {
        cc::ImplicitGemmPlan plan;
        const cc_status s = cc::plan_implicit_gemm("conv_tile_tests", c.p, CC_CONV_FORWARD, 0, &plan);
        t.check(s == CC_SUCCESS && plan.window.row_stride == c.row_stride && plan.window.slot_stride == c.slot_stride &&
                    plan.window.lead == (c.row_stride != 0 ? 4 : 0),
                std::string("window rule: ") + c.what);
    }
}

} // namespace

void run_conv_tile_tests(Tally& t)
{
    const cc_conv_problem problems[] = {
        // The catalogue's dense 3x3 channels and strides (shapes/wrn40-2-moonshine.txt) at batch 2: one of each image size
        // (the C# tests, EmulatedForwardTileTests, run the whole catalogue).
        problem(2, 16, 32, 32, 16, 1, 1, 1),
        problem(2, 32, 16, 16, 32, 1, 1, 1),
        problem(2, 64, 16, 16, 128, 2, 1, 1),
        // Odd sizes: M = 70 (two row tiles, the second nearly empty), N = 3 * 7 * 9 = 189 and Kr = 45 (4-byte weight
        // copies); Kr = 108 (16-byte weight copies), N = 42 (one partial column tile), stride 2; padding 0 and 2.
        problem(3, 5, 7, 9, 70, 1, 1, 1),
        problem(1, 12, 11, 13, 24, 2, 1, 1),
        problem(2, 8, 9, 9, 16, 1, 0, 1),
        problem(2, 8, 9, 9, 16, 1, 2, 1),
        // Grouped: 4 groups of 16 channels and 24 filters; 2 groups of 8 channels and 40 filters with stride 2.
        problem(2, 64, 10, 10, 96, 1, 1, 4),
        problem(3, 16, 9, 7, 80, 2, 1, 2),
        // The x window: 20 channels (the ring of 8 slots wraps twice; Kr = 180 ends inside a tile, whose channels past Cg are
        // zeros), 8x8 images (a wide or flat block holds 2 of them, a square one 1), 16-byte row copies; 4 groups of
        // 2 channels and 3 filters; 16x16 images (8 output rows per 128 columns).
        problem(3, 20, 8, 8, 40, 1, 1, 1),
        problem(2, 8, 10, 10, 12, 1, 1, 4),
        problem(2, 32, 16, 16, 24, 1, 1, 1),
        // Window rows of one 16-byte piece (W = 4, 5 rows: the copies' bank-spread order over a partial group of 8 rows)
        // and of three (W = 12: row by row).
        problem(2, 12, 5, 4, 20, 1, 1, 1),
        problem(2, 6, 3, 12, 8, 1, 1, 1),
    };
    // Under TSan (every access tracked: a launch of these sizes takes most of a minute) one image of the first odd size
    // only: the pipeline's barriers and each tile's copies, over two row tiles and a partial column tile.
    // The data gradient's window runs the same XWindow code as the forward tiles' (its barriers and copies are covered
    // there), so TSan skips it: one more launch of that size would take the sanitizer run past its time limit.
    if (kUnderTsan) {
        check_tiles(t, problem(1, 5, 7, 9, 70, 1, 1, 1));
    } else {
        for (const cc_conv_problem& p : problems) {
            check_tiles(t, p);
            if (p.stride_h == 1) check_data_gradient_window(t, p);
        }
        check_nonfinite_data_gradient_window(t);
    }
    if (!kUnderTsan) check_epilogue(t, problem(3, 5, 7, 9, 70, 1, 1, 1));
    check_rule(t);
    check_window_rule(t);
    check_nonfinite_window(t);
}

} // namespace cc_abi_test
