// GEMM grids and split-K planning (see gemm_plan.h). Ported from the C# launcher
// (GpuBackend.GemmConfig, SplitChunk and SplitLaunch), with the same constants and rules.
#include "gemm_plan.h"

#include "checks.h"
#include "geometry.h"

namespace cc {
namespace {

std::int64_t tiles(std::int64_t extent) { return (extent + kGemmTile - 1) / kGemmTile; }

} // namespace

std::int64_t gemm_tiles(std::int64_t m, std::int64_t n) { return tiles(m) * tiles(n); }

bool gemm_fits(std::int64_t m, std::int64_t n, std::int64_t splits)
{
    return tiles(m) <= kMaxGridYZ && splits <= kMaxGridYZ && tiles(n) <= kMaxElements;
}

cc_status gemm_geometry(const char* call, std::int64_t m, std::int64_t n, std::int64_t splits, Geometry* geometry)
{
    if (!gemm_fits(m, n, splits))
        return fail(CC_ERROR_INVALID_VALUE,
                    "%s: a %lldx%lld GEMM in %lld splits needs a grid of %lldx%lldx%lld blocks, over CUDA's limits "
                    "(2147483647x65535x65535)",
                    call, static_cast<long long>(m), static_cast<long long>(n), static_cast<long long>(splits),
                    static_cast<long long>(tiles(n)), static_cast<long long>(tiles(m)), static_cast<long long>(splits));
    geometry->grid = Dim3{static_cast<unsigned>(tiles(n)), static_cast<unsigned>(tiles(m)), static_cast<unsigned>(splits)};
    geometry->block = Dim3{kGemmBlock, 1, 1};
    geometry->shared_bytes = 0;
    return CC_SUCCESS;
}

std::int64_t default_split_chunk(std::int64_t m, std::int64_t n, std::int64_t k)
{
    const std::int64_t tile_count = tiles(m) * tiles(n);
    std::int64_t splits = std::min((kSplitTargetBlocks + tile_count - 1) / tile_count, k / kSplitMinChunk);
    splits = std::clamp(std::min(splits, kMaxElements / (m * n)), std::int64_t{1}, kMaxGridYZ);
    const std::int64_t chunk = (k + splits - 1) / splits;
    return std::min(kMaxElements, (chunk + kGemmTileK - 1) / kGemmTileK * kGemmTileK);
}

cc_status check_split_tiles(const char* call, std::int64_t tiles, std::int64_t k, int requested_chunk, std::int64_t* chunk)
{
    if (*chunk >= k || tiles <= kSplitCounters) return CC_SUCCESS;
    if (requested_chunk == 0) { // enough blocks without a split
        *chunk = k;
        return CC_SUCCESS;
    }
    return fail(CC_ERROR_INVALID_VALUE,
                "%s: options->split_chunk %d splits a launch of %lld output tiles, but a split weight gradient has arrival "
                "counters for at most %lld (CC_SPLIT_COUNTER_BYTES); use 0 (the launcher's choice) or at least %lld",
                call, requested_chunk, static_cast<long long>(tiles), static_cast<long long>(kSplitCounters), static_cast<long long>(k));
}

cc_status plan_split(const char* call, std::int64_t m, std::int64_t n, std::int64_t k, int requested_chunk, SplitPlan* plan,
                     std::int64_t tiles)
{
    if (requested_chunk < 0)
        return fail(CC_ERROR_INVALID_VALUE, "%s: options->split_chunk must be 0 (the launcher's choice) or positive, got %d", call,
                    requested_chunk);
    SplitPlan p;
    p.m = m;
    p.n = n;
    p.k = k;
    p.chunk = requested_chunk > 0 ? requested_chunk : default_split_chunk(m, n, k);
    CC_TRY(check_split_tiles(call, tiles > 0 ? tiles : gemm_tiles(m, n), k, requested_chunk, &p.chunk));
    p.splits = (k + p.chunk - 1) / p.chunk;
    if (p.splits > 1 && p.splits * m * n > kMaxElements)
        return fail(CC_ERROR_INVALID_VALUE,
                    "%s: %lld splits of a %lldx%lld weight gradient need a workspace over 2^31-1 elements; use a larger "
                    "options->split_chunk than %lld",
                    call, static_cast<long long>(p.splits), static_cast<long long>(m), static_cast<long long>(n),
                    static_cast<long long>(p.chunk));
    CC_TRY(gemm_geometry(call, m, n, p.splits, &p.geometry));
    *plan = p;
    return CC_SUCCESS;
}

cc_status launch_column_sums(const cc_handle_s& handle, int rows, int cols, const float* src, float* dst, void* stream,
                             const ProblemText& text)
{
    return launch<KernelId::gemm_column_sums>(handle, elementwise_geometry(cols), stream, text, rows, cols, src, dst);
}

} // namespace cc
