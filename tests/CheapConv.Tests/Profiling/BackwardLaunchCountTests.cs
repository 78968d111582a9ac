using CheapConv.Autograd;
using CheapConv.Models;
using CheapConv.Nn;
using CheapConv.Profiling;
using CheapConv.Training;
using Xunit;

namespace CheapConv.Tests.Profiling;

/// <summary>
/// The launches cc_conv_backward saves in a training step (issue 10): a WRN-16-2 → G(4) distillation step on the profiling
/// emulator with tf32 (the profile's default), counted with the convolutions' two gradients in one call and apart
/// (<see cref="BackwardFusion.Disabled"/>). Every fused launch replaces a data-gradient launch and a weight-gradient launch.
/// </summary>
[Collection(ProfilingSessionCollection.Name)]
public sealed class BackwardLaunchCountTests(EmulatorProfileFixture fixture) : IClassFixture<EmulatorProfileFixture>
{
    private static readonly WrnConfig Student = WrnConfig.Student(16, 2, UnitSpec.Parse("G4"), inChannels: 1, classes: 10, imageSize: 8);
    private static readonly WrnConfig Teacher = WrnConfig.Teacher(16, 2, inChannels: 1, classes: 10, imageSize: 8);

    [Fact]
    public void Wrn16x2ToG4DistillStep_FusedBackward_Saves25Launches()
    {
        var fused = Launches(fused: true);
        var apart = Launches(fused: false);
        // The step's 25 training batch norms take one launch per pass (the thread-block-cluster kernels of sm_90, the device
        // the emulator stands for), 2 each instead of the two-launch path's 4: 50 fewer than the 238 and 213 of that path.
        Assert.Equal(188, apart.Count);
        Assert.Equal(163, fused.Count);
        // Every convolution of the student whose two gradients run on one family: its data and weight launches become one.
        // The G(4) units' 1x1 convolutions and 1x1 stride-1 shortcut on the tensor cores (13), the 3x3 convolutions with
        // enough channels per group for them (3), the grouped 3x3 ones on the tiled kernels, stride 1 (7) and 2 (2).
        var expected = new Dictionary<string, int>
        {
            ["cc_implicit_gemm_backward_1x1_kernel"] = 13,
            ["cc_implicit_gemm_backward_3x3_kernel"] = 3,
            ["cc_conv2d_tiled_backward_s1_kernel"] = 7,
            ["cc_conv2d_tiled_backward_s2_kernel"] = 2,
        };
        foreach (var (kernel, count) in expected)
        {
            Assert.True(count == fused.Count(k => k == kernel), $"{kernel}: {fused.Count(k => k == kernel)} launches, expected {count}");
            Assert.DoesNotContain(kernel, apart);
        }

        Assert.Equal(apart.Count - expected.Values.Sum(), fused.Count);
        // The training batch norms' forward passes, still one launch each, all 25 combining the statistics their convolution's
        // store wrote: after the tensor-core kernels (each block's conv1 -> bn2 and conv2 -> the next bn1 or the final one, 12;
        // the grouped 3x3 -> bn of the units with 16 or 32 channels per group, 7) and after the tiled kernels (the stem, the
        // 8-channel grouped 3x3s, 6). None runs the cluster kernel.
        Assert.Equal(25, fused.Count(k => k == "cc_batchnorm_train_forward_from_stats_kernel"));
        Assert.Equal(0, fused.Count(k => k == "cc_batchnorm_train_forward_cluster_kernel"));
        // Left apart: the two stride-2 1x1 shortcuts (the fp32 GEMM's data gradient, the tensor cores' weight gradient) and
        // the stem, whose input (the images) needs no gradient: its weight gradient alone.
        Assert.Equal(["cc_conv2d_tiled_backward_weight_s1_kernel", "cc_implicit_gemm_backward_weight_1x1_kernel", "cc_implicit_gemm_backward_weight_1x1_kernel",
            "cc_pointwise_backward_data_kernel", "cc_pointwise_backward_data_kernel"],
            fused.Where(IsSinglePassConvolutionGradient).Order(StringComparer.Ordinal));
    }

    [Fact]
    public void Wrn16x2ToG4DistillStep_InputBatchNormInThePointwiseConvolutions_KeepsTheLaunchCount()
    {
        var separate = Launches(fused: true);
        var prologue = Launches(fused: true, prologue: true);
        // The 12 G(4) units' pointwise 1x1s apply the batch norm before them as they read (forward and weight gradient): their
        // statistics launch replaces that batch norm's forward launch, and each unit's backward is still its pointwise
        // convolution's one launch of both gradients, then the batch norm's backward.
        Assert.Equal(separate.Count, prologue.Count);
        Assert.Equal(12, prologue.Count(k => k == "cc_implicit_gemm_forward_1x1_input_bn_kernel"));
        Assert.Equal(12, prologue.Count(k => k == "cc_implicit_gemm_backward_1x1_input_bn_kernel"));
        Assert.Equal(12, prologue.Count(k => k == "cc_batchnorm_statistics_from_stats_kernel"));
        Assert.Equal(13 - 12, prologue.Count(k => k == "cc_implicit_gemm_backward_1x1_kernel"));
        Assert.Equal(25 - 12, prologue.Count(k => k == "cc_batchnorm_train_forward_from_stats_kernel"));
        Assert.DoesNotContain("cc_batchnorm_train_stats_kernel", prologue);
    }

    private static bool IsSinglePassConvolutionGradient(string kernel)
    {
        string[] families = ["cc_conv2d_", "cc_implicit_gemm_", "cc_pointwise_"];
        return families.Any(f => kernel.StartsWith(f, StringComparison.Ordinal)) &&
            (kernel.Contains("backward_data", StringComparison.Ordinal) || kernel.Contains("backward_weight", StringComparison.Ordinal));
    }

    // The step's kernels in launch order; without the input batch norm in the pointwise convolutions (PrologueFusion) unless
    // `prologue`, whose backward is always one launch of both gradients.
    private List<string> Launches(bool fused, bool prologue = false)
    {
        using var run = new ProfiledRun(fixture.Profile, new ProfileSettings(GpuModels.H100Sxm, KernelOccupancies.WarpLimited(GpuModels.Sm90), new HashSet<string>(), 1));
        using (fused ? null : BackwardFusion.Disabled())
        using (prologue ? null : PrologueFusion.Disabled())
        {
            return [.. StepProfiler.Run(run, Student, Teacher, batch: 2).Launches.Select(l => l.Launch.Kernel)];
        }
    }
}
