using System.Runtime.InteropServices;
using System.Text.RegularExpressions;
using CheapConv.Autograd;
using CheapConv.Backends;
using CheapConv.Devices;
using CheapConv.Kernels;
using CheapConv.Models;
using CheapConv.Problems;
using CheapConv.Tests.Autograd;
using CheapConv.Tests.Emulator;
using Xunit;

namespace CheapConv.Tests.Profiling;

/// <summary>One profiling library per test class (opening it loads the native library).</summary>
public sealed class EmulatorProfileFixture : IDisposable
{
    internal EmulatorProfile Profile { get; } = EmulatorProfile.Open();

    public void Dispose() => Profile.Dispose();
}

/// <summary>
/// The emulator's memory-traffic profile (native/include/cheapconv/profile.h) through the C# wrapper: the
/// microkernels of native/tests/profile/micro.cu with hand-computed counts, asserted exactly (the native
/// program cc_emu_profile_test asserts the full set, including partial warps, loops, float2/float4 shared
/// phases, atomics, sampling and source lines), and a production op profiled through the GpuBackend.
/// </summary>
public sealed unsafe class MemoryProfileTests(EmulatorProfileFixture fixture, EmulatorFixture production)
    : IClassFixture<EmulatorProfileFixture>, IClassFixture<EmulatorFixture>
{
    private EmulatorProfile Profile => fixture.Profile;

    private EmulatedDevice Device => fixture.Profile.Device;

    [Fact]
    public void NativeProfileTest_Passes()
    {
        var (code, output) = NativeProcess.Run(
            TestPaths.Native("build", "bin", "cc_emu_profile_test"),
            TestPaths.Native("build", "lib", "libcheapconv_emu_profile.so"));
        Assert.True(code == 0, output);
        Assert.Matches(@"[1-9]\d* passed, 0 failed", output);
    }

    [Fact]
    public void NativeStructs_HaveTheHeadersLayout()
    {
        // The sizes cc_emu_profile_test static_asserts for the C structs.
        Assert.Equal(MemoryCounters.NativeSize, sizeof(MemoryCounters));
        Assert.Equal(24 * 8, MemoryCounters.NativeSize);
        Assert.Equal(464, sizeof(EmulatorProfile.NativeLaunch));
        Assert.Equal(88, sizeof(EmulatorProfile.NativeInstruction));
        Assert.Equal(72, (int)Marshal.OffsetOf<EmulatorProfile.NativeLaunch>(nameof(EmulatorProfile.NativeLaunch.Scale)));
        Assert.Equal(40, (int)Marshal.OffsetOf<EmulatorProfile.NativeInstruction>(nameof(EmulatorProfile.NativeInstruction.Requests)));
    }

    [Fact]
    public void ProductionEmulator_HasNoProfileApi()
    {
        var library = NativeLibrary.Load(Path.Combine(AppContext.BaseDirectory, EmulatedDevice.LibraryFileName));
        Assert.False(NativeLibrary.TryGetExport(library, "cc_prof_begin", out _));
        Assert.True(NativeLibrary.TryGetExport(library, "cc_emu_launch", out _));
    }

    // cc_prof_copy over 4096 floats, input shifted by `offset` floats: 128 full warps. Aligned, each warp reads
    // 128 bytes = 4 sectors; shifted by one float the same 128 bytes straddle 5 sectors. Either way the launch
    // reads 16384 distinct bytes and writes 16384.
    [Theory]
    [InlineData(0, 4)]
    [InlineData(1, 5)]
    public void Copy_SectorsPerRequest_AndUniqueBytes(int offset, int sectorsPerRequest)
    {
        const int n = 4096;
        using var input = Device.Upload(Enumerable.Range(0, n + 8).Select(i => (float)i).ToArray());
        using var output = Device.Allocate<float>(n);
        var launch = ProfileOne(() =>
        {
            var args = new KernelArguments();
            args.Add(input.Pointer + offset * sizeof(float));
            args.Add(output.Pointer);
            args.Add(n);
            args.Launch(Device, "cc_prof_copy", new LaunchConfig(new Dim3(n / 256), new Dim3(256)), "copy");
        });

        Assert.Equal(Enumerable.Range(offset, n).Select(i => (float)i), output.ToArray());
        Assert.Equal("cc_prof_copy", launch.Kernel);
        Assert.Equal(128, launch.Raw.GlobalLoadRequests);
        Assert.Equal(128 * sectorsPerRequest, launch.Raw.GlobalLoadSectors);
        Assert.Equal(sectorsPerRequest, launch.Raw.SectorsPerLoadRequest);
        Assert.Equal(4.0, launch.Raw.SectorsPerStoreRequest);
        Assert.Equal(n * sizeof(float), launch.Raw.UniqueReadBytes);
        Assert.Equal(n * sizeof(float), launch.Raw.UniqueWriteBytes);
        Assert.Equal(0, launch.Raw.SharedLoadRequests + launch.Raw.SharedStoreRequests + launch.Raw.GlobalAtomicRequests);
        Assert.True(launch.OutputsComplete);
        Assert.Equal(1.0, launch.Scale);
        Assert.Equal(launch.Raw, launch.Scaled);

        // Two instructions, both at cc_prof_copy's copy line.
        Assert.Equal(new[] { MemoryAccessKind.GlobalLoad, MemoryAccessKind.GlobalStore }, launch.Instructions.Select(i => i.Kind).Order());
        Assert.All(launch.Instructions, i =>
        {
            Assert.EndsWith("tests/profile/micro.cu", i.File);
            Assert.Contains("out[i] = in[i]", File.ReadLines(TestPaths.Native(i.File)).ElementAt(i.Line - 1));
            Assert.Equal("cc_prof_copy", i.Function);
            Assert.Equal(4, i.Width);
            Assert.Equal(128, i.Requests);
        });
    }

    // cc_prof_gather over 1024 threads (32 warps): stride 32 floats puts every lane in its own sector (32 per
    // request, 1024 distinct sectors); stride 0 is a broadcast of in[0] (1 sector per request, 4 unique bytes).
    [Theory]
    [InlineData(32, 32, 4096)]
    [InlineData(0, 1, 4)]
    public void Gather_SectorsPerRequest(int stride, int sectorsPerRequest, int uniqueReadBytes)
    {
        using var input = Device.Allocate<float>(1024L * Math.Max(stride, 1));
        using var output = Device.Allocate<float>(1024);
        var launch = ProfileOne(() =>
        {
            var args = new KernelArguments();
            args.Add(input.Pointer);
            args.Add(output.Pointer);
            args.Add(stride);
            args.Launch(Device, "cc_prof_gather", new LaunchConfig(new Dim3(4), new Dim3(256)), "gather");
        });

        Assert.Equal(32, launch.Raw.GlobalLoadRequests);
        Assert.Equal(32 * sectorsPerRequest, launch.Raw.GlobalLoadSectors);
        Assert.Equal(uniqueReadBytes, launch.Raw.UniqueReadBytes);
        var load = Assert.Single(launch.Instructions, i => i.Kind == MemoryAccessKind.GlobalLoad);
        Assert.Equal(sectorsPerRequest, load.SectorsPerRequest);
    }

    // cc_prof_copy4 over 1024 float4 (32 warps): one 16-byte access per lane, 512 bytes = 16 sectors per request.
    [Fact]
    public void Float4Copy_Is16SectorsPerRequest()
    {
        const int n = 1024;
        using var input = Device.Upload(Enumerable.Range(0, 4 * n).Select(i => (float)i).ToArray());
        using var output = Device.Allocate<float>(4 * n);
        var launch = ProfileOne(() =>
        {
            var args = new KernelArguments();
            args.Add(input.Pointer);
            args.Add(output.Pointer);
            args.Add(n);
            args.Launch(Device, "cc_prof_copy4", new LaunchConfig(new Dim3(4), new Dim3(256)), "copy4");
        });

        Assert.Equal(input.ToArray(), output.ToArray());
        Assert.Equal(32, launch.Raw.GlobalLoadRequests);
        Assert.Equal(16.0, launch.Raw.SectorsPerLoadRequest);
        Assert.Equal(16.0, launch.Raw.SectorsPerStoreRequest);
        Assert.Equal(16, Assert.Single(launch.Instructions, i => i.Kind == MemoryAccessKind.GlobalLoad).Width);
    }

    // cc_prof_shared_stride with one warp: lane t stores shared word t*stride and loads word (t^1)*stride.
    // Stride 1: 32 banks, one word each (1 wavefront); stride 2: the even banks hold two words each (2-way);
    // stride 32: every word in bank 0 (32-way); stride 0: one word for all lanes, a broadcast (1).
    [Theory]
    [InlineData(1, 1)]
    [InlineData(2, 2)]
    [InlineData(32, 32)]
    [InlineData(0, 1)]
    public void SharedStride_Wavefronts(int stride, int wavefronts)
    {
        using var output = Device.Allocate<float>(32);
        var launch = ProfileOne(() =>
        {
            var args = new KernelArguments();
            args.Add(output.Pointer);
            args.Add(stride);
            args.Launch(Device, "cc_prof_shared_stride", new LaunchConfig(new Dim3(1), new Dim3(32)), "shared stride");
        });

        Assert.Equal(1, launch.Raw.SharedLoadRequests);
        Assert.Equal(wavefronts, launch.Raw.SharedLoadWavefronts);
        Assert.Equal(1, launch.Raw.SharedLoadIdealWavefronts);
        Assert.Equal(wavefronts, launch.Raw.SharedStoreWavefronts);
        Assert.Equal(2 * (wavefronts - 1), launch.Raw.SharedBankConflicts);
        var load = Assert.Single(launch.Instructions, i => i.Kind == MemoryAccessKind.SharedLoad);
        Assert.Equal(wavefronts - 1, load.BankConflicts);
        Assert.Equal(0, launch.Raw.GlobalLoadRequests); // shared memory is never global traffic
    }

    [Fact]
    public void Sampling_SkipsOrRunsTheOtherBlocks()
    {
        // 64 blocks of 256 threads copying 16384 floats; a sample of 8 is blocks 0, 8, ..., 56.
        const int n = 64 * 256;
        using var input = Device.Upload(Enumerable.Range(0, n).Select(i => (float)i).ToArray());
        using var output = Device.Allocate<float>(n);
        void Copy()
        {
            var args = new KernelArguments();
            args.Add(input.Pointer);
            args.Add(output.Pointer);
            args.Add(n);
            args.Launch(Device, "cc_prof_copy", new LaunchConfig(new Dim3(64), new Dim3(256)), "copy");
        }

        output.CopyFrom(Enumerable.Repeat(-1f, n).ToArray());
        var skipped = Assert.Single(Profile.Profile(Copy, sampleBlocks: 8));
        Assert.Equal((64L, 8L, 8L, false), (skipped.BlocksTotal, skipped.BlocksSampled, skipped.BlocksExecuted, skipped.OutputsComplete));
        Assert.Equal(8.0, skipped.Scale);
        Assert.Equal(64, skipped.Raw.GlobalLoadRequests); // 8 blocks x 8 warps
        Assert.Equal(512, skipped.Scaled.GlobalLoadRequests);
        Assert.Equal(8 * 1024, skipped.Raw.UniqueReadBytes);
        Assert.Equal(64 * 1024, skipped.Scaled.UniqueReadBytes);
        var partial = output.ToArray();
        Assert.Equal(256 * 8, partial.Count(v => v >= 0));
        Assert.Equal(8 * 256f, partial[8 * 256]);
        Assert.Equal(-1f, partial[256]);

        var all = Assert.Single(Profile.Profile(Copy, sampleBlocks: 8, executeAllBlocks: true));
        Assert.Equal((64L, 8L, 64L, true), (all.BlocksTotal, all.BlocksSampled, all.BlocksExecuted, all.OutputsComplete));
        Assert.Equal(skipped.Raw, all.Raw);
        Assert.Equal(input.ToArray(), output.ToArray());

        // Outside a session nothing is recorded and the last session's records stay.
        Copy();
        Assert.Single(Profile.Read());
    }

    [Fact]
    public void PointwiseForward_ThroughTheGpuBackend_IsProfiled()
    {
        // The pointwise forward at batch 16 (c=64, 16x16, k=128) on the profiling emulator, 16 blocks sampled.
        var problem = ConvProblem.Create(16, 64, 16, 16, 128, 1, 1);
        using var backend = new GpuBackend(Device);
        using var x = Device.Allocate<float>(problem.InputElements);
        using var w = Device.Allocate<float>(problem.WeightElements);
        using var y = Device.Allocate<float>(problem.OutputElements);
        x.CopyFrom(new float[problem.InputElements]);
        w.CopyFrom(new float[problem.WeightElements]);

        var launch = Assert.Single(Profile.Profile(() => backend.PointwiseForward(problem, x, w, y), sampleBlocks: 16));

        Assert.Equal("cc_pointwise_forward_kernel", launch.Kernel);
        Assert.Equal(0, launch.Status);
        Assert.Equal(16, launch.BlocksSampled);
        Assert.Equal(launch.Grid.Volume, launch.BlocksTotal);
        Assert.False(launch.OutputsComplete);
        Assert.Equal((double)launch.BlocksTotal / 16, launch.Scale);
        Assert.True(launch.Raw.GlobalLoadRequests > 0 && launch.Raw.SharedLoadRequests > 0 && launch.Raw.GlobalStoreRequests > 0);
        Assert.Contains(launch.Instructions, i => i.Kind == MemoryAccessKind.SharedLoad && i.File == "kernels/gemm.cu" && i.Line > 0);
        Assert.All(launch.Instructions, i => Assert.NotEqual(MemoryAccessKind.GlobalAtomic, i.Kind));
    }

    // The microkernels' counts are only the GPU's if the GPU executes the same memory instructions: the PTX
    // clang makes of each (native/build/ptx/tests/profile_micro.ptx) holds exactly the loads, stores and
    // atomics, by space and width, that the profile records for it.
    [Theory]
    [InlineData("cc_prof_copy")]
    [InlineData("cc_prof_gather")]
    [InlineData("cc_prof_copy4")]
    [InlineData("cc_prof_copy_loop")]
    [InlineData("cc_prof_shared_stride")]
    [InlineData("cc_prof_dynamic_shared_stride")]
    [InlineData("cc_prof_shared_vector")]
    [InlineData("cc_prof_atomics")]
    public void Microkernel_RecordsThePtxMemoryInstructions(string kernel)
    {
        using var a = Device.Allocate<float>(8192);
        using var b = Device.Allocate<float>(8192);
        var launch = ProfileOne(() =>
        {
            var args = new KernelArguments();
            var shared = 0u;
            switch (kernel)
            {
                case "cc_prof_shared_stride" or "cc_prof_dynamic_shared_stride" or "cc_prof_shared_vector":
                    args.Add(b.Pointer);
                    args.Add(1);
                    shared = kernel == "cc_prof_dynamic_shared_stride" ? 32 * sizeof(float) : 0u;
                    break;
                case "cc_prof_atomics":
                    b.CopyFrom(new float[8192]);
                    args.Add(b.Pointer);
                    break;
                default: // (in, out, n or stride 1)
                    args.Add(a.Pointer);
                    args.Add(b.Pointer);
                    args.Add(kernel == "cc_prof_gather" ? 1 : 32);
                    break;
            }

            args.Launch(Device, kernel, new LaunchConfig(new Dim3(1), new Dim3(32), shared), kernel);
        });

        Assert.Equal(PtxMemoryInstructions(kernel), launch.Instructions.Select(i => (i.Kind, i.Width)).Order());
    }

    // (kind, bytes per lane) of every ld/st/atom of the kernel's PTX, kernel parameters aside.
    private static IEnumerable<(MemoryAccessKind, int)> PtxMemoryInstructions(string kernel)
    {
        var ptx = File.ReadAllText(TestPaths.Native("build", "ptx", "tests", "profile_micro.ptx"));
        var body = Regex.Match(ptx, @"\.entry " + kernel + @"\((.*?)\n\}", RegexOptions.Singleline);
        Assert.True(body.Success, $"{kernel} is not in profile_micro.ptx");
        var found = new List<(MemoryAccessKind, int)>();
        foreach (Match m in Regex.Matches(body.Value, @"^\s+(ld|st|atom)\.(global|shared)(?:\.nc)?(?:\.add)?(?:\.(v2|v4))?\.[a-z](\d+)\s", RegexOptions.Multiline))
        {
            var global = m.Groups[2].Value == "global";
            var kind = m.Groups[1].Value switch
            {
                "ld" => global ? MemoryAccessKind.GlobalLoad : MemoryAccessKind.SharedLoad,
                "st" => global ? MemoryAccessKind.GlobalStore : MemoryAccessKind.SharedStore,
                _ => global ? MemoryAccessKind.GlobalAtomic : MemoryAccessKind.SharedAtomic,
            };
            var lanes = m.Groups[3].Value switch { "v2" => 2, "v4" => 4, _ => 1 };
            found.Add((kind, lanes * int.Parse(m.Groups[4].Value) / 8));
        }

        Assert.NotEmpty(found);
        return found.Order();
    }

    [Fact]
    public void TrainingStep_ExecutingAllBlocks_MatchesTheProductionEmulatorBitForBit()
    {
        // A whole training step (a G(2) student's forward, cross-entropy, backward, SGD, the count of correct
        // predictions) on the profiling library
        // with every block executed: the instrumented kernels compute exactly what the production ones do (same
        // compiler, no contraction either way), and every launch is recorded.
        var reference = TrainingStep(new GpuBackend(production.Device));
        IReadOnlyList<LaunchProfile> launches = [];
        Dictionary<string, float[]> profiled = [];
        launches = Profile.Profile(() => profiled = TrainingStep(new GpuBackend(Device)), sampleBlocks: 2, executeAllBlocks: true);

        Assert.Equal(reference.Keys.Order(), profiled.Keys.Order());
        foreach (var (name, values) in reference)
        {
            Assert.True(values.AsSpan().SequenceEqual(profiled[name]), $"{name} differs from the production emulator's");
        }

        Assert.True(launches.Count > 20, $"{launches.Count} launches recorded");
        Assert.All(launches, l =>
        {
            Assert.Equal(0, l.Status);
            Assert.True(l.OutputsComplete);
            // A cluster kernel (the training batch norm's, 8 blocks per cluster) is sampled in whole clusters.
            Assert.Equal(Math.Min(l.Kernel.EndsWith("_cluster_kernel", StringComparison.Ordinal) ? 8 : 2, l.BlocksTotal), l.BlocksSampled);
            Assert.Contains(l.Kernel, Device.KernelNames);
        });
        Assert.Contains(launches, l => l.Raw.SharedLoadRequests > 0);
        Assert.Contains(launches, l => l.Kernel == "cc_count_correct_kernel");
    }

    private static Dictionary<string, float[]> TrainingStep(IBackend backend)
    {
        var config = WrnConfig.Student(10, 1, UnitSpec.Parse("G(2)"), inChannels: 1, classes: 10, imageSize: 16);
        var model = new WideResNet(config, backend, seed: 7);
        model.Train();
        using var sgd = new Sgd(model.Parameters(), learningRate: 0.1f, momentum: 0.9f, weightDecay: 5e-4f);
        var results = new Dictionary<string, float[]>();
        using (TensorScope.Begin())
        {
            var output = model.ForwardWithGroups(Tensor.FromHost(backend, [2, 1, 16, 16], TensorAssert.Random(2 * 16 * 16, 42)));
            var loss = Ops.CrossEntropy(output.Logits, [3, 7]);
            sgd.ZeroGrad();
            loss.Backward();
            sgd.Step();
            results["loss"] = loss.ToArray();
            results["correct"] = [backend.CountCorrect(2, 10, output.Logits.Storage, [3, 7])];
        }

        foreach (var (name, tensor) in model.StateDict())
        {
            results[name] = tensor.ToArray();
        }

        return results;
    }

    private LaunchProfile ProfileOne(Action work) => Assert.Single(Profile.Profile(work));
}
