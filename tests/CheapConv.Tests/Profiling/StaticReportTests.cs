using System.Diagnostics;
using System.Globalization;
using System.Text.Json.Nodes;
using System.Text.RegularExpressions;
using CheapConv.Profiling;
using Xunit;

namespace CheapConv.Tests.Profiling;

/// <summary>
/// <c>cheapconv profile --resources --json</c>, run once, read back. Where the CUDA toolkit is installed (CI installs it
/// and sets CHEAPCONV_REQUIRE_CUDA_TOOLKIT=1 so these cannot skip there), its numbers must equal what ptxas and cuobjdump
/// print for the native build's own PTX and fatbins, and no production kernel may spill or use local memory.
/// </summary>
public sealed class StaticReportFixture
{
    public const string RequireVariable = "CHEAPCONV_REQUIRE_CUDA_TOOLKIT";

    public StaticReportFixture()
    {
        if (!CudaToolkit.IsAvailable())
        {
            SkipReason = $"ptxas/cuobjdump not installed: {CudaToolkit.InstallHint}";
            return;
        }

        var (code, output, error) = Cli.CliRun.Run("profile", "--resources", "--json");
        Assert.True(code == 0, $"profile --resources --json exited {code}: {error}");
        Rows = JsonNode.Parse(output)!.AsArray().Select(r => r!.AsObject()).ToList();
    }

    /// <summary>Why the toolkit tests cannot run here; null when they can.</summary>
    public string? SkipReason { get; }

    public IReadOnlyList<JsonObject> Rows { get; } = [];

    public void SkipWithoutToolkit()
    {
        if (SkipReason is not null && Environment.GetEnvironmentVariable(RequireVariable) == "1")
        {
            Assert.Fail($"{RequireVariable}=1 but {SkipReason}");
        }

        Skip.If(SkipReason is not null, SkipReason);
    }

    public JsonObject Row(string kernel, string arch, string build) =>
        Rows.Single(r => (string)r["kernel"]! == kernel && (string)r["arch"]! == arch && (string)r["build"]! == build);
}

public sealed partial class StaticReportTests(StaticReportFixture report) : IClassFixture<StaticReportFixture>
{
    private static readonly string[] Architectures = ["sm_80", "sm_90"];

    [SkippableFact]
    public void Resources_HasEveryKernelForEachArchitectureAndBuild()
    {
        report.SkipWithoutToolkit();
        var builds = Directory.Exists(TestPaths.Native("build", "fatbin")) ? new[] { KernelBuild.ClangPtx, KernelBuild.NvccFatbin } : [KernelBuild.ClangPtx];
        var expected = (from s in KernelLaunchShapes.All from a in Architectures from b in builds select (s.Kernel, a, b)).Order().ToList();
        var actual = report.Rows.Select(r => ((string)r["kernel"]!, (string)r["arch"]!, (string)r["build"]!)).Order().ToList();
        Assert.Equal(expected, actual);
    }

    [SkippableFact]
    public void Resources_NoProductionKernelSpillsOrUsesLocalMemory()
    {
        report.SkipWithoutToolkit();
        var offenders = report.Rows
            .Where(r => (int)r["spill_bytes"]! != 0 || (int)r["stack_bytes"]! != 0 || (int)r["local_bytes"]! != 0
                || (int)r["sass"]!["local_store_bytes"]! != 0 || (int)r["sass"]!["local_load_bytes"]! != 0)
            .Select(r => $"{r["kernel"]} {r["arch"]} {r["build"]}: spill {r["spill_bytes"]} B, stack {r["stack_bytes"]} B, local {r["local_bytes"]} B")
            .ToList();
        Assert.True(offenders.Count == 0, "kernels spill or use local memory:\n" + string.Join("\n", offenders));
    }

