using System.Globalization;
using CheapConv.Interop;
using CheapConv.Profiling;

namespace CheapConv.Cli.Commands;

/// <summary>The Markdown tables of <c>profile</c>'s reports.</summary>
internal static class ProfileTables
{
    /// <summary><c>profile --resources</c>: one row per kernel × architecture × build, then what the columns mean.</summary>
    public static void Resources(StaticReport report, TextWriter output)
    {
        ArgumentNullException.ThrowIfNull(report);
        ArgumentNullException.ThrowIfNull(output);
        output.WriteLine("| kernel | arch | build | regs | spill B | stack B | smem B | block | blocks/SM | occupancy | limiter | FFMA | HMMA | LDG 32/64/128 | STG 32/64/128 | LDS/STS | SHFL | branches | total |");
        output.WriteLine("|---|---|---|---:|---:|---:|---:|---:|---:|---:|---|---:|---:|---|---|---|---:|---:|---:|");
        foreach (var r in report.Rows)
        {
            var s = r.Sass;
            output.WriteLine(Invariant(
                $"| {Short(r.Kernel)} | {r.Arch} | {r.Build} | {r.Registers} | {r.SpillBytes} | {r.StackBytes + r.LocalBytes} | {r.SharedBytes} | {r.Launch.ThreadsPerBlock} | {r.Occupancy.BlocksPerSm} | {r.Occupancy.Fraction * 100:F1}% | {r.Occupancy.Limiter} | {s.Ffma} | {s.Hmma} | {s.Ldg}/{s.Ldg64}/{s.Ldg128} | {s.Stg}/{s.Stg64}/{s.Stg128} | {s.Lds}/{s.Sts} | {s.Shfl} | {s.Branches} | {s.Total} |"));
        }

        output.WriteLine();
        output.WriteLine("kernel: cc_<name>_kernel. build: clang-ptx = clang-14's PTX assembled by the toolkit's ptxas (resources from ptxas -v),");
        output.WriteLine("nvcc-fatbin = nvcc's SASS (cuobjdump -res-usage). spill B: spill stores + loads (nvcc-fatbin: bytes of STL/LDL in the SASS).");
        output.WriteLine("stack B: stack frame + local memory. smem B: static shared memory per block. occupancy: theoretical, for the");
        output.WriteLine("launcher's block size and dynamic shared memory (all 256 threads, 0 B), on H100/H200 for sm_90 and A100 for sm_80,");
        output.WriteLine("by the rules of cuda_occupancy.h; limiter: what bounds it. SASS columns: static instruction counts.");
        foreach (var note in report.Notes)
        {
            output.WriteLine($"note: {note}");
        }
    }

    /// <summary>The header of <c>profile --catalogue</c>'s table: the model's settings, then the column names.</summary>
    public static void CatalogueHeader(ProfileSettings settings, string catalogue, string algorithm, KernelPrecision precision, TextWriter output)
    {
        ArgumentNullException.ThrowIfNull(settings);
        ArgumentNullException.ThrowIfNull(output);
        Settings(settings, output);
        output.WriteLine(Invariant($"catalogue {catalogue}; kernels: --algo {algorithm}, --precision {precision.ToString().ToLowerInvariant()}"));
        output.WriteLine();
        output.WriteLine("| N C H W K R S stride pad groups | pass | kernels | modelled µs | roofline µs | % of roofline | bound | sectors/request | bank conflicts | main load |");
        output.WriteLine("|---|---|---|---:|---:|---:|---|---:|---:|---|");
    }

    /// <summary>One row of <c>profile --catalogue</c>'s table, written as soon as the pass is profiled.</summary>
    public static void CatalogueRow(PassProfile pass, TextWriter output)
    {
        ArgumentNullException.ThrowIfNull(pass);
        ArgumentNullException.ThrowIfNull(output);
        var p = pass.Problem;
        var load = pass.Main.Launch.MainLoad;
        output.WriteLine(Invariant(
            $"| {p.N} {p.C} {p.H} {p.W} {p.K} {p.R} {p.S} {p.StrideH} {p.PadH} {p.Groups} | {pass.Pass} | {string.Join("+", pass.Kernels.Select(Short))} | {pass.ModelledUs:F1} | {pass.RooflineUs:F1} | {pass.RooflineFraction * 100:F1}% | {pass.Bound} | {pass.SectorsPerRequest:F1} | {pass.BankConflicts:F0} | {(load is null ? "—" : Invariant($"{load.Where} ({load.SectorsPerRequest:F1})"))} |"));
    }

