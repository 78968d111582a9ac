// Correctness checks of the emulated CUDA primitives, against values computed here on the host.
#include "primitives.h"

#include "cheapconv/problem.h"

#include <cmath>
#include <cstdio>
#include <cstring>
#include <vector>

namespace cc_selftest {

void Tally::check(bool ok, const std::string& what) {
    if (ok) {
        ++passed;
        if (verbose) std::printf("  ok    %s\n", what.c_str());
    } else {
        ++failed;
        std::printf("  FAIL  %s\n", what.c_str());
    }
}

int launch(const char* kernel, cc_dim3 grid, cc_dim3 block, unsigned shared, void** args, std::string* message) {
    char buf[2048];
    const int rc = cc_emu_launch(kernel, grid, block, shared, args, buf, sizeof buf);
    if (message) *message = buf;
    if (rc != 0 && !message) std::printf("  launch %s: %s\n", kernel, buf);
    return rc;
}

namespace {

// The reference for one lane of shfl.sync (see the PTX ISA description of shfl).
int shfl_ref(int op, const std::vector<int>& v, int t, int operand, int width) {
    const int lane = t % 32, base = t - lane;
    const int seg_start = lane / width * width, seg_end = seg_start + width - 1;
    int src = lane;
    switch (op) {
    case 0: src = seg_start + (operand % width + width) % width; break;
    case 1: src = lane - operand >= seg_start ? lane - operand : lane; break;
    case 2: src = lane + operand <= seg_end ? lane + operand : lane; break;
    case 3: src = (lane ^ operand) <= seg_end ? lane ^ operand : lane; break;
    }
    return v[static_cast<std::size_t>(base + src)];
}

void test_reduce(Tally& t) {
    const int n = 1000, threads = 128, blocks = (n + threads - 1) / threads;
    std::vector<float> in(n), out(blocks, -1.0f);
    for (int i = 0; i < n; ++i) in[static_cast<std::size_t>(i)] = static_cast<float>(i % 17 - 8);
    const float* pin = in.data();
    float* pout = out.data();
    int nn = n;
    void* args[] = {&pin, &pout, &nn};
    const int rc = launch("st_reduce_dynamic", {static_cast<unsigned>(blocks), 1, 1}, {threads, 1, 1}, threads * 4, args);
    bool ok = rc == 0;
    for (int b = 0; b < blocks && ok; ++b) {
        float ref = 0;
        for (int i = b * threads; i < std::min(n, (b + 1) * threads); ++i) ref += in[static_cast<std::size_t>(i)];
        ok = out[static_cast<std::size_t>(b)] == ref; // integer-valued: exact
    }
    t.check(ok, "block reduction in dynamic shared memory + __shfl_xor_sync");

    std::vector<int> iin(5000), iout(20, -1);
    for (std::size_t i = 0; i < iin.size(); ++i) iin[i] = static_cast<int>(i * 3 % 101) - 50;
    const int* pi = iin.data();
    int* po = iout.data();
    int in_n = static_cast<int>(iin.size());
    void* args2[] = {&pi, &po, &in_n};
    ok = launch("cc_test_block_reduce", {20, 1, 1}, {256, 1, 1}, 0, args2) == 0;
    for (int b = 0; b < 20 && ok; ++b) {
        int ref = 0;
        for (int i = b * 256; i < std::min(in_n, (b + 1) * 256); ++i) ref += iin[static_cast<std::size_t>(i)];
        ok = iout[static_cast<std::size_t>(b)] == ref;
    }
    t.check(ok, "cc_test_block_reduce (static shared + __shfl_down_sync, 20 blocks)");
}

void test_shuffles(Tally& t) {
    std::vector<int> out(4 * 3 * 64, -1);
    std::vector<float> fout(64, -1);
    std::vector<unsigned> uout(64, 0);
    int* po = out.data();
    float* pf = fout.data();
    unsigned* pu = uout.data();
    void* args[] = {&po, &pf, &pu};
    const bool launched = launch("st_shuffles", {1, 1, 1}, {64, 1, 1}, 0, args) == 0;
    std::vector<int> v(64);
    for (int i = 0; i < 64; ++i) v[static_cast<std::size_t>(i)] = i * 10 + 1;
    const int widths[3] = {32, 16, 8};
    const char* names[4] = {"__shfl_sync", "__shfl_up_sync", "__shfl_down_sync", "__shfl_xor_sync"};
    for (int op = 0; op < 4; ++op) {
        for (int w = 0; w < 3; ++w) {
            bool ok = launched;
            for (int i = 0; i < 64 && ok; ++i) {
                const int operand = op == 0 ? i * 7 + 3 : op == 3 ? 5 : 3;
                ok = out[static_cast<std::size_t>((op * 3 + w) * 64 + i)] == shfl_ref(op, v, i, operand, widths[w]);
            }
            t.check(ok, std::string(names[op]) + " int, width " + std::to_string(widths[w]));
        }
    }
    bool ok = launched;
    for (int i = 0; i < 64 && ok; ++i) {
        const int src = (i % 32) == 31 ? i : i + 1;
        ok = fout[static_cast<std::size_t>(i)] == static_cast<float>(src) + 0.5f;
        ok = ok && uout[static_cast<std::size_t>(i)] == (0x80000000u | static_cast<unsigned>(i / 32 * 32));
    }
    t.check(ok, "__shfl_down_sync float and __shfl_sync unsigned");
}

void test_votes(Tally& t) {
    std::vector<unsigned> out(5 * 64, 12345);
    unsigned* po = out.data();
    void* args[] = {&po};
    bool ok = launch("st_votes", {1, 1, 1}, {64, 1, 1}, 0, args) == 0;
    unsigned ballot3 = 0, odd_low = 0, bit2_high = 0;
    for (unsigned l = 0; l < 32; ++l) {
        if (l % 3 == 0) ballot3 |= 1u << l;
        if (l < 16 && (l & 1)) odd_low |= 1u << l;
        if (l >= 16 && (l & 2)) bit2_high |= 1u << l;
    }
    for (unsigned i = 0; i < 64 && ok; ++i) {
        const unsigned lane = i % 32;
        ok = out[i] == ballot3 && out[64 + i] == 1 && out[128 + i] == 0 &&
             out[192 + i] == (lane < 16 ? odd_low : bit2_high) && out[256 + i] == 1;
    }
    t.check(ok, "__ballot_sync / __any_sync / __all_sync, full and half-warp masks, __syncwarp");
}

void test_atomics(Tally& t) {
    const unsigned blocks = 37, threads = 96, total = blocks * threads;
    int ints[6] = {0, -1, 0, 0, 0, 100};
    float f = 0;
    unsigned u[2] = {0, 0};
    unsigned long long ull = 5;
    int* pi = ints;
    float* pf = &f;
    unsigned* pu = u;
    unsigned long long* pl = &ull;
    void* args[] = {&pi, &pf, &pu, &pl};
    const bool ok = launch("st_atomics", {blocks, 1, 1}, {threads, 1, 1}, 0, args) == 0 && ints[0] == static_cast<int>(total) &&
                    ints[1] == static_cast<int>(total) - 1 && ints[2] == -(static_cast<int>(total) - 1) &&
                    ints[3] == static_cast<int>(total) && ints[4] == 7 && ints[5] == 100 - 2 * static_cast<int>(total) &&
                    f == 0.5f * static_cast<float>(total) && u[0] == 3 * total && u[1] == total - 1 &&
                    ull == 5 + (static_cast<unsigned long long>(total) << 32);
    t.check(ok, "atomicAdd/Sub/Max/Min/CAS/Exch (int, float, unsigned, unsigned long long) across 37 blocks");
}

void test_indices(Tally& t) {
    const cc_dim3 grid{3, 2, 2}, block{4, 3, 5};
    const unsigned threads = block.x * block.y * block.z, blocks = grid.x * grid.y * grid.z;
    std::vector<unsigned> out(threads * blocks, 0xffffffffu);
    unsigned dims[7] = {};
    unsigned* po = out.data();
    unsigned* pd = dims;
    void* args[] = {&po, &pd};
    bool ok = launch("st_indices", grid, block, 0, args) == 0;
    for (unsigned bz = 0; bz < grid.z; ++bz)
        for (unsigned by = 0; by < grid.y; ++by)
            for (unsigned bx = 0; bx < grid.x; ++bx)
                for (unsigned tz = 0; tz < block.z; ++tz)
                    for (unsigned ty = 0; ty < block.y; ++ty)
                        for (unsigned tx = 0; tx < block.x; ++tx) {
                            const unsigned b = bx + grid.x * (by + grid.y * bz), l = tx + block.x * (ty + block.y * tz);
                            const unsigned want = tx | ty << 4 | tz << 8 | bx << 12 | by << 16 | bz << 20;
                            ok = ok && out[b * threads + l] == want;
                        }
    ok = ok && dims[0] == 4 && dims[1] == 3 && dims[2] == 5 && dims[3] == 3 && dims[4] == 2 && dims[5] == 2 && dims[6] == 32;
    t.check(ok, "3D threadIdx/blockIdx/blockDim/gridDim and warpSize");
}

void test_syncwarp_scan(Tally& t) {
    std::vector<int> in(64), out(64, 0);
    for (int i = 0; i < 64; ++i) in[static_cast<std::size_t>(i)] = i % 5 + 1;
    const int* pi = in.data();
    int* po = out.data();
    void* args[] = {&pi, &po};
    bool ok = launch("st_syncwarp_scan", {1, 1, 1}, {64, 1, 1}, 0, args) == 0;
    for (int w = 0; w < 2; ++w) {
        int sum = 0;
        for (int l = 0; l < 32; ++l) {
            sum += in[static_cast<std::size_t>(w * 32 + l)];
            ok = ok && out[static_cast<std::size_t>(w * 32 + l)] == sum;
        }
    }
    t.check(ok, "warp scan in shared memory ordered by __syncwarp");
}

void test_math(Tally& t) {
    std::vector<float> in = {-3.5f, -1.0f, -0.1f, 0.0f, 0.3f, 1.0f, 2.5f, 10.0f};
    std::vector<float> out(in.size() * 10, NAN);
    const float* pi = in.data();
    float* po = out.data();
    int n = static_cast<int>(in.size());
    void* args[] = {&pi, &po, &n};
    bool ok = launch("st_math", {1, 1, 1}, {32, 1, 1}, 0, args) == 0;
    for (std::size_t i = 0; i < in.size() && ok; ++i) {
        const float x = in[i];
        const float* o = &out[i * 10];
        const float want[10] = {std::fmax(x, 0.25f), std::fmin(x, 0.25f), std::fma(x, 2.0f, 1.0f), std::fabs(x),
                                std::sqrt(std::fabs(x)), 1.0f / std::sqrt(std::fabs(x) + 1.0f), std::exp(x),
                                std::log(std::fabs(x) + 1.0f), static_cast<float>(std::max(std::min(static_cast<int>(x * 4.0f), 3), -3)), x};
        for (int k = 0; k < 10; ++k) ok = ok && std::fabs(o[k] - want[k]) <= 1e-6f * (1.0f + std::fabs(want[k]));
    }
    t.check(ok, "fmaxf fminf fmaf fabsf sqrtf rsqrtf expf logf min max __ldg");
}

void test_params(Tally& t) {
    cc_conv_problem p{};
    p.n = 1; p.c = 2; p.h = 3; p.w = 4; p.k = 5; p.r = 6; p.s = 7; p.pad_h = 8; p.pad_w = 9;
    p.stride_h = 10; p.stride_w = 11; p.groups = 12; p.p = 13; p.q = 14;
    unsigned u = 0xdeadu;
    float f = 2.25f;
    int out[3] = {};
    int* po = out;
    void* args[] = {&p, &u, &f, &po};
    const bool ok = launch("st_params", {1, 1, 1}, {1, 1, 1}, 0, args) == 0 && out[0] == 105 && out[1] == 0xdead && out[2] == 9;
    t.check(ok, "struct-by-value, unsigned and float parameters unpacked from void**");
}

void test_partial_warp(Tally& t) {
    std::vector<unsigned> out(48 * 3, 0);
    unsigned* po = out.data();
    void* args[] = {&po};
    bool ok = launch("st_partial_warp", {1, 1, 1}, {48, 1, 1}, 0, args) == 0;
    for (unsigned i = 0; i < 48 && ok; ++i)
        ok = out[i] == (i < 32 ? 0xffffffffu : 0x0000ffffu) && out[48 + i] == (i ^ 1) && out[96 + i] == 1;
    t.check(ok, "block of 48 threads: the partial warp's missing lanes are not waited for");
}

} // namespace

void run_primitive_tests(Tally& t) {
    test_partial_warp(t);
    test_reduce(t);
    test_shuffles(t);
    test_votes(t);
    test_atomics(t);
    test_indices(t);
    test_syncwarp_scan(t);
    test_math(t);
    test_params(t);
}

} // namespace cc_selftest