    [SkippableFact]
    public void Resources_ClangRowsEqualWhatPtxasPrintsForTheBuildsPtx()
    {
        report.SkipWithoutToolkit();
        var toolkit = CudaToolkit.Find();
        foreach (var ptx in Directory.GetFiles(TestPaths.Native("build", "ptx"), "*.ptx"))
        {
            foreach (var arch in Architectures)
            {
                var text = RunTool(toolkit.Ptxas, "-arch=" + arch, "-v", "-o", "/dev/null", ptx);
                foreach (Match entry in PtxasEntry().Matches(text))
                {
                    var row = report.Row(entry.Groups["kernel"].Value, arch, KernelBuild.ClangPtx);
                    var what = $"{entry.Groups["kernel"].Value} {arch}";
                    Assert.True(Int(entry, "registers") == (int)row["registers"]!, $"{what}: registers");
                    Assert.True(Int(entry, "stores") + Int(entry, "loads") == (int)row["spill_bytes"]!, $"{what}: spill bytes");
                    Assert.True(Int(entry, "stack") == (int)row["stack_bytes"]!, $"{what}: stack frame");
                    Assert.True(Int(entry, "smem") == (int)row["shared_bytes"]!, $"{what}: shared bytes");
                }
            }
        }
    }

    [SkippableFact]
    public void Resources_Sm90ClangRowsEqualTheBuildsOwnPtxasReports()
    {
        report.SkipWithoutToolkit();
        // native/Makefile's ptxas-check writes build/ptxas/<module>.sm_90.txt on every build.
        var reports = Directory.GetFiles(TestPaths.Native("build", "ptxas"), "*.sm_90.txt");
        Assert.NotEmpty(reports);
        var kernels = reports.SelectMany(f => PtxasEntry().Matches(File.ReadAllText(f))).ToList();
        Assert.Equal(KernelLaunchShapes.All.Count, kernels.Count);
        foreach (var entry in kernels)
        {
            var row = report.Row(entry.Groups["kernel"].Value, "sm_90", KernelBuild.ClangPtx);
            Assert.Equal(Int(entry, "registers"), (int)row["registers"]!);
            Assert.Equal(Int(entry, "smem"), (int)row["shared_bytes"]!);
        }
    }

    [SkippableFact]
    public void Resources_NvccRowsEqualWhatCuobjdumpPrintsForTheBuildsFatbins()
    {
        report.SkipWithoutToolkit();
        var fatbins = Directory.Exists(TestPaths.Native("build", "fatbin")) ? Directory.GetFiles(TestPaths.Native("build", "fatbin"), "*.fatbin") : [];
        Skip.If(fatbins.Length == 0, "the native build made no fatbins (no nvcc)");
        var toolkit = CudaToolkit.Find();
        foreach (var fatbin in fatbins)
        {
            // One "Fatbin elf code" section per architecture, each naming it ("arch = sm_90") before its functions.
            foreach (var section in RunTool(toolkit.Cuobjdump, "-res-usage", fatbin).Split("Fatbin elf code:").Skip(1))
            {
                var arch = ArchLine().Match(section).Groups[1].Value;
                foreach (Match m in ResourceBlock().Matches(section))
                {
                    var row = report.Row(m.Groups["kernel"].Value, arch, KernelBuild.NvccFatbin);
                    var what = $"{m.Groups["kernel"].Value} {arch}";
                    Assert.True(Int(m, "reg") == (int)row["registers"]!, $"{what}: registers");
                    Assert.True(Int(m, "stack") == (int)row["stack_bytes"]!, $"{what}: stack");
                    Assert.True(Int(m, "local") == (int)row["local_bytes"]!, $"{what}: local");
                    Assert.True(Int(m, "shared") == (int)row["cubin_shared_bytes"]!, $"{what}: shared");
                }
            }
        }
    }

