namespace CheapConv.Profiling;

/// <summary>Which compiler made the SASS a row describes.</summary>
internal static class KernelBuild
{
    /// <summary>clang-14's PTX (what libcheapconv.so and the C# CUDA device JIT where no fatbin matches), assembled by the toolkit's ptxas.</summary>
    public const string ClangPtx = "clang-ptx";

    /// <summary>nvcc's fatbin SASS (what libcheapconv.so loads on sm_80/sm_90 GPUs where the build had nvcc).</summary>
    public const string NvccFatbin = "nvcc-fatbin";
}

/// <summary>
/// One production kernel compiled for one architecture by one build: the resources the assembler gave it, the
/// occupancy they allow for the library's launch configuration, and its SASS instruction mix.
/// </summary>
/// <param name="SpillStoreBytes">clang-ptx: ptxas's "bytes spill stores"; nvcc-fatbin: bytes of the STL instructions in
/// the SASS (every local-memory store: spills or local arrays, so an upper bound; 0 exactly when there is none).</param>
/// <param name="SpillLoadBytes">Likewise for loads (LDL).</param>
/// <param name="StackBytes">Per-thread stack frame (ptxas's "stack frame", cuobjdump's STACK).</param>
/// <param name="LocalBytes">Local memory outside the stack (ptxas's "lmem", cuobjdump's LOCAL).</param>
/// <param name="SharedBytes">The kernel's static shared memory (ptxas's "smem"; for nvcc-fatbin cuobjdump's SHARED less the
/// 1 KB reserved window that sm_90 cubins include whenever a kernel uses shared memory).</param>
/// <param name="CubinSharedBytes">The cubin's shared section as cuobjdump's SHARED reports it.</param>
/// <param name="OccupancyGpu">The GPU whose SM limits <paramref name="Occupancy"/> is for (sm_90 → H100/H200, sm_80 → A100).</param>
internal sealed record KernelResourceRow(
    string Kernel, string Module, string Arch, string Build, int Registers, int SpillStoreBytes, int SpillLoadBytes, int StackBytes,
    int LocalBytes, int SharedBytes, int CubinSharedBytes, int ConstantBytes, KernelLaunchShape Launch, OccupancyResult Occupancy,
    string OccupancyGpu, SassMix Sass)
{
    /// <summary>Spill stores + spill loads.</summary>
    public int SpillBytes => SpillStoreBytes + SpillLoadBytes;
}

/// <summary>The static report: every production kernel × sm_80, sm_90 × the builds present, and notes on what is missing.</summary>
internal sealed record StaticReport(IReadOnlyList<KernelResourceRow> Rows, IReadOnlyList<string> Notes)
{
    /// <summary>The architectures the report covers (the fatbins' SASS targets).</summary>
    public static IReadOnlyList<string> Architectures { get; } = ["sm_80", "sm_90"];

    /// <summary>
    /// Runs ptxas on every PTX module for sm_80 and sm_90 (resources from <c>-v</c>, SASS of the cubin it writes through
    /// <c>cuobjdump -sass</c>) and cuobjdump on every fatbin (<c>-res-usage</c>, <c>-sass</c>). <paramref name="architectures"/>
    /// narrows the report to some of them; without <paramref name="sass"/> the SASS is not disassembled (the slow part:
    /// seconds instead of a minute) and the rows' <see cref="KernelResourceRow.Sass"/> is empty — enough for occupancy.
    /// </summary>
    public static StaticReport Build(CudaToolkit toolkit, KernelImages images, IReadOnlyList<string>? architectures = null, bool sass = true)
    {
        var archs = architectures ?? Architectures;
        ArgumentNullException.ThrowIfNull(toolkit);
        ArgumentNullException.ThrowIfNull(images);
        var notes = new List<string>();
        if (images.Ptx.Count == 0)
        {
            throw new ToolkitException("no PTX images to report on: the native build (make -C native) makes them");
        }

        if (images.Fatbins.Count == 0)
        {
            notes.Add($"no {KernelBuild.NvccFatbin} rows: the native build ran without nvcc, so there are no fatbins");
        }

        var directory = Directory.CreateTempSubdirectory("cheapconv-resources-");
        try
        {
            foreach (var (module, ptx) in images.Ptx)
            {
                File.WriteAllText(Path.Combine(directory.FullName, $"{module}.ptx"), ptx);
            }

            var jobs = images.Ptx.Keys.SelectMany(m => archs.Select(a => (Module: m, Arch: a, Fatbin: false)))
                .Concat(images.Fatbins.Keys.Select(m => (Module: m, Arch: "", Fatbin: true)))
                .ToList();
            var results = new List<KernelResourceRow>[jobs.Count];
            try
            {
                Parallel.For(0, jobs.Count, i =>
                {
                    var (module, arch, fatbin) = jobs[i];
                    results[i] = fatbin
                        ? FatbinRows(toolkit, module, images.Fatbins[module], directory.FullName, archs, sass)
                        : PtxRows(toolkit, module, arch, directory.FullName, sass);
                });
            }
            catch (AggregateException e) when (e.InnerExceptions[0] is ToolkitException first)
            {
                throw first;
            }

            var rows = results.SelectMany(r => r).OrderBy(r => r.Kernel, StringComparer.Ordinal).ThenBy(r => r.Arch, StringComparer.Ordinal)
                .ThenBy(r => r.Build, StringComparer.Ordinal).ToList();
            CheckCoverage(rows, images, archs);
            return new StaticReport(rows, notes);
        }
        finally
        {
            directory.Delete(recursive: true);
        }
    }

