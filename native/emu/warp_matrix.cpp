// The warp-collective matrix operations, computed once every lane of the warp has arrived (scheduler.cpp):
// mma.sync m16n8k8 tf32 and ldmatrix. The fragment layouts are the PTX ISA's ("Matrix Fragments for
// mma.m16n8k8", .tf32; "ldmatrix"), spelled out in cuda_shim.h's header comment; scattering the lanes'
// fragments into whole matrices and gathering them back is exactly what checks a kernel's fragment mapping.
#include "emu_internal.h"

#include <cmath>

namespace cc_emu {

namespace {

float tf32(unsigned bits) { return cc_emu_detail::from_bits<float>(cc_emu_detail::tf32_round(bits)); }

} // namespace

void warp_mma_tf32_m16n8k8(Fiber* const lanes[32]) {
    float a[16][8], b[8][8], c[16][8];
    for (unsigned l = 0; l < 32; ++l) {
        const auto& in = *static_cast<const cc_emu_detail::MmaOperands*>(lanes[l]->collective_in);
        const unsigned g = l / 4, t = l % 4;
        // The inputs are rounded to tf32 as cvt.rna.tf32.f32 does (a no-op on values the kernel already
        // converted with cc_cvt_tf32).
        a[g][t] = tf32(in.a[0]);
        a[g + 8][t] = tf32(in.a[1]);
        a[g][t + 4] = tf32(in.a[2]);
        a[g + 8][t + 4] = tf32(in.a[3]);
        b[t][g] = tf32(in.b[0]);
        b[t + 4][g] = tf32(in.b[1]);
        c[g][2 * t] = in.c[0];
        c[g][2 * t + 1] = in.c[1];
        c[g + 8][2 * t] = in.c[2];
        c[g + 8][2 * t + 1] = in.c[3];
    }
    // Accumulated in fp32 in k order. A product of two tf32 values (11-bit significands) is exact in fp32, so
    // each step rounds once, as an fp32 add; the tensor core's own order and rounding of the additions are not
    // specified, which is why kernels are compared with tolerances, never bit for bit.
    float d[16][8];
    for (unsigned i = 0; i < 16; ++i)
        for (unsigned j = 0; j < 8; ++j) {
            float sum = c[i][j];
            for (unsigned k = 0; k < 8; ++k) sum = std::fma(a[i][k], b[k][j], sum);
            d[i][j] = sum;
        }
    for (unsigned l = 0; l < 32; ++l) {
        auto* out = static_cast<float*>(lanes[l]->collective_out);
        const unsigned g = l / 4, t = l % 4;
        out[0] = d[g][2 * t];
        out[1] = d[g][2 * t + 1];
        out[2] = d[g + 8][2 * t];
        out[3] = d[g + 8][2 * t + 1];
    }
}

std::string warp_ldmatrix(Fiber* const lanes[32], int count, bool trans) {
    const auto row = [&](unsigned lane) -> const cc_emu_detail::LdmatrixRow& {
        return *static_cast<const cc_emu_detail::LdmatrixRow*>(lanes[lane]->collective_in);
    };
    for (unsigned l = 0; l < 8u * static_cast<unsigned>(count); ++l)
        if (!row(l).read)
            return format("lane %u passed the row address %p, which is not 16-byte aligned (ldmatrix reads 16-byte rows)", l,
                          row(l).address);
    for (unsigned l = 0; l < 32; ++l) {
        auto* out = static_cast<unsigned*>(lanes[l]->collective_out);
        for (unsigned m = 0; m < static_cast<unsigned>(count); ++m) {
            if (!trans) {
                // Word l % 4 (b16 elements 2(l%4), 2(l%4)+1) of row l / 4.
                out[m] = row(8 * m + l / 4).words[l % 4];
            } else {
                // b16 elements [2(l%4)][l/4] (low half) and [2(l%4)+1][l/4] (high half) of the 8×8 b16 matrix.
                const unsigned column = l / 4;
                const auto half = [&](unsigned r) {
                    return (row(8 * m + r).words[column / 2] >> (16 * (column % 2))) & 0xffffu;
                };
                out[m] = half(2 * (l % 4)) | half(2 * (l % 4) + 1) << 16;
            }
        }
    }
    return std::string();
}

} // namespace cc_emu
