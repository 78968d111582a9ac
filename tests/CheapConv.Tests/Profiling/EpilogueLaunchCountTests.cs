using CheapConv.Autograd;
using CheapConv.Models;
using CheapConv.Nn;
using CheapConv.Profiling;
using Xunit;

namespace CheapConv.Tests.Profiling;

/// <summary>
/// The launches the fused epilogues save (issue 10): an eval-mode WRN-16-2 forward on the profiling emulator with tf32 (the
/// profile's default), counted with fusion on and off.
/// </summary>
[Collection(ProfilingSessionCollection.Name)]
public sealed class EpilogueLaunchCountTests(EmulatorProfileFixture fixture) : IClassFixture<EmulatorProfileFixture>
{
    [Fact]
    public void Wrn16x2EvalForward_FusedEpilogues_Save18Launches()
    {
        // WRN-16-2: 6 basic blocks, whose 3×3 convolutions (16 to 128 channels) run on the tensor-core kernels. Each block's
        // bn2 goes into its conv1, and its residual add and the next batch norm (the next block's bn1, or the final one) into
        // its conv2: 6 + 6 + 6 = 18 launches. The stem's 3×3 over 3 input channels stays on the CUDA-core kernels, so the
        // first block's bn1 is still its own launch (cc_conv_forward_fused's fallback).
        var config = WrnConfig.Teacher(16, 2, inChannels: 3, classes: 10, imageSize: 8);
        var fused = Launches(config, fused: true);
        var unfused = Launches(config, fused: false);
        Assert.Equal(18, unfused.Count - fused.Count);
        Assert.Equal(1, fused.Count(k => k == "cc_batchnorm_eval_forward_kernel"));
        Assert.DoesNotContain("cc_add_kernel", fused);
        Assert.Equal(6, unfused.Count(k => k == "cc_add_kernel"));
    }

    // The kernels of one eval-mode forward pass of a batch of 2, in launch order (two blocks sampled per launch: the count
    // is what matters, not the values).
    private List<string> Launches(WrnConfig config, bool fused)
    {
        using var run = new ProfiledRun(fixture.Profile, new ProfileSettings(GpuModels.H100Sxm, KernelOccupancies.WarpLimited(GpuModels.Sm90), new HashSet<string>(), 2));
        var model = new WideResNet(config, run.Backend, seed: 1);
        model.Eval();
        var images = new float[2 * config.InChannels * config.ImageSize * config.ImageSize];
        var (launches, _) = run.Profile(() =>
        {
            using var scope = TensorScope.Begin();
            using var noGrad = GradientMode.NoGrad();
            using (fused ? null : EpilogueFusion.Disabled())
            {
                model.ForwardWithGroups(Tensor.FromHost(run.Backend, [2, config.InChannels, config.ImageSize, config.ImageSize], images));
            }
        });
        return [.. launches.Select(l => l.Launch.Kernel)];
    }
}
