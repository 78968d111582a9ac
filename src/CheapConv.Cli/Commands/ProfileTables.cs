using System.Globalization;
using CheapConv.Profiling;

namespace CheapConv.Cli.Commands;

/// <summary>The Markdown tables of <c>profile</c>'s reports.</summary>
public static class ProfileTables
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

    private static string Short(string kernel) =>
        kernel.StartsWith("cc_", StringComparison.Ordinal) && kernel.EndsWith("_kernel", StringComparison.Ordinal) ? kernel[3..^7] : kernel;

    private static string Invariant(FormattableString text) => text.ToString(CultureInfo.InvariantCulture);
}