    [SkippableFact]
    public void Resources_Sm90CubinsHoldTheKernelsSharedMemoryPlusAReserved1KbWindow()
    {
        // The fact behind nvcc-fatbin's shared_bytes: for the same cubin, cuobjdump's SHARED is ptxas's smem + 1024 on
        // sm_90 whenever the kernel uses shared memory (static, or only dynamic: the tensor-core kernels), and equal to
        // it on sm_80.
        report.SkipWithoutToolkit();
        foreach (var row in report.Rows.Where(r => (string)r["build"]! == KernelBuild.ClangPtx))
        {
            var shared = (int)row["shared_bytes"]!;
            var usesShared = shared > 0 || KernelLaunchShapes.Find((string)row["kernel"]!)!.DynamicSharedBytes > 0;
            var expected = (string)row["arch"]! == "sm_90" && usesShared ? shared + 1024 : shared;
            Assert.True(expected == (int)row["cubin_shared_bytes"]!, $"{row["kernel"]} {row["arch"]}: smem {shared}, cubin {row["cubin_shared_bytes"]}");
        }
    }

    [SkippableFact]
    public void Resources_JsonHasTheDocumentedKeysAndTypes()
    {
        report.SkipWithoutToolkit();
        foreach (var row in report.Rows)
        {
            foreach (var key in new[] { "kernel", "module", "arch", "build", "occupancy_limiter", "occupancy_gpu", "launch_source" })
            {
                Assert.Equal(System.Text.Json.JsonValueKind.String, row[key]!.GetValueKind());
            }

            foreach (var key in new[] { "registers", "spill_bytes", "stack_bytes", "local_bytes", "shared_bytes", "threads_per_block", "blocks_per_sm", "warps_per_sm" })
            {
                Assert.True(row[key]!.GetValue<int>() >= 0, key);
            }

            Assert.InRange(row["occupancy"]!.GetValue<double>(), 0.0, 1.0);
            Assert.Equal(row["warps_per_sm"]!.GetValue<int>() / 64.0, row["occupancy"]!.GetValue<double>());
            Assert.True(row["sass"]!["total"]!.GetValue<int>() > 0);
        }
    }

    [SkippableFact]
    public void Resources_OccupancyIsTheCalculatorsForTheLaunchShape()
    {
        report.SkipWithoutToolkit();
        foreach (var row in report.Rows)
        {
            var shape = KernelLaunchShapes.Find((string)row["kernel"]!)!;
            var sm = (string)row["arch"]! == "sm_90" ? GpuModels.Sm90 : GpuModels.Sm80;
            var expected = Occupancy.Compute(sm, (int)row["registers"]!, shape.ThreadsPerBlock, (int)row["shared_bytes"]!, shape.DynamicSharedBytes);
            Assert.Equal(expected.BlocksPerSm, (int)row["blocks_per_sm"]!);
            Assert.Equal(shape.ThreadsPerBlock, (int)row["threads_per_block"]!);
        }
    }

    private static int Int(Match match, string group) =>
        match.Groups[group].Success ? int.Parse(match.Groups[group].Value, CultureInfo.InvariantCulture) : 0;

    private static string RunTool(string program, params string[] arguments)
    {
        var start = new ProcessStartInfo(program) { RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var argument in arguments)
        {
            start.ArgumentList.Add(argument);
        }

        using var process = Process.Start(start)!;
        var error = process.StandardError.ReadToEndAsync();
        var output = process.StandardOutput.ReadToEnd();
        process.WaitForExit();
        Assert.True(process.ExitCode == 0, $"{program} {string.Join(' ', arguments)}: {error.Result}");
        return output + error.Result;
    }

    // An entry of a ptxas -v report and a function of a cuobjdump -res-usage listing, read independently of the library.
    [GeneratedRegex(@"Compiling entry function '(?<kernel>\w+)'.*?\n.*?\n\s*(?<stack>\d+) bytes stack frame, (?<stores>\d+) bytes spill stores, (?<loads>\d+) bytes spill loads\n.*?Used (?<registers>\d+) registers(?:, (?<smem>\d+) bytes smem)?")]
    private static partial Regex PtxasEntry();

    [GeneratedRegex(@"Function (?<kernel>\w+):\s*\n\s*REG:(?<reg>\d+) STACK:(?<stack>\d+) SHARED:(?<shared>\d+) LOCAL:(?<local>\d+)")]
    private static partial Regex ResourceBlock();

    [GeneratedRegex(@"arch = (sm_\d+)")]
    private static partial Regex ArchLine();
}
