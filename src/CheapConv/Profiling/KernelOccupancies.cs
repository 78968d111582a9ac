namespace CheapConv.Profiling;

/// <summary>
/// Registers and static shared memory of every kernel on one architecture, from which the roofline model computes each
/// launch's occupancy: from the static report's rows of the build the GPU runs (nvcc's SASS where the native build made
/// fatbins — libcheapconv.so loads them on sm_80/sm_90 — else clang's PTX), or, without the CUDA toolkit, nothing, so
/// that only warp slots and the block limit bound occupancy.
/// </summary>
/// <param name="Source">Where the numbers come from, for the report: "nvcc-fatbin sm_90 registers and shared memory", ...</param>
/// <param name="ByKernel">Kernel → (registers per thread, static shared bytes per block).</param>
internal sealed record KernelOccupancies(SmLimits Sm, string Source, IReadOnlyDictionary<string, (int Registers, int SharedBytes)> ByKernel)
{
    /// <summary>The resources of <paramref name="report"/>'s rows for <paramref name="sm"/>'s architecture.</summary>
    public static KernelOccupancies FromReport(StaticReport report, SmLimits sm)
    {
        ArgumentNullException.ThrowIfNull(report);
        ArgumentNullException.ThrowIfNull(sm);
        var rows = report.Rows.Where(r => r.Arch == sm.Arch).ToList();
        var build = rows.Any(r => r.Build == KernelBuild.NvccFatbin) ? KernelBuild.NvccFatbin : KernelBuild.ClangPtx;
        return new KernelOccupancies(sm, $"{build} {sm.Arch} registers and shared memory (ptxas/cuobjdump)",
            rows.Where(r => r.Build == build).ToDictionary(r => r.Kernel, r => (r.Registers, r.SharedBytes)));
    }

    /// <summary>Without the toolkit: no kernel's registers or shared memory are known.</summary>
    public static KernelOccupancies WarpLimited(SmLimits sm) =>
        new(sm, "warp slots only (the CUDA toolkit's ptxas is not installed, so register limits are unknown)",
            new Dictionary<string, (int, int)>());

    /// <summary>Resident blocks per SM of <paramref name="kernel"/> launched with this block; at least 1.</summary>
    public int BlocksPerSm(string kernel, int threadsPerBlock, int dynamicSharedBytes)
    {
        var (registers, shared) = ByKernel.TryGetValue(kernel, out var known) ? known : (0, 0);
        return Math.Max(1, Occupancy.Compute(Sm, registers, threadsPerBlock, shared, dynamicSharedBytes).BlocksPerSm);
    }
}
