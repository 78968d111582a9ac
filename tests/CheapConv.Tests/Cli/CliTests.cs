using CheapConv.Cli;
using CheapConv.IO;
using CheapConv.Devices;
using Xunit;

namespace CheapConv.Tests.Cli;

/// <summary>The CLI as a user meets it: exit codes, one-line errors, files it writes.</summary>
public class CliTests
{
    private static (int Code, string Output, string Error) Run(params string[] args)
    {
        using var output = new StringWriter();
        using var error = new StringWriter();
        var code = CommandLine.Run(args, output, error);
        return (code, output.ToString(), error.ToString());
    }

    [Theory]
    [InlineData("emu")]
    [InlineData("cpu")]
    public void CheckConv_PassesOnLocalDevices(string device)
    {
        var (code, output, error) = Run("check", "conv", "--n", "2", "--c", "6", "--h", "7", "--w", "5", "--k", "9",
            "--r", "3", "--s", "3", "--stride", "2", "--pad", "1", "--groups", "3", "--device", device);
        Assert.True(code == 0, output + error);
        Assert.Contains("forward", output);
        Assert.Contains("backward-data", output);
        Assert.Contains("backward-weight", output);
        // The emulator's warnings are printed (EmulatorDiagnosticsTests); the production kernels give none.
        Assert.DoesNotContain("warning:", output);
        Assert.EndsWith("PASS", output.TrimEnd());
    }

    [Fact]
    public void CheckConv_DumpWritesNpyFilesWithTheProblemShapes()
    {
        var directory = Path.Combine(Path.GetTempPath(), $"cheapconv-dump-{Guid.NewGuid():N}");
        try
        {
            var (code, output, error) = Run("check", "conv", "--n", "1", "--c", "4", "--h", "5", "--w", "6", "--k", "8",
                "--r", "3", "--s", "3", "--pad", "1", "--groups", "4", "--device", "emu", "--dump", directory);
            Assert.True(code == 0, output + error);
            Assert.Equal([1, 4, 5, 6], NpzReader.ReadFloat32Npy(Path.Combine(directory, "x.npy")).Shape);
            Assert.Equal([8, 1, 3, 3], NpzReader.ReadFloat32Npy(Path.Combine(directory, "w.npy")).Shape);
            Assert.Equal([1, 8, 5, 6], NpzReader.ReadFloat32Npy(Path.Combine(directory, "y.npy")).Shape);
            Assert.Equal([1, 8, 5, 6], NpzReader.ReadFloat32Npy(Path.Combine(directory, "dy.npy")).Shape);
            Assert.Equal([1, 4, 5, 6], NpzReader.ReadFloat32Npy(Path.Combine(directory, "dx.npy")).Shape);
            var (dw, dwShape) = NpzReader.ReadFloat32Npy(Path.Combine(directory, "dw.npy"));
            Assert.Equal([8, 1, 3, 3], dwShape);
            Assert.All(dw, v => Assert.True(float.IsFinite(v)));
            Assert.Empty(Directory.GetFiles(directory, "*.tmp"));
        }
        finally
        {
            if (Directory.Exists(directory))
            {
                Directory.Delete(directory, recursive: true);
            }
        }
    }

    [Theory]
    [InlineData("must divide the input channels", "--n", "1", "--c", "6", "--h", "8", "--w", "8", "--k", "8", "--groups", "4")]
    [InlineData("larger than the padded", "--n", "1", "--c", "2", "--h", "2", "--w", "2", "--k", "2", "--r", "5")]
    [InlineData("N must be positive", "--n", "0", "--c", "2", "--h", "8", "--w", "8", "--k", "2")]
    [InlineData("option --k is required", "--n", "1", "--c", "2", "--h", "8", "--w", "8")]
    [InlineData("needs an integer", "--n", "one", "--c", "2", "--h", "8", "--w", "8", "--k", "2")]
    [InlineData("unknown option --bogus", "--n", "1", "--c", "2", "--h", "8", "--w", "8", "--k", "2", "--bogus", "3")]
    [InlineData("must be one of cpu, emu, cuda", "--n", "1", "--c", "2", "--h", "8", "--w", "8", "--k", "2", "--device", "tpu")]
    public void CheckConv_RejectsBadInputWithOneLineAndExitCode2(string message, params string[] options)
    {
        var (code, output, error) = Run(["check", "conv", .. options]);
        Assert.Equal(2, code);
        Assert.Contains(message, error);
        Assert.StartsWith("error: ", error);
        Assert.Single(error.TrimEnd().Split('\n'));
        Assert.Equal("", output);
    }

