using System.Text.Json;
using System.Text.Json.Nodes;
using CheapConv.Autograd;
using CheapConv.Backends;
using CheapConv.Devices;
using CheapConv.Models;
using CheapConv.Interop;
using CheapConv.Problems;
using CheapConv.Profiling;
using CheapConv.Training;
using Xunit;
using static CheapConv.Tests.Cli.CliRun;

namespace CheapConv.Tests.Profiling;

/// <summary>
/// Profile sessions are process-wide (every launch on the profiling library between begin and end is recorded): tests
/// that run sessions through the backend run alone, so no other test's launches land in their sessions.
/// </summary>
[CollectionDefinition(Name, DisableParallelization = true)]
public sealed class ProfilingSessionCollection
{
    public const string Name = "profiling sessions";
}

/// <summary>
/// Profiles on the profiling emulator: the launch table against what the backend really launches, and the JSON of
/// <c>profile --catalogue</c> and <c>profile --step</c> on small problems (every block recorded or a small sample).
/// </summary>
[Collection(ProfilingSessionCollection.Name)]
public sealed class ProfiledRunTests(EmulatorProfileFixture fixture) : IClassFixture<EmulatorProfileFixture>
{
    private static readonly WrnConfig Student = WrnConfig.Student(10, 1, UnitSpec.Parse("G4"), inChannels: 1, classes: 10, imageSize: 8);
    private static readonly WrnConfig Teacher = WrnConfig.Teacher(10, 1, inChannels: 1, classes: 10, imageSize: 8);

    [Fact]
    public void EveryKernel_IsLaunchedWithTheBlockAndSharedMemoryOfTheLaunchTable()
    {
        using var run = new ProfiledRun(fixture.Profile, new ProfileSettings(GpuModels.H100Sxm, KernelOccupancies.WarpLimited(GpuModels.Sm90), new HashSet<string>(), 0));
        var launches = new List<MeasuredLaunch>();
        var step = StepProfiler.Run(run, Student, Teacher, batch: 2);
        launches.AddRange(step.Launches.Select(l => l.Launch));
        launches.AddRange(run.Profile(() => OtherOps(run.Backend)).Launches.Select(l => l.Launch));
        // The two-launch training batch norm (statistics then apply, reduce then dx): what the launchers take on a GPU without
        // thread-block clusters; the emulator stands for an sm_90 one and takes the cluster kernels unless told otherwise.
        var clusters = fixture.Profile.Device.SetClusterKernels(false);
        try
        {
            launches.AddRange(StepProfiler.Run(run, Student, Teacher, batch: 2).Launches.Select(l => l.Launch));
            // Every training batch norm of the step combines statistics slots: a batch norm on its own takes the two launches.
            launches.AddRange(run.Profile(() => OtherOps(run.Backend)).Launches.Select(l => l.Launch));
        }
        finally
        {
            fixture.Profile.Device.SetClusterKernels(clusters);
        }

        // tf32 (the profile's default): pointwise and many-channel 3×3 on tensor cores, grouped 3×3 with few channels per
        // group on the tiled kernels (stride 1 and 2, the weight gradients split); 3×3 forward passes over enough positions
        // (4·64·64: 128 blocks of 128 columns) for the flat tile (8 filters) and the wide one (40).
        ConvProblem[] problems = [ConvProblem.Create(4, 8, 16, 16, 8, 1, 1), ConvProblem.Create(2, 8, 6, 6, 8, 3, 3, pad: 1, groups: 2),
            ConvProblem.Create(2, 16, 6, 6, 16, 3, 3, pad: 1), ConvProblem.Create(2, 16, 7, 7, 16, 3, 3, stride: 2, pad: 1),
            ConvProblem.Create(2, 8, 7, 7, 8, 3, 3, stride: 2, pad: 1, groups: 2), ConvProblem.Create(4, 8, 64, 64, 8, 3, 3, pad: 1),
            ConvProblem.Create(4, 8, 64, 64, 40, 3, 3, pad: 1)];
        foreach (var pass in CatalogueProfile.Run(run, problems))
        {
            launches.AddRange(pass.Launches.Select(l => l.Launch));
        }

        // Both gradients in one call: the fused kernels (tensor cores 1x1, 3x3 and 3x3 stride 2; tiled stride 1 and 2).
        launches.AddRange(run.Profile(() =>
        {
            foreach (var problem in problems)
            {
                BothGradients(run.Backend, problem);
            }
        }).Launches.Select(l => l.Launch));

        // A grouped 3x3 on the tiled kernels with a residual and the next batch norm's statistics in its store (no model step
        // has one: their residuals land on tensor-core convolutions).
        launches.AddRange(run.Profile(() =>
        {
            foreach (var problem in new[] { problems[1], problems[4] })
            {
                ResidualIntoBatchNorm(run.Backend, problem);
            }
        }).Launches.Select(l => l.Launch));

        // The input batch norm's weight gradient alone (cc_conv_backward_input_bn without da: the batch norm needs no gradient),
        // and its backward with the sums in the data gradient's store (GpuBackend.BatchNormSumsInDataGradient).
        launches.AddRange(run.Profile(() => InputBatchNormBackward(run.Backend, batchNorm: false)).Launches.Select(l => l.Launch));
        using (var sums = new ProfiledRun(fixture.Profile, run.Settings, batchNormSumsInDataGradient: true))
        {
            launches.AddRange(sums.Profile(() => InputBatchNormBackward(sums.Backend, batchNorm: true)).Launches.Select(l => l.Launch));
        }

        // The fp32 GEMM runs where tf32 is not allowed (a dense 3×3 then goes to the tiled kernels); the direct kernels,
        // the reference algorithm, when asked for.
        using var exact = new ProfiledRun(fixture.Profile, run.Settings, KernelPrecision.Fp32);
        using var direct = new ProfiledRun(fixture.Profile, run.Settings, KernelPrecision.Fp32, KernelAlgorithm.Direct);
        foreach (var pass in CatalogueProfile.Run(exact, [ConvProblem.Create(4, 8, 16, 16, 8, 1, 1)])
                     .Concat(CatalogueProfile.Run(direct, [ConvProblem.Create(2, 8, 6, 6, 8, 3, 3, pad: 1)])))
        {
            launches.AddRange(pass.Launches.Select(l => l.Launch));
        }

        var wrong = launches.Where(l => KernelLaunchShapes.Find(l.Kernel) is not { } s || s.ThreadsPerBlock != l.ThreadsPerBlock || s.DynamicSharedBytes != l.DynamicSharedBytes)
            .Select(l => $"{l.Kernel}: block {l.ThreadsPerBlock}, dynamic shared {l.DynamicSharedBytes}").Distinct().ToList();
        Assert.True(wrong.Count == 0, "launches that differ from KernelLaunchShapes: " + string.Join("; ", wrong));
        var unseen = KernelLaunchShapes.All.Select(s => s.Kernel).Except(launches.Select(l => l.Kernel)).ToList();
        Assert.True(unseen.Count == 0, "kernels this test never launched: " + string.Join(", ", unseen));
    }

