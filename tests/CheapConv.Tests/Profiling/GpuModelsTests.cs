using System.Text.RegularExpressions;
using CheapConv.Profiling;
using Xunit;

namespace CheapConv.Tests.Profiling;

/// <summary>The GPU models agree with themselves and with DESIGN.md; the launch table with the launchers it cites.</summary>
public partial class GpuModelsTests
{
    [Theory]
    [InlineData("h100", 128)] // FP32 lanes per SM: 128 on GH100 [H100-WP], 64 on GA100 [A100-WP]
    [InlineData("h200", 128)]
    [InlineData("a100", 64)]
    public void Fp32Peak_IsTheSmsTimesTheLanesTimesTwoTimesTheClock(string key, int lanesPerSm)
    {
        var gpu = GpuModels.Find(key)!;
        var peak = gpu.SmCount * lanesPerSm * 2.0 * gpu.ClockHz; // an FMA is two FLOPs
        Assert.InRange(gpu.Fp32FlopsPerSecond / peak, 0.98, 1.01);
    }

    [Fact]
    public void H100_HasTheDesignDocumentsNumbers()
    {
        var h100 = GpuModels.H100Sxm;
        Assert.Equal(132, h100.SmCount);
        Assert.Equal(3.35e12, h100.DramBytesPerSecond);
        Assert.Equal(67e12, h100.Fp32FlopsPerSecond);
        Assert.InRange(h100.Tf32FlopsPerSecond, 490e12, 500e12);
        Assert.Equal(228 * 1024, h100.Sm.SharedPerSm);
        Assert.Equal(227 * 1024, h100.Sm.SharedPerBlockOptIn);
    }

    [Fact]
    public void H200_IsH100WithHbm3eBandwidth()
    {
        var h200 = GpuModels.H200;
        Assert.Equal(4.8e12, h200.DramBytesPerSecond);
        Assert.Equal(GpuModels.H100Sxm with { Key = h200.Key, Name = h200.Name, DramBytesPerSecond = h200.DramBytesPerSecond }, h200);
    }

    [Fact]
    public void Find_IgnoresCaseAndReturnsNullForAnUnknownGpu()
    {
        Assert.Same(GpuModels.H200, GpuModels.Find("H200"));
        Assert.Null(GpuModels.Find("b200"));
        Assert.Same(GpuModels.H100Sxm, GpuModels.ForArch("sm_90"));
        Assert.Throws<ArgumentException>(() => GpuModels.ForArch("sm_70"));
    }

    [Fact]
    public void LaunchShapes_ListEveryKernelOfKernelsHWithItsModule()
    {
        var header = File.ReadAllText(TestPaths.Native("include", "cheapconv", "kernels.h"));
        var declared = KernelEntry().Matches(header).Select(m => (Module: m.Groups[1].Value, Kernel: $"cc_{m.Groups[2].Value}_kernel")).Order().ToList();
        Assert.NotEmpty(declared);
        Assert.Equal(declared, KernelLaunchShapes.All.Select(s => (s.Module, s.Kernel)).Order().ToList());
    }

    [Fact]
    public void LaunchShapes_CiteLinesThatStillHoldTheirText()
    {
        foreach (var shape in KernelLaunchShapes.All)
        {
            var (file, line) = (shape.Source[..shape.Source.LastIndexOf(':')], int.Parse(shape.Source[(shape.Source.LastIndexOf(':') + 1)..], System.Globalization.CultureInfo.InvariantCulture));
            var lines = File.ReadAllLines(Path.Combine(TestPaths.RepositoryRoot, file));
            Assert.True(line <= lines.Length && lines[line - 1].Contains(shape.SourceText, StringComparison.Ordinal),
                $"{shape.Kernel}: {shape.Source} no longer holds '{shape.SourceText}'");
            Assert.Contains(shape.ThreadsPerBlock.ToString(System.Globalization.CultureInfo.InvariantCulture), shape.SourceText);
        }
    }

    [Fact]
    public void LaunchShapes_OnlyTheTensorCoreLauncherAsksForDynamicSharedMemory()
    {
        // Geometry::shared_bytes defaults to 0; a launcher that sets it must also change the table. The one that does is
        // the tensor-core variant's (its pipeline's stages, per block tile), and the table lists those amounts for its
        // kernels only: the wide and flat tiles' for their kernels, the square tile's for the others. The fused backward's
        // geometry (geometry.h) takes the larger of its two passes' amounts: the square tile's again, or 0 for the tiled pair.
        // The input batch norm's weight gradients add their parameter table to the square tile's (`+=`, in the launcher).
        var launchers = Directory.GetFiles(TestPaths.Native("launch"), "*.cpp").Concat(Directory.GetFiles(TestPaths.Native("launch"), "*.h"))
            .Where(f => !f.EndsWith("runtime.h", StringComparison.Ordinal) && !f.Contains("_runtime.cpp", StringComparison.Ordinal) && !f.EndsWith("launch.cpp", StringComparison.Ordinal));
        var assignments = launchers.SelectMany(f => File.ReadAllLines(f).Select(l => (File: Path.GetFileName(f), Line: l)))
            .Where(l => SharedAssignment().IsMatch(l.Line) && !l.Line.Contains("= 0;", StringComparison.Ordinal))
            .Select(l => $"{l.File}: {l.Line.Trim()}").ToList();
        Assert.Equal(["conv_implicit_gemm.cpp: geometry->shared_bytes = tile.shared_bytes;",
            "geometry.h: fused->shared_bytes = weight.shared_bytes > data.shared_bytes ? weight.shared_bytes : data.shared_bytes;"], assignments);
        Assert.All(KernelLaunchShapes.All, s => Assert.Equal(
            s.Kernel switch
            {
                "cc_implicit_gemm_forward_3x3_wide_kernel" => 46080,
                "cc_implicit_gemm_forward_3x3_flat_kernel" => 38400,
                "cc_implicit_gemm_backward_weight_1x1_input_bn_kernel" or "cc_implicit_gemm_backward_1x1_input_bn_kernel" => 30720 + 1024,
                _ => s.Module == "implicit_gemm" ? 30720 : 0,
            }, s.DynamicSharedBytes));
    }

    [GeneratedRegex(@"^\s*X\((\w+),\s*(\w+)\)", RegexOptions.Multiline)]
    private static partial Regex KernelEntry();

    [GeneratedRegex(@"shared_bytes\s*=")]
    private static partial Regex SharedAssignment();
}
