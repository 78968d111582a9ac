using System.Runtime.InteropServices;
using CheapConv.Backends;
using CheapConv.Interop;
using CheapConv.Problems;
using CheapConv.Verification;
using Xunit;

namespace CheapConv.Tests.Emulator;

/// <summary>
/// The implicit GEMM's forward pass on its wide and flat block tiles (cc_implicit_gemm_forward_3x3_wide_kernel, 64×128;
/// _flat_, 32×128) over every 3×3 problem of the shape catalogue the tensor-core kernels are made for, real and rigorous
/// (odd sizes, grouped): inputs exact in tf32 against the fp32 bound of the float64 reference, and bit for bit the square
/// tile's kernel (each output's sum runs over the same mma steps in the same order whichever warp and block hold it). The
/// launcher gives those tiles to batch-128 grids only, so the test library's cc_emu_test_conv_forward_on_tile plans each
/// tile explicitly.
/// </summary>
public sealed unsafe class EmulatedForwardTileTests(FaultyKernelFixture fixture) : IClassFixture<FaultyKernelFixture>
{
    public static TheoryData<string> Sources() =>
        TestCatalogue.SourcesWhere(p => p.R == 3 && p.S == 3 && p.ChannelsPerGroup >= 8 && p.FiltersPerGroup >= 8);

    private enum Tile
    {
        Square = 0,
        Wide = 1,
        Flat = 2,
    }

    [Theory]
    [MemberData(nameof(Sources))]
    public void WideAndFlatTiles_MeetTheFp32BoundAndMatchTheSquareTileBitForBit(string source)
    {
        var problem = TestCatalogue.Scaled(source);
        var inputs = ConvInputs.RandomTf32Exact(problem, seed: 5);
        var square = ForwardOnTile(problem, inputs, Tile.Square);

        var reference = new double[problem.OutputElements];
        var scale = new double[problem.OutputElements];
        CpuBackend.Conv2dForward(problem, [.. inputs.X.Select(v => (double)v)], [.. inputs.W.Select(v => (double)v)], reference);
        CpuBackend.Conv2dForward(problem, [.. inputs.X.Select(v => (double)Math.Abs(v))], [.. inputs.W.Select(v => (double)Math.Abs(v))], scale);
        foreach (var tile in new[] { Tile.Wide, Tile.Flat })
        {
            var y = ForwardOnTile(problem, inputs, tile);
            var comparison = ConvCheck.ComparePass("forward", y, reference, scale, ConvCheck.RelativeTolerance(problem.ChannelsPerGroup * 9L));
            Assert.True(comparison.Passed, $"{problem}: {tile} tile against the reference: {comparison.Failures} of {comparison.Elements} beyond " +
                $"{comparison.Tolerance:0.00e+00}:\n  {string.Join("\n  ", comparison.FirstFailures)}");
            var first = Enumerable.Range(0, y.Length).FirstOrDefault(i => BitConverter.SingleToInt32Bits(y[i]) != BitConverter.SingleToInt32Bits(square[i]), -1);
            Assert.True(first < 0, $"{problem}: {tile} tile differs from the square tile first at y[{first}]: {(first < 0 ? 0 : y[first])} vs {(first < 0 ? 0 : square[first])}");
        }

        Assert.Empty(fixture.Device.TakeWarnings());
    }

    private float[] ForwardOnTile(ConvProblem problem, ConvInputs inputs, Tile tile)
    {
        var device = fixture.Device;
        using var x = device.Upload<float>(inputs.X);
        using var w = device.Upload<float>(inputs.W);
        using var y = device.Allocate<float>(problem.OutputElements);
        y.FillBytes(0xFF); // NaN: every element must be written
        var library = NativeLibrary.Load(device.LibraryPath);
        var run = (delegate* unmanaged<nint, ConvProblem*, nint, nint, nint, int, int>)NativeLibrary.GetExport(library, "cc_emu_test_conv_forward_on_tile");
        var lastError = (delegate* unmanaged<byte*>)NativeLibrary.GetExport(library, "cc_last_error");
        var handle = device.Handle;
        var added = false;
        handle.DangerousAddRef(ref added);
        try
        {
            var status = (CheapConvStatus)run(handle.DangerousGetHandle(), &problem, x.Pointer, w.Pointer, y.Pointer, (int)tile);
            Assert.True(status == CheapConvStatus.Success, $"{problem} on the {tile} tile: {status}: {Marshal.PtrToStringUTF8((nint)lastError())}");
        }
        finally
        {
            handle.DangerousRelease();
        }

        device.Synchronize();
        return y.ToArray();
    }
}