    private static List<KernelResourceRow> PtxRows(CudaToolkit toolkit, string module, string arch, string directory, bool withSass)
    {
        var ptxPath = Path.Combine(directory, $"{module}.ptx");
        var cubin = Path.Combine(directory, $"{module}.{arch}.cubin");
        var verbose = ToolkitOutput.ParsePtxas(toolkit.AssembleVerbose(ptxPath, arch, cubin));
        var cubinResources = ToolkitOutput.ParseResourceUsage(toolkit.ResourceUsage(cubin), arch).ToDictionary(r => r.Kernel);
        var sass = withSass ? ToolkitOutput.ParseSass(toolkit.Sass(cubin)) : null;
        return verbose.Select(k =>
        {
            var resources = cubinResources[k.Kernel];
            return Row(k.Kernel, module, arch, KernelBuild.ClangPtx, k.Registers, k.SpillStoreBytes, k.SpillLoadBytes, k.StackFrameBytes,
                k.LocalBytes, k.SharedBytes, resources.SharedBytes, resources.ConstantBytes, SassMix.Of(sass?[(k.Kernel, arch)] ?? []));
        }).ToList();
    }

    private static List<KernelResourceRow> FatbinRows(CudaToolkit toolkit, string module, byte[] fatbin, string directory,
        IReadOnlyList<string> architectures, bool withSass)
    {
        var path = Path.Combine(directory, $"{module}.fatbin");
        File.WriteAllBytes(path, fatbin);
        var sass = withSass ? ToolkitOutput.ParseSass(toolkit.Sass(path)) : null;
        return ToolkitOutput.ParseResourceUsage(toolkit.ResourceUsage(path))
            .Where(r => architectures.Contains(r.Arch))
            .Select(r =>
            {
                var mix = SassMix.Of(sass?[(r.Kernel, r.Arch)] ?? []);
                var shared = r.Arch == "sm_90" && r.SharedBytes > 0 ? r.SharedBytes - GpuModels.Sm90.ReservedSharedPerBlock : r.SharedBytes;
                return Row(r.Kernel, module, r.Arch, KernelBuild.NvccFatbin, r.Registers, mix.LocalStoreBytes, mix.LocalLoadBytes, r.StackBytes,
                    r.LocalBytes, shared, r.SharedBytes, r.ConstantBytes, mix);
            }).ToList();
    }

    private static KernelResourceRow Row(string kernel, string module, string arch, string build, int registers, int spillStores, int spillLoads,
        int stack, int local, int shared, int cubinShared, int constant, SassMix sass)
    {
        var launch = KernelLaunchShapes.Find(kernel)
            ?? throw new ToolkitException($"{kernel} (in {module}) has no launch configuration in KernelLaunchShapes: add the launcher's block size there");
        var gpu = GpuModels.ForArch(arch);
        var occupancy = Occupancy.Compute(gpu.Sm, registers, launch.ThreadsPerBlock, shared, launch.DynamicSharedBytes);
        var gpuName = arch == "sm_90" ? "H100/H200" : "A100";
        return new KernelResourceRow(kernel, module, arch, build, registers, spillStores, spillLoads, stack, local, shared, cubinShared, constant,
            launch, occupancy, gpuName, sass);
    }

    // Every kernel of the launch table in every architecture of every build present, and nothing else.
    private static void CheckCoverage(List<KernelResourceRow> rows, KernelImages images, IReadOnlyList<string> architectures)
    {
        var builds = new List<string> { KernelBuild.ClangPtx };
        if (images.Fatbins.Count > 0)
        {
            builds.Add(KernelBuild.NvccFatbin);
        }

        var missing = (from shape in KernelLaunchShapes.All
                       from arch in architectures
                       from build in builds
                       where !rows.Any(r => r.Kernel == shape.Kernel && r.Arch == arch && r.Build == build)
                       select $"{shape.Kernel} {arch} {build}").ToList();
        if (missing.Count > 0)
        {
            throw new ToolkitException($"the kernel images lack {string.Join(", ", missing)}: rebuild them (make -C native)");
        }
    }
}