    // The 3×3 forward kernels' x window (native/include/cheapconv/halo_plan.h, stride 1): its copies (rows of 2, 4 and 8
    // 16-byte pieces, the first two in the bank-spread order) and its B fragment reads (8 columns of one output row per
    // reduction index) hit no bank twice in a wavefront, where the launcher's strides promise it (Q a multiple of 8).
    [Theory]
    [InlineData(8)]
    [InlineData(16)]
    [InlineData(32)]
    public void WindowedForward_HasNoBankConflicts(int width)
    {
        using var run = new ProfiledRun(fixture.Profile, new ProfileSettings(GpuModels.H100Sxm, KernelOccupancies.WarpLimited(GpuModels.Sm90), new HashSet<string>(), 0));
        var forward = CatalogueProfile.Run(run, [ConvProblem.Create(2, 16, width, width, 16, 3, 3, pad: 1)]).Single(p => p.Pass == "forward");
        Assert.Equal(["cc_implicit_gemm_forward_3x3_kernel"], forward.Kernels);
        Assert.True(forward.Main.Launch.SharedWavefronts > 0);
        Assert.Equal(0, forward.BankConflicts);
    }

    [Fact]
    public void StepProfile_CountsTheTrainersHostWaitsAndEveryLaunch()
    {
        using var run = new ProfiledRun(fixture.Profile, new ProfileSettings(GpuModels.H100Sxm, KernelOccupancies.WarpLimited(GpuModels.Sm90), new HashSet<string>(), 4));
        var distill = StepProfiler.Run(run, Student, Teacher, batch: 2);
        // A steady-state step makes no host wait (issue 10): its results stay in the step log on the device. The device
        // layer counts the waits (HostWaitTests), so an empty list here is a count, not an absence of counting.
        Assert.Empty(distill.HostWaits);
        Assert.Equal(distill.Launches.Count, distill.Kernels.Sum(k => k.Count));
        Assert.Contains(distill.Kernels, k => k.Kernel == "cc_kd_forward_kernel");
        Assert.Contains(distill.Kernels, k => k.Kernel == "cc_at_backward_kernel");
        // The gradient check is one launch for every parameter, and the accuracy count stays on the device.
        Assert.Equal(1, distill.Kernels.Single(k => k.Kernel == "cc_first_nonfinite_kernel").Count);
        Assert.Equal(1, distill.Kernels.Single(k => k.Kernel == "cc_count_correct_f32_kernel").Count);

        var train = StepProfiler.Run(run, Student, null, batch: 2);
        Assert.Empty(train.HostWaits);
        Assert.DoesNotContain(train.Kernels, k => k.Kernel.Contains("kd_", StringComparison.Ordinal) || k.Kernel.Contains("at_", StringComparison.Ordinal));
        Assert.All(train.Launches, l => Assert.True(l.Estimate.ModelledUs >= GpuModels.H100Sxm.LaunchSeconds * 1e6));
    }