    [SkippableFact]
    public void CheckConv_OnCudaWithoutGpu_SaysWhyWithExitCode3()
    {
        Skip.If(CheapConv.Devices.CudaDevice.Probe().IsAvailable, "a CUDA device is present");
        var (code, _, error) = Run("check", "conv", "--n", "1", "--c", "2", "--h", "8", "--w", "8", "--k", "2", "--device", "cuda");
        Assert.Equal(3, code);
        Assert.StartsWith("error: ", error);
        Assert.Single(error.TrimEnd().Split('\n'));
    }

    [Fact]
    public void BenchConv_OnCpu_WritesATableRowPerPass()
    {
        var path = Path.Combine(Path.GetTempPath(), $"cheapconv-bench-{Guid.NewGuid():N}.md");
        try
        {
            var (code, output, error) = Run("bench", "conv", "--n", "1", "--c", "4", "--h", "6", "--w", "6", "--k", "4",
                "--pad", "1", "--groups", "2", "--device", "cpu", "--repeats", "1", "--out", path);
            Assert.True(code == 0, output + error);
            var table = File.ReadAllText(path);
            foreach (var pass in new[] { "forward", "backward-data", "backward-weight" })
            {
                Assert.Contains($"| 1 4 6 6 4 3 3 1 1 2 | {pass} |", table);
            }
        }
        finally
        {
            File.Delete(path);
        }
    }

    [Theory]
    [InlineData("the emulator is for correctness only", "--n", "1", "--c", "2", "--h", "8", "--w", "8", "--k", "2", "--device", "emu")]
    [InlineData("does not exist", "--catalogue", "/nonexistent/shapes.txt", "--device", "cpu")]
    [InlineData("give --catalogue FILE or a problem", "--device", "cpu")]
    [InlineData("--batch must be positive", "--catalogue", "shapes/rigorous.txt", "--batch", "0", "--device", "cpu")]
    public void BenchConv_RejectsBadInput(string message, params string[] options)
    {
        var (code, _, error) = Run(["bench", "conv", .. options.Select(o => o.StartsWith("shapes/", StringComparison.Ordinal) ? Path.Combine(TestPaths.RepositoryRoot, o) : o)]);
        Assert.Equal(2, code);
        Assert.Contains(message, error);
    }

    [Fact]
    public void UnknownCommand_IsAUsageError()
    {
        var (code, _, error) = Run("frobnicate");
        Assert.Equal(2, code);
        Assert.Contains("unknown command 'frobnicate'", error);
    }

    [Fact]
    public void Info_ReportsEmulatorAndPtx()
    {
        var (code, output, error) = Run("info");
        Assert.True(code == 0, output + error);
        Assert.Contains("sm_80", output);
        Assert.Contains("cc_conv2d_backward_weight_kernel", output);
        Assert.Matches(@"emulator: available: C ABI 3\.\d+\.\d+, emulator API \d+, \S+libcheapconv_emu\.so\n  emulator: \d+ worker threads\n", output);
        Assert.Matches(@"C ABI \(CUDA\): libcheapconv\.so 3\.\d+\.\d+, \S+libcheapconv\.so\n", output);
        Assert.Contains("cuda", output, StringComparison.OrdinalIgnoreCase);
        if (CudaDevice.Probe().IsAvailable)
        {
            // Per GPU, the binary its kernels run: "    kernels: cuda: NVIDIA ... kernels: SASS sm_90 from the fatbin".
            Assert.Matches(@"\n    kernels: cuda: .*kernels: (SASS|PTX) ", output);
        }
    }
}
