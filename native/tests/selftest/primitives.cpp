// Correctness checks of the emulated CUDA primitives, against values computed here on the host.
#include "primitives.h"

#include "cheapconv/problem.h"

#include <algorithm>
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

// cc_atomic_add_acq_rel as a "last block reduces" arrival: 37 blocks, 1 + 2 + ... + 37 = 703 (exact in fp32), one
// last block, the counter at 37; with 1 and with 3 worker threads (other arrival orders).
void test_last_block(Tally& t) {
    bool ok = true;
#if defined(__SANITIZE_THREAD__)
    const std::vector<int> worker_counts = {-1}; // the sanitizer driver's choice (TSan checks the ordering instead)
#else
    const std::vector<int> worker_counts = {1, 3};
#endif
    for (int workers : worker_counts) {
        if (workers > 0) cc_emu_set_worker_threads(workers);
        std::vector<float> slots(37, -1.0f);
        unsigned counter = 0, lasts = 0;
        float total = -1.0f;
        float* ps = slots.data();
        unsigned* pc = &counter;
        float* pt = &total;
        unsigned* pl = &lasts;
        void* args[] = {&ps, &pc, &pt, &pl};
        ok = ok && launch("st_last_block", {37, 1, 1}, {64, 1, 1}, 0, args) == 0 && total == 703.0f && lasts == 1 && counter == 37;
    }
    if (worker_counts[0] > 0) cc_emu_set_worker_threads(0);
    t.check(ok, "cc_atomic_add_acq_rel: the last of 37 blocks sees every block's store (sum 703), exactly one block is last");
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

// cvt.rna.tf32.f32 on hand-picked bit patterns: 13 low mantissa bits dropped, rounding to nearest with ties
// away from zero (the PTX ISA's .rna).
void test_cvt_tf32(Tally& t) {
    struct Case {
        unsigned in, want;
    };
    const Case cases[] = {
        {0x3f800000u, 0x3f800000u}, // 1.0 is tf32 already
        {0x3f801000u, 0x3f802000u}, // 1 + 2^-11: a tie, away from zero -> 1 + 2^-10
        {0x3f800800u, 0x3f800000u}, // 1 + 2^-12: below half an ulp -> 1
        {0x3f801800u, 0x3f802000u}, // 1 + 3*2^-12: above half -> 1 + 2^-10
        {0xbf801000u, 0xbf802000u}, // -(1 + 2^-11): a tie, away from zero -> -(1 + 2^-10)
        {0x3fffffffu, 0x40000000u}, // just below 2: the carry reaches the exponent -> 2.0
        {0x00001fffu, 0x00002000u}, // a denormal rounds like any other value
        {0x7f800000u, 0x7f800000u}, // +inf
        {0x7fc00001u, 0x7fc00001u}, // a NaN stays a NaN
    };
    const int n = static_cast<int>(sizeof cases / sizeof cases[0]);
    std::vector<float> in(n);
    std::vector<unsigned> out(n, 0);
    for (int i = 0; i < n; ++i) std::memcpy(&in[static_cast<std::size_t>(i)], &cases[i].in, 4);
    const float* pi = in.data();
    unsigned* po = out.data();
    void* args[] = {&pi, &po, const_cast<int*>(&n)};
    bool ok = launch("st_cvt_tf32", {1, 1, 1}, {32, 1, 1}, 0, args) == 0;
    for (int i = 0; i < n && ok; ++i) {
        ok = out[static_cast<std::size_t>(i)] == cases[i].want;
        if (!ok) std::printf("  cvt.rna.tf32 0x%08x -> 0x%08x, want 0x%08x\n", cases[i].in, out[static_cast<std::size_t>(i)], cases[i].want);
    }
    t.check(ok, "cc_cvt_tf32: round to nearest, ties away from zero, carry into the exponent, inf/NaN kept");
}

// One mma.sync m16n8k8 with small integers (exact in tf32 and fp32, so the result is exact whatever the order
// of the additions) chosen so that every element of A, B and C differs: a fragment placed in the wrong row or
// column changes the result. Hand-checkable: D[0][0] = sum_k A[0][k] B[k][0] + C[0][0].
void test_mma_tf32(Tally& t) {
    std::vector<float> a(16 * 8), b(8 * 8), c(16 * 8), d(16 * 8, NAN);
    for (int i = 0; i < 16; ++i)
        for (int k = 0; k < 8; ++k) a[static_cast<std::size_t>(i * 8 + k)] = static_cast<float>(i * 8 + k - 50);
    for (int k = 0; k < 8; ++k)
        for (int j = 0; j < 8; ++j) b[static_cast<std::size_t>(k * 8 + j)] = static_cast<float>((k * 8 + j) % 13 - 6);
    for (int i = 0; i < 16; ++i)
        for (int j = 0; j < 8; ++j) c[static_cast<std::size_t>(i * 8 + j)] = static_cast<float>(1000 * (i + 1) + j);
    const float *pa = a.data(), *pb = b.data(), *pc = c.data();
    float* pd = d.data();
    void* args[] = {&pa, &pb, &pc, &pd};
    bool ok = launch("st_mma_tf32", {1, 1, 1}, {32, 1, 1}, 0, args) == 0;
    for (int i = 0; i < 16 && ok; ++i)
        for (int j = 0; j < 8 && ok; ++j) {
            double want = c[static_cast<std::size_t>(i * 8 + j)];
            for (int k = 0; k < 8; ++k) want += static_cast<double>(a[static_cast<std::size_t>(i * 8 + k)]) * b[static_cast<std::size_t>(k * 8 + j)];
            ok = d[static_cast<std::size_t>(i * 8 + j)] == static_cast<float>(want);
            if (!ok) std::printf("  mma D[%d][%d] = %g, want %g\n", i, j, d[static_cast<std::size_t>(i * 8 + j)], want);
        }
    // By hand: D[0][0] = sum_k (k - 50) * ((8k) % 13 - 6) + 1000 = -50*-6 + -49*2 + -48*-3 + -47*5 + -46*0 + -45*-5 + -44*3 + -43*-2 + 1000
    //                  = 300 - 98 + 144 - 235 + 0 + 225 - 132 + 86 + 1000 = 1290.
    ok = ok && d[0] == 1290.0f;
    t.check(ok, "cc_mma_tf32_m16n8k8: D = A·B + C with the PTX fragment layouts (D[0][0] = 1290 by hand)");

    // The inputs are tf32: A = 1 + 2^-11 rounds (cvt.rna) to 1 + 2^-10 before the product.
    std::fill(a.begin(), a.end(), 0.0f);
    std::fill(b.begin(), b.end(), 0.0f);
    std::fill(c.begin(), c.end(), 0.0f);
    a[0] = 1.0f + std::ldexp(1.0f, -11);
    b[0] = 1.0f;
    ok = launch("st_mma_tf32", {1, 1, 1}, {32, 1, 1}, 0, args) == 0 && d[0] == 1.0f + std::ldexp(1.0f, -10) && d[1] == 0.0f;
    t.check(ok, "cc_mma_tf32_m16n8k8 multiplies tf32 values: (1 + 2^-11) * 1 = 1 + 2^-10");
}

// b16 element (row r, column c) of matrix m of st_ldmatrix's input.
unsigned ldmatrix_element(unsigned m, unsigned r, unsigned c) { return 0x100u * m + 0x10u * r + c; }

void test_ldmatrix(Tally& t) {
    std::vector<unsigned> in(4 * 8 * 4), out(6 * 32 * 4, 0xeeeeeeeeu);
    for (unsigned m = 0; m < 4; ++m)
        for (unsigned r = 0; r < 8; ++r)
            for (unsigned w = 0; w < 4; ++w)
                in[(m * 8 + r) * 4 + w] = ldmatrix_element(m, r, 2 * w) | ldmatrix_element(m, r, 2 * w + 1) << 16;
    const unsigned* pi = in.data();
    unsigned* po = out.data();
    void* args[] = {&pi, &po};
    const bool launched = launch("st_ldmatrix", {1, 1, 1}, {32, 1, 1}, 0, args) == 0;
    const char* names[6] = {"x1", "x2", "x4", "x1.trans", "x2.trans", "x4.trans"};
    for (unsigned form = 0; form < 6; ++form) {
        const unsigned count = 1u << (form % 3);
        const bool trans = form >= 3;
        bool ok = launched;
        for (unsigned l = 0; l < 32 && ok; ++l)
            for (unsigned m = 0; m < 4 && ok; ++m) {
                const unsigned got = out[(form * 32 + l) * 4 + m];
                // Lane l holds row l/4, b16 columns 2(l%4) and 2(l%4)+1; transposed, column l/4 of rows 2(l%4), 2(l%4)+1.
                const unsigned want = m >= count ? 0xeeeeeeeeu
                                      : trans    ? ldmatrix_element(m, 2 * (l % 4), l / 4) | ldmatrix_element(m, 2 * (l % 4) + 1, l / 4) << 16
                                                 : ldmatrix_element(m, l / 4, 2 * (l % 4)) | ldmatrix_element(m, l / 4, 2 * (l % 4) + 1) << 16;
                ok = got == want;
                if (!ok) std::printf("  ldmatrix.%s lane %u r[%u] = 0x%08x, want 0x%08x\n", names[form], l, m, got, want);
            }
        t.check(ok, std::string("cc_ldmatrix ") + names[form] + ": each lane's row address, the PTX fragment layout");
    }
}

void test_cp_async(Tally& t) {
    constexpr unsigned kPoison = 0x7fa0deadu; // CC_CP_ASYNC_POISON of cuda_shim.h: a signalling NaN
    constexpr int kSteps = 13;                // ST_CP_ASYNC_STEPS of kernels.cu
    std::vector<unsigned> src(320), out(32 * kSteps, 0);
    for (unsigned i = 0; i < src.size(); ++i) src[i] = 0x1000u + i;
    const unsigned* ps = src.data();
    unsigned* po = out.data();
    void* args[] = {&ps, &po};
    const bool launched = launch("st_cp_async", {1, 1, 1}, {32, 1, 1}, 0, args) == 0;
    struct Check {
        const char* what;
        bool ok;
    };
    Check checks[] = {{"4-byte .ca: the destination holds the poison before the wait, the data after it", launched},
                      {"8-byte .ca and 16-byte .cg with a zero-filled tail (src_bytes 8)", launched},
                      {"wait_group 1 completes the older of two groups only; wait_group 0 the newer", launched},
                      {"a copy no commit_group covers is not completed by wait_group 0", launched}};
    for (unsigned l = 0; l < 32; ++l) {
        const unsigned* o = &out[l * kSteps];
        checks[0].ok = checks[0].ok && o[0] == kPoison && o[1] == src[l];
        checks[1].ok = checks[1].ok && o[2] == src[32 + 2 * l] && o[3] == src[33 + 2 * l] && o[4] == src[96 + 4 * l] &&
                       o[5] == src[97 + 4 * l] && o[6] == 0 && o[7] == 0;
        checks[2].ok = checks[2].ok && o[8] == src[224 + l] && o[9] == kPoison && o[10] == src[256 + l];
        checks[3].ok = checks[3].ok && o[11] == kPoison && o[12] == src[288 + l];
    }
    for (const Check& c : checks) t.check(c.ok, std::string("cc_cp_async: ") + c.what);
}

// Thread-block clusters: ranks (1-D and 2-D clusters), distributed shared memory (static and dynamic), the refusals.
void test_clusters(Tally& t) {
    {
        // Grid (8,2): clusters of 4 consecutive blocks in x; a partial warp (40 threads) per block.
        std::vector<unsigned> out(16 * 40, 0);
        unsigned* po = out.data();
        void* args[] = {&po};
        bool ok = launch("st_cluster_ranks", {8, 2, 1}, {40, 1, 1}, 0, args) == 0;
        for (unsigned i = 0; i < out.size() && ok; ++i) {
            const unsigned bx = (i / 40) % 8;
            ok = out[i] == ((bx % 4) | 4u << 8 | bx << 16);
        }
        t.check(ok, "clusters: cc_cluster_ctarank = blockIdx.x % 4 and cc_cluster_nctarank = 4 in a (4,1,1) cluster, grid (8,2)");
    }
    {
        // Cluster (2,2,1) on a (4,4) grid: rank = x % 2 + 2 * (y % 2).
        std::vector<unsigned> out(16 * 32, 0);
        unsigned* po = out.data();
        void* args[] = {&po};
        bool ok = launch("st_cluster_ranks_2d", {4, 4, 1}, {32, 1, 1}, 0, args) == 0;
        for (unsigned i = 0; i < out.size() && ok; ++i) {
            const unsigned b = i / 32, bx = b % 4, by = b / 4;
            ok = out[i] == ((bx % 2 + 2 * (by % 2)) | 4u << 8 | bx << 16 | by << 24);
        }
        t.check(ok, "clusters: a (2,2,1) cluster's rank is x + 2y of the block's place in it");
    }
    {
        // Two clusters of 4 blocks (grid 8), 64 threads, 256 bytes of dynamic shared memory.
        std::vector<float> out(8 * 64 * 3, -1.0f);
        float* po = out.data();
        void* args[] = {&po};
        std::string msg;
        bool ok = launch("st_cluster_dsmem", {8, 1, 1}, {64, 1, 1}, 64 * 4, args, &msg) == 0;
        bool sums = ok;
        for (unsigned b = 0; b < 8 && ok; ++b)
            for (unsigned th = 0; th < 64 && ok; ++th) {
                const unsigned r = b % 4;
                const float* o = &out[(b * 64 + th) * 3];
                ok = o[0] == static_cast<float>(1000 * ((r + 1) % 4) + (th + 3) % 64) &&
                     o[1] == static_cast<float>(100 * ((r + 3) % 4) + 63 - th) + 0.5f;
                // 1000 * (0 + 1 + 2 + 3) + 4t, exact in float.
                sums = sums && o[2] == static_cast<float>(6000 + 4 * th);
            }
        t.check(ok, "clusters: cc_cluster_load reads the static and the dynamic shared memory of another block of the cluster" +
                        (msg.empty() ? std::string() : " (" + msg + ")"));
        t.check(sums, "clusters: a sum over the cluster's blocks in rank order is the same in every block");
    }
    {
        // The grid must be a multiple of the cluster, as the driver requires.
        std::vector<unsigned> out(6 * 32, 0);
        unsigned* po = out.data();
        void* args[] = {&po};
        std::string msg;
        const int status = launch("st_cluster_ranks", {6, 1, 1}, {32, 1, 1}, 0, args, &msg);
        t.check(status == CC_EMU_ERROR_INVALID_VALUE && msg.find("not a multiple of its cluster") != std::string::npos,
                "clusters: a grid that is not a multiple of the cluster is refused (CUDA_ERROR_INVALID_VALUE)");
    }
    const struct {
        int mode, status;
        const char* text;
        const char* what;
    } faults[] = {
        {0, CC_EMU_INVALID_OPERAND, "before the first cc_cluster_sync", "a read of another block before any cluster barrier"},
        {1, CC_EMU_INVALID_OPERAND, "rank 2 is outside the cluster of 2", "a read at a rank outside the cluster"},
        {2, CC_EMU_INVALID_OPERAND, "not in this block's shared memory", "a read past the end of a static shared variable"},
        {3, CC_EMU_INVALID_OPERAND, "has exited", "a read of a block whose threads have all returned"},
        {4, CC_EMU_DIVERGENT_BARRIER, "waits at cc_cluster_sync", "blocks waiting at different cc_cluster_sync call sites"},
    };
    for (const auto& f : faults) {
        std::vector<float> out(64, 0.0f);
        float* po = out.data();
        int mode = f.mode;
        void* args[] = {&mode, &po};
        std::string msg;
        const int status = launch("st_cluster_faults", {2, 1, 1}, {32, 1, 1}, 0, args, &msg);
        t.check(status == f.status && msg.find(f.text) != std::string::npos,
                std::string("clusters: the emulator refuses ") + f.what + " (got: " + msg + ")");
    }
}

void test_shuffles64(Tally& t) {
    std::vector<double> d(64, 0);
    std::vector<long long> ll(64, 0);
    std::vector<unsigned long long> ull(64, 0);
    double* pd = d.data();
    long long* pl = ll.data();
    unsigned long long* pu = ull.data();
    void* args[] = {&pd, &pl, &pu};
    bool ok = launch("st_shuffles64", {1, 1, 1}, {64, 1, 1}, 0, args) == 0;
    for (unsigned i = 0; i < 64 && ok; ++i) {
        const unsigned lane = i % 32, base = i - lane;
        const unsigned xsrc = i ^ 1u;
        const unsigned dsrc = lane % 16 + 2 < 16 ? i + 2 : i; // down by 2 within 16-lane segments
        const unsigned isrc = base + lane / 8 * 8 + 3;       // lane 3 of the 8-lane segment
        ok = d[i] == (static_cast<double>(xsrc) + 0.25) * 1099511627776.0 &&
             ll[i] == -static_cast<long long>(static_cast<unsigned long long>(dsrc) << 33) - static_cast<long long>(dsrc) &&
             ull[i] == (static_cast<unsigned long long>(isrc) << 40 | 7);
    }
    t.check(ok, "64-bit __shfl_xor_sync (double), __shfl_down_sync (long long, width 16), __shfl_sync (unsigned long long, width 8)");
}

void test_activemask(Tally& t) {
    std::vector<unsigned> out(48, 0);
    unsigned* po = out.data();
    void* args[] = {&po};
    bool ok = launch("st_activemask", {1, 1, 1}, {48, 1, 1}, 0, args) == 0;
    for (unsigned i = 0; i < 48 && ok; ++i) ok = out[i] == (i < 32 ? 0xffffffffu : 0x0000ffffu);
    t.check(ok, "__activemask: a full warp, and the 16 lanes of a partial one");
}

// Dynamic shared memory above 48 KiB: refused as by the driver until the kernel is opted in.
void test_large_dynamic_shared(Tally& t) {
    const unsigned words = 64 * 1024 / 4;
    unsigned sum = 0;
    unsigned* ps = &sum;
    unsigned n = words;
    void* args[] = {&ps, &n};
    std::string msg;
    int rc = launch("st_large_dynamic_shared", {1, 1, 1}, {256, 1, 1}, words * 4, args, &msg);
    t.check(rc == CC_EMU_ERROR_INVALID_VALUE && msg.find("cuFuncSetAttribute") != std::string::npos,
            "64 KiB of dynamic shared memory without the opt-in: CUDA_ERROR_INVALID_VALUE naming cuFuncSetAttribute");
    bool ok = cc_emu_set_max_dynamic_shared("st_large_dynamic_shared", words * 4) == 0;
    rc = launch("st_large_dynamic_shared", {1, 1, 1}, {256, 1, 1}, words * 4, args, &msg);
    ok = ok && rc == 0 && sum == words * (words - 1) / 2;
    rc = launch("st_large_dynamic_shared", {1, 1, 1}, {256, 1, 1}, words * 4 + 4, args, &msg);
    ok = ok && rc == CC_EMU_ERROR_INVALID_VALUE && msg.find("opted in to") != std::string::npos;
    t.check(ok, "64 KiB after cc_emu_set_max_dynamic_shared(64 KiB): runs; 4 bytes more is refused");
    t.check(cc_emu_set_max_dynamic_shared("st_large_dynamic_shared", CC_EMU_MAX_DYNAMIC_SHARED + 1) == CC_EMU_ERROR_INVALID_VALUE &&
                cc_emu_set_max_dynamic_shared("no_such_kernel", 1024) == CC_EMU_ERROR_NOT_FOUND &&
                cc_emu_set_max_dynamic_shared(nullptr, 1024) == CC_EMU_ERROR_INVALID_VALUE,
            "cc_emu_set_max_dynamic_shared refuses more than 163 KiB, an unknown kernel and NULL");
    cc_emu_set_max_dynamic_shared("st_large_dynamic_shared", CC_EMU_DEFAULT_DYNAMIC_SHARED);
}

// Static shared memory (CC_STATIC_SHARED): poisoned for every block even where one worker runs them all (so a
// block would otherwise see its predecessor's values), one array per block, aligned, distinct; the 48 KiB limits.
void test_static_shared(Tally& t) {
    const unsigned blocks = 6;
    std::vector<unsigned> before(blocks * 64, 0), after(blocks * 64, 0), aligned(blocks, 0);
    unsigned *pb = before.data(), *pa = after.data(), *pl = aligned.data();
    void* args[] = {&pb, &pa, &pl};
    cc_emu_set_worker_threads(1);
    bool ok = launch("st_static_shared", {blocks, 1, 1}, {64, 1, 1}, 0, args) == 0;
    cc_emu_set_worker_threads(0);
    for (unsigned b = 0; b < blocks && ok; ++b)
        for (unsigned i = 0; i < 64 && ok; ++i)
            ok = before[b * 64 + i] == 0xffffffffu && after[b * 64 + i] == b * 1000 + (i + 1) % 64 && aligned[b] == 1;
    t.check(ok, "static shared: 0xff bytes in each of 6 blocks run by one worker, shared by the block's threads, 16-byte "
                "aligned, variables apart");

    unsigned last = 0;
    unsigned* pw = &last;
    void* beside[] = {&pw};
    std::string msg;
    ok = launch("st_static_beside_dynamic", {1, 1, 1}, {256, 1, 1}, 16 * 1024, beside, &msg) == 0 && last == 8191;
    const int rc = launch("st_static_beside_dynamic", {1, 1, 1}, {256, 1, 1}, 16 * 1024 + 4, beside, &msg);
    ok = ok && rc == CC_EMU_ERROR_INVALID_VALUE && msg.find("32768 bytes of static and 16388 of dynamic") != std::string::npos &&
         msg.find("st_static_beside_dynamic") != std::string::npos && msg.find("kernels.cu:") != std::string::npos;
    t.check(ok, "32 KiB static + 16 KiB dynamic runs; 4 bytes more without the opt-in fails, naming both sizes" +
                    (t.verbose || !ok ? "\n        " + msg : ""));

    std::vector<unsigned> out(32, 0);
    unsigned* po = out.data();
    void* large[] = {&po};
    const int too_large = launch("st_static_shared_too_large", {2, 1, 1}, {32, 1, 1}, 0, large, &msg);
    ok = too_large == CC_EMU_ERROR_INVALID_VALUE && msg.find("static __shared__ big") != std::string::npos &&
         msg.find("49156 bytes") != std::string::npos && msg.find("48 KiB") != std::string::npos;
    t.check(ok, "static shared past 48 KiB fails the launch, naming the variable and the total" +
                    (t.verbose || !ok ? "\n        " + msg : ""));
    // The emulator is usable after the failed launch (the abandoned block's threads are reset).
    ok = launch("st_static_beside_dynamic", {1, 1, 1}, {256, 1, 1}, 0, beside, &msg) == 0 && last == 8191;
    t.check(ok, "a launch after the failed one runs");
}

} // namespace

void run_primitive_tests(Tally& t) {
    test_partial_warp(t);
    test_reduce(t);
    test_shuffles(t);
    test_votes(t);
    test_atomics(t);
    test_last_block(t);
    test_indices(t);
    test_syncwarp_scan(t);
    test_math(t);
    test_params(t);
    test_cvt_tf32(t);
    test_mma_tf32(t);
    test_ldmatrix(t);
    test_cp_async(t);
    test_clusters(t);
    test_shuffles64(t);
    test_activemask(t);
    test_large_dynamic_shared(t);
    test_static_shared(t);
}

} // namespace cc_selftest