    [Fact]
    public void ProfileStepJson_HasTheDocumentedKeysAndTypes()
    {
        var (code, output, error) = Run("profile", "--step", "--arch", "wrn-10-1", "--block", "G4", "--teacher-arch", "wrn-10-1", "--batch", "2",
            "--in-channels", "1", "--image", "8", "--sample", "2", "--gpu", "h200", "--json");
        Assert.True(code == 0, error);
        var step = JsonNode.Parse(output)!.AsObject();
        Assert.Equal(0, (int)step["host_syncs"]!); // a training step never waits for the device (issue 10)
        Assert.Equal("h200", (string)step["gpu"]!);
        foreach (var key in new[] { "modelled_us", "roofline_us", "roofline_fraction", "launch_cost_us" })
        {
            Assert.True(step[key]!.GetValue<double>() > 0, key);
        }

        var kernels = step["kernels"]!.AsArray().Select(k => k!.AsObject()).ToList();
        Assert.Equal((int)step["launches"]!, kernels.Sum(k => (int)k["count"]!));
        Assert.All(kernels, k =>
        {
            Assert.StartsWith("cc_", (string)k["kernel"]!);
            Assert.True((double)k["modelled_us"]! > 0);
            Assert.InRange((double)k["roofline_fraction"]!, 0.0, 1.0);
            Assert.Contains((string)k["bound"]!, new[] { "dram", "l2", "shared", "fp32", "tf32", "launch" });
        });
    }

    [Fact]
    public void ProfileCatalogueJson_HasTheDocumentedKeysAndTypes()
    {
        var catalogue = Path.Combine(Path.GetTempPath(), $"cheapconv-profile-{Guid.NewGuid():N}.txt");
        File.WriteAllText(catalogue, "# two problems\n8 16 8 8 16 3 3 1 1 16 | DW\n8 16 8 8 32 1 1 1 0 1 | pointwise\n");
        try
        {
            var (code, output, error) = Run("profile", "--catalogue", catalogue, "--batch", "2", "--sample", "4", "--json");
            Assert.True(code == 0, error);
            var rows = JsonNode.Parse(output)!.AsArray().Select(r => r!.AsObject()).ToList();
            Assert.Equal(6, rows.Count);
            Assert.Equal(["forward", "backward_data", "backward_weight"], rows.Take(3).Select(r => (string)r["pass"]!));
            foreach (var row in rows)
            {
                foreach (var key in new[] { "n", "c", "h", "w", "k", "r", "s", "stride", "pad", "groups", "bank_conflicts" })
                {
                    Assert.Equal(JsonValueKind.Number, row[key]!.GetValueKind());
                    Assert.Equal((double)row[key]!, Math.Round((double)row[key]!)); // integers
                }

                Assert.Equal(2, (int)row["n"]!);
                Assert.NotEmpty(row["kernels"]!.AsArray());
                Assert.True((double)row["modelled_us"]! > (double)row["roofline_us"]!);
                Assert.Equal((double)row["roofline_us"]! / (double)row["modelled_us"]!, (double)row["roofline_fraction"]!, 12);
                Assert.Equal(JsonValueKind.String, row["bound"]!.GetValueKind());
                Assert.True((double)row["sectors_per_request"]! >= 1);
            }

            Assert.Equal("cc_conv2d_tiled_forward_s1_kernel", (string)rows[0]["kernels"]![0]!);
            Assert.Equal("cc_implicit_gemm_forward_1x1_kernel", (string)rows[3]["kernels"]![0]!); // tf32, the library's default
        }
        finally
        {
            File.Delete(catalogue);
        }
    }