    /// <summary>The totals under <c>profile --catalogue</c>'s table, per pass and per bound.</summary>
    public static void CatalogueFooter(IReadOnlyList<PassProfile> passes, IReadOnlyList<UnsupportedPass> unsupported, TextWriter output)
    {
        ArgumentNullException.ThrowIfNull(passes);
        ArgumentNullException.ThrowIfNull(unsupported);
        ArgumentNullException.ThrowIfNull(output);
        output.WriteLine();
        if (unsupported.Count > 0)
        {
            output.WriteLine(Invariant($"not implemented by these kernels ({unsupported.Count} passes, left out of the sums below):"));
            foreach (var skipped in unsupported)
            {
                var p = skipped.Problem;
                output.WriteLine(Invariant($"- {p.N} {p.C} {p.H} {p.W} {p.K} {p.R} {p.S} {p.StrideH} {p.PadH} {p.Groups} {skipped.Pass}: {skipped.Reason}"));
            }

            output.WriteLine();
        }

        foreach (var group in passes.GroupBy(p => p.Pass))
        {
            var modelled = group.Sum(p => p.ModelledUs);
            var roofline = group.Sum(p => p.RooflineUs);
            var bounds = string.Join(", ", group.GroupBy(p => p.Bound).OrderByDescending(b => b.Count()).Select(b => $"{b.Key} {b.Count()}"));
            output.WriteLine(Invariant($"{group.Key}: Σ modelled {modelled:F1} µs, Σ roofline {roofline:F1} µs ({roofline / modelled * 100:F1}%); bounds: {bounds}"));
        }

        output.WriteLine();
        output.WriteLine("modelled µs: the slowest of DRAM (distinct sectors, L2 flushed), L2 sectors, shared wavefronts and fp32 (tf32 on tensor");
        output.WriteLine("cores) issue at the kernel's occupancy, plus 2 µs per launch, summed over the pass's launches. roofline µs: max(compulsory");
        output.WriteLine("bytes / DRAM bandwidth, 2·MACs / peak), the fp32 peak or, for a pass on tensor cores, the tf32 one; compulsory = the");
        output.WriteLine("inputs read once (of x, the part the filter windows cover) and the");
        output.WriteLine("output written once. sectors/request: the main launch's global loads (4 = coalesced fp32). bank conflicts: shared");
        output.WriteLine("wavefronts beyond the ideal. main load: the global load with the most sectors (its sectors/request).");
    }

    /// <summary><c>profile --step</c>: the totals, then one row per kernel.</summary>
    public static void Step(StepProfile step, ProfileSettings settings, TextWriter output)
    {
        ArgumentNullException.ThrowIfNull(step);
        ArgumentNullException.ThrowIfNull(settings);
        ArgumentNullException.ThrowIfNull(output);
        output.WriteLine(step.Description);
        Settings(settings, output);
        output.WriteLine(Invariant(
            $"launches {step.Launches.Count}, host syncs {step.HostWaits.Count} ({string.Join(", ", step.HostWaits.GroupBy(w => w).Select(g => $"{g.Key} ×{g.Count()}"))})"));
        output.WriteLine(Invariant(
            $"modelled {step.ModelledUs:F1} µs (of which launch cost {step.LaunchCostUs:F1} µs), roofline {step.RooflineUs:F1} µs ({step.RooflineUs / step.ModelledUs * 100:F1}%)"));
        output.WriteLine();
        output.WriteLine("| kernel | launches | modelled µs | share | roofline µs | % of roofline | bound |");
        output.WriteLine("|---|---:|---:|---:|---:|---:|---|");
        foreach (var k in step.Kernels)
        {
            output.WriteLine(Invariant(
                $"| {Short(k.Kernel)} | {k.Count} | {k.ModelledUs:F1} | {k.ModelledUs / step.ModelledUs * 100:F1}% | {k.RooflineUs:F1} | {k.RooflineFraction * 100:F1}% | {k.Bound} |"));
        }
    }

    private static void Settings(ProfileSettings settings, TextWriter output)
    {
        var g = settings.Gpu;
        output.WriteLine(Invariant(
            $"model: {g.Name}: {g.SmCount} SMs at {g.ClockHz / 1e9:F2} GHz, DRAM {g.DramBytesPerSecond / 1e12:F2} TB/s, L2 {g.L2BytesPerSecond / 1e12:F1} TB/s, fp32 {g.Fp32FlopsPerSecond / 1e12:F0} TFLOP/s, {g.LaunchSeconds * 1e6:F0} µs per launch"));
        output.WriteLine(Invariant(
            $"occupancy: {settings.Occupancies.Source}; {(settings.SampleBlocks == 0 ? "every block recorded" : $"{settings.SampleBlocks} blocks recorded per launch, counts scaled to the grid")}"));
    }

    private static string Short(string kernel) =>
        kernel.StartsWith("cc_", StringComparison.Ordinal) && kernel.EndsWith("_kernel", StringComparison.Ordinal) ? kernel[3..^7] : kernel;

    private static string Invariant(FormattableString text) => text.ToString(CultureInfo.InvariantCulture);
}
