using System.Diagnostics;
using System.Globalization;
using CheapConv.Profiling;
using Xunit;

namespace CheapConv.Tests.Profiling;

/// <summary>The occupancy calculator: hand-computed cases, and NVIDIA's cuda_occupancy.h as the oracle on a sweep.</summary>
public class OccupancyTests
{
    private const string OracleHeader = "/usr/include/cuda_occupancy.h";

    [Theory]
    // registers, threads, static shared, dynamic shared → blocks, limiter. 256 threads = 8 warps; 64 warps per SM.
    [InlineData(32, 256, 0, 0, 8, "warps")]        // 32 regs × 32 lanes = 1024 per warp: 16 warps per sub-partition; warps bound at 8 blocks
    [InlineData(36, 256, 0, 0, 6, "registers")]    // 1152 → 1280 per warp: 12 warps per sub-partition, 48 per SM, 6 blocks of 8
    [InlineData(70, 256, 8320, 0, 3, "registers")] // 2240 → 2304: 7 per sub-partition, 28 per SM, 3 blocks (the nvcc GEMM)
    [InlineData(255, 256, 0, 0, 1, "registers")]   // 8160 → 8192: 2 per sub-partition, 8 per SM, 1 block
    [InlineData(256, 1024, 0, 0, 0, "registers")]  // 8192 × 32 warps = 262144 registers > 65536 per block
    [InlineData(16, 32, 0, 0, 32, "blocks")]       // one warp per block: the 32-block limit
    [InlineData(16, 256, 0, 102400, 2, "shared")]  // 100 KB + 1 KB reserve: 228 KB holds 2
    [InlineData(16, 256, 0, 232448, 1, "shared")]  // 227 KB (the opt-in maximum) + 1 KB: 1
    [InlineData(16, 256, 0, 232449, 0, "shared")]  // one byte more than a block may have
    [InlineData(16, 1024, 0, 0, 2, "warps")]
    public void Compute_OnSm90_MatchesHandCount(int registers, int threads, int staticShared, int dynamicShared, int blocks, string limiter)
    {
        var result = Occupancy.Compute(GpuModels.Sm90, registers, threads, staticShared, dynamicShared);
        Assert.Equal(blocks, result.BlocksPerSm);
        Assert.Equal(limiter, result.Limiter);
        Assert.Equal(blocks * ((threads + 31) / 32), result.WarpsPerSm);
        Assert.Equal(result.WarpsPerSm / 64.0, result.Fraction);
    }

    [Fact]
    public void Compute_RoundsSharedToTheUnitAndAddsTheReserve()
    {
        var result = Occupancy.Compute(GpuModels.Sm90, 32, 256, 8320, 0);
        Assert.Equal(9344, result.SharedPerBlock); // 8320 + 1024, a multiple of 128 already
        Assert.Equal(9472, Occupancy.Compute(GpuModels.Sm90, 32, 256, 8321, 0).SharedPerBlock);
        Assert.Equal(8 * 1280, Occupancy.Compute(GpuModels.Sm90, 36, 256, 0, 0).RegistersPerBlock);
    }

    [Fact]
    public void Compute_OnSm80_HasLessSharedMemoryPerSm()
    {
        // 100 KB + 1 KB per block: sm_90's 228 KB holds 2, sm_80's 164 KB only 1.
        Assert.Equal(2, Occupancy.Compute(GpuModels.Sm90, 16, 128, 0, 100 * 1024).BlocksPerSm);
        Assert.Equal(1, Occupancy.Compute(GpuModels.Sm80, 16, 128, 0, 100 * 1024).BlocksPerSm);
    }

    [SkippableFact]
    public void Compute_AgreesWithCudaOccupancyHeaderOnASweep()
    {
        var oracle = BuildOracle();
        var cases = new List<(SmLimits Sm, int Registers, int Threads, int Static, int Dynamic)>();
        foreach (var sm in new[] { GpuModels.Sm80, GpuModels.Sm90 })
        {
            foreach (var registers in new[] { 0, 1, 8, 16, 24, 31, 32, 33, 40, 48, 56, 64, 72, 80, 96, 128, 168, 200, 255, 256 })
            {
                foreach (var threads in new[] { 1, 32, 33, 64, 96, 128, 192, 256, 384, 512, 640, 768, 1024, 1025 })
                {
                    foreach (var (staticShared, dynamicShared) in new[] { (0, 0), (128, 0), (8320, 0), (0, 16384), (40000, 9000), (0, 100 * 1024), (0, 150 * 1024), (0, 200 * 1024), (0, 227 * 1024) })
                    {
                        cases.Add((sm, registers, threads, staticShared, dynamicShared));
                    }
                }
            }
        }

        var input = string.Join('\n', cases.Select(c => Invariant($"{(c.Sm.Arch == "sm_90" ? 90 : 80)} {c.Registers} {c.Threads} {c.Static} {c.Dynamic}")));
        var expected = Run(oracle, input).Split('\n', StringSplitOptions.RemoveEmptyEntries).Select(l => int.Parse(l, CultureInfo.InvariantCulture)).ToList();
        Assert.Equal(cases.Count, expected.Count);
        var mismatches = cases.Zip(expected)
            .Where(p => p.Second >= 0) // the header refuses a few inputs outright (threads > 1024); Compute gives 0 blocks there
            .Select(p => (Case: p.First, Expected: p.Second, Actual: Occupancy.Compute(p.First.Sm, p.First.Registers, p.First.Threads, p.First.Static, p.First.Dynamic).BlocksPerSm))
            .Where(p => p.Expected != p.Actual)
            .Take(10)
            .Select(p => $"{p.Case.Sm.Arch} regs {p.Case.Registers} threads {p.Case.Threads} shared {p.Case.Static}+{p.Case.Dynamic}: header {p.Expected}, ours {p.Actual}")
            .ToList();
        Assert.True(mismatches.Count == 0, string.Join("\n", mismatches));
    }

    private static string BuildOracle()
    {
        Skip.IfNot(File.Exists(OracleHeader), $"{OracleHeader} not found: {CudaToolkit.InstallHint}");
        var directory = Directory.CreateTempSubdirectory("cheapconv-occupancy-");
        var binary = Path.Combine(directory.FullName, "occupancy_oracle");
        var source = Path.Combine(TestPaths.RepositoryRoot, "tests", "CheapConv.Tests", "Profiling", "occupancy_oracle.cpp");
        var start = new ProcessStartInfo("g++") { RedirectStandardError = true, RedirectStandardOutput = true };
        foreach (var argument in new[] { "-std=c++17", "-O1", "-o", binary, source })
        {
            start.ArgumentList.Add(argument);
        }

        using var process = Process.Start(start)!;
        var errors = process.StandardError.ReadToEnd();
        process.WaitForExit();
        Assert.True(process.ExitCode == 0, $"g++ failed on {source}: {errors}");
        return binary;
    }

    private static string Run(string program, string input)
    {
        var start = new ProcessStartInfo(program) { RedirectStandardInput = true, RedirectStandardOutput = true };
        using var process = Process.Start(start)!;
        process.StandardInput.Write(input + "\n");
        process.StandardInput.Close();
        var output = process.StandardOutput.ReadToEnd();
        process.WaitForExit();
        Assert.Equal(0, process.ExitCode);
        return output;
    }

    private static string Invariant(FormattableString text) => text.ToString(CultureInfo.InvariantCulture);
}