    // The ops a small distillation step does not reach: plain ReLU, the add (a step's residual adds are in its
    // convolutions), the two-pass sum, zero padding, the linear bias gradient and the fused BN + ReLU variants.
    private static void ResidualIntoBatchNorm(IBackend backend, ConvProblem problem)
    {
        using var x = backend.Allocate(problem.InputElements);
        using var w = backend.Allocate(problem.WeightElements);
        using var y = backend.Allocate(problem.OutputElements);
        using var residual = backend.Allocate(problem.OutputElements);
        using var output = backend.Allocate(problem.OutputElements);
        using var gamma = backend.Allocate(problem.K);
        using var beta = backend.Allocate(problem.K);
        using var runningMean = backend.Allocate(problem.K);
        using var runningVar = backend.Allocate(problem.K);
        using var saveMean = backend.Allocate(problem.K);
        using var saveInvStd = backend.Allocate(problem.K);
        backend.Conv2dForwardBatchNormTrain(problem, x, w, y, residual,
            new TrainBatchNorm(gamma, beta, runningMean, runningVar, 0.1f, 1e-5f, Relu: true, output, saveMean, saveInvStd));
    }

    private static void InputBatchNormBackward(IBackend backend, bool batchNorm)
    {
        var problem = ConvProblem.Create(2, 8, 6, 6, 16, 1, 1);
        using var z = backend.Allocate(problem.InputElements);
        using var dy = backend.Allocate(problem.OutputElements);
        using var w = backend.Allocate(problem.WeightElements);
        using var dw = backend.Allocate(problem.WeightElements);
        using var mean = backend.Allocate(problem.C);
        using var invStd = backend.Allocate(problem.C);
        using var gamma = backend.Allocate(problem.C);
        using var beta = backend.Allocate(problem.C);
        using var da = backend.Allocate(problem.InputElements);
        using var dz = backend.Allocate(problem.InputElements);
        using var dgamma = backend.Allocate(problem.C);
        using var dbeta = backend.Allocate(problem.C);
        var bn = new InputBatchNorm(mean, invStd, gamma, beta, Relu: true);
        if (batchNorm)
        {
            backend.Conv2dBackwardInputBatchNorm(problem, bn, z, dy, w, da, dz, false, dgamma, dbeta, dw);
        }
        else
        {
            backend.Conv2dBackwardInputBatchNorm(problem, bn, z, dy, w, null, null, false, null, null, dw);
        }
    }

    private static void BothGradients(IBackend backend, ConvProblem problem)
    {
        using var x = backend.Allocate(problem.InputElements);
        using var dy = backend.Allocate(problem.OutputElements);
        using var w = backend.Allocate(problem.WeightElements);
        using var dx = backend.Allocate(problem.InputElements);
        using var dw = backend.Allocate(problem.WeightElements);
        backend.Conv2dBackward(problem, x, dy, w, dx, dw);
    }

    private static void OtherOps(IBackend backend)
    {
        const int n = 2, c = 4, h = 3, w = 5;
        var length = n * c * h * w;
        using var x = backend.Upload(Enumerable.Range(0, length).Select(i => i * 0.01f).ToArray());
        using var y = backend.Allocate(length);
        using var dx = backend.Allocate(length);
        backend.ReluForward(length, x, y);
        backend.ReluBackward(length, y, x, dx);
        backend.Add(length, x, y, dx);
        using var sum = backend.Allocate(1);
        backend.Sum(x, sum);
        using var padded = backend.Allocate(n * c * (h + 2) * (w + 2));
        backend.ZeroPadForward(n, c, h, w, 1, 1, 1, 1, x, padded);
        backend.ZeroPadBackward(n, c, h, w, 1, 1, 1, 1, padded, dx);
        using var bias = backend.Allocate(w);
        backend.LinearBackwardBias(n * c * h, w, x, bias);
        using var gamma = backend.Upload(Enumerable.Repeat(1f, c).ToArray());
        using var beta = backend.Upload(new float[c]);
        using var mean = backend.Upload(new float[c]);
        using var variance = backend.Upload(Enumerable.Repeat(1f, c).ToArray());
        using var saveMean = backend.Allocate(c);
        using var saveInvStd = backend.Allocate(c);
        using var dgamma = backend.Allocate(c);
        using var dbeta = backend.Allocate(c);
        backend.BatchNormReluTrainForward(n, c, h, w, x, gamma, beta, mean, variance, 0.1f, 1e-5f, y, saveMean, saveInvStd);
        backend.BatchNormReluEvalForward(n, c, h, w, x, gamma, beta, mean, variance, 1e-5f, y);
        backend.BatchNormReluBackward(n, c, h, w, x, y, gamma, beta, saveMean, saveInvStd, dx, dgamma, dbeta);
        // The accuracy count that returns to the host (evaluation; a training step keeps its count on the device).
        using var logits = backend.Upload([0.5f, 0.1f, 0f, 0f, 0f, 0.2f, 0.9f, 0f]);
        Assert.Equal(1, backend.CountCorrect(n, c, logits, [0, 1])); // row 0 picks class 0 (right), row 1 class 2 (wrong)
    }
}
