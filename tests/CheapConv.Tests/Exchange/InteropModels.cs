using CheapConv.Autograd;
using CheapConv.Backends;
using CheapConv.Models;
using CheapConv.Nn;
using CheapConv.Tests.Autograd;

namespace CheapConv.Tests.Exchange;

/// <summary>
/// Small random models in eval mode for the checks against other runtimes (ONNX Runtime, PyTorch): weights from a
/// seed, BN running statistics that are not the initial 0 and 1 (so an exporter or loader that drops or swaps them
/// is seen), their logits on the C# CPU backend, and the tolerance of a comparison of those logits.
/// </summary>
/// <remarks>
/// Tolerance, from the arithmetic (as in <see cref="StudentOnEmulatorTests"/>): both sides compute in float32 with
/// their own summation orders. One reduction of n terms is within ε·(4+2√n)·Σ|terms| of the exact value, so two
/// implementations differ by at most 2ε·(4+2√n); the elementwise work between reductions — BN's subtract, multiply
/// and add with its rounded 1/√(var+eps), the residual add, and a runtime folding BN into the conv before it (each
/// folded weight rounded once more) — adds at most 8ε on each side, 16ε in all. n is the longest reduction in the model
/// (a 3×3 conv over its widest group of input channels, the classifier's inputs, or the global pool's 8×8 = 64 values).
/// Errors of successive layers add to first order, and the path from image to logits passes through at most every
/// layer once: L = the convs, BNs and the classifier, plus one residual add per block, plus the pool and the padding.
/// The comparison is relative to the largest logit: BN calibrated on the images keeps activations at unit scale,
/// which is what makes the per-tensor maximum the right scale.
/// </remarks>
internal static class InteropModels
{
    private const double Epsilon = 5.9604644775390625e-8; // 2⁻²⁴, float32's unit roundoff

    /// <summary>
    /// The model of <paramref name="config"/> from <paramref name="seed"/>, with BN statistics calibrated on
    /// <paramref name="images"/> (a few training-mode passes: running mean and variance move most of the way to the
    /// batch's) and BN weights and biases drawn away from 1 and 0; in eval mode.
    /// </summary>
    public static WideResNet Create(WrnConfig config, int seed, float[] images, int count)
    {
        var backend = new CpuBackend();
        var model = new WideResNet(config, backend, seed);
        model.Train();
        using (GradientMode.NoGrad())
        {
            // With momentum 0.1, 20 passes put 1 − 0.9²⁰ ≈ 88% of the batch statistics into the running ones.
            for (var pass = 0; pass < 20; pass++)
            {
                using var scope = TensorScope.Begin();
                model.Forward(Tensor.FromHost(backend, [count, config.InChannels, config.ImageSize, config.ImageSize], images));
            }
        }

        var random = new Random(seed + 1);
        foreach (var (_, module) in model.NamedModules())
        {
            if (module is BatchNorm2d bn)
            {
                bn.Weight.Load([.. Enumerable.Range(0, bn.Channels).Select(_ => 0.5f + random.NextSingle())]);
                bn.Bias.Load([.. Enumerable.Range(0, bn.Channels).Select(_ => (0.4f * random.NextSingle()) - 0.2f)]);
            }
        }

        model.Eval();
        return model;
    }

    /// <summary>Images with values in [−2, 2), the range of normalised pixels.</summary>
    public static float[] Images(WrnConfig config, int count, int seed) =>
        [.. TensorAssert.Random((long)count * config.InChannels * config.ImageSize * config.ImageSize, seed).Select(v => 2 * v)];

    /// <summary>The model's logits (count × classes) on the C# CPU backend, in eval mode.</summary>
    public static float[] Logits(WideResNet model, float[] images, int count)
    {
        var c = model.Config;
        using var noGrad = GradientMode.NoGrad();
        using var scope = TensorScope.Begin();
        return model.Forward(Tensor.FromHost(model.Fc.Weight.Backend, [count, c.InChannels, c.ImageSize, c.ImageSize], images)).ToArray();
    }

    /// <summary>The bound of the remarks, relative to the largest logit.</summary>
    public static double Tolerance(WideResNet model)
    {
        var modules = model.NamedModules().Select(m => m.Module).ToList();
        var finalSize = model.Config.NetworkImageSize / 4;
        var longest = modules.OfType<Conv2d>().Select(c => c.InChannels / c.Groups * c.KernelSize * c.KernelSize)
            .Append(model.Fc.InFeatures).Append(finalSize * finalSize).Max();
        var layers = modules.Count(m => m is Conv2d or BatchNorm2d or Linear or ZeroPad2d)
            + modules.Count(m => m is BasicBlock or BottleBlock) + 1;
        return layers * ((2 * Epsilon * (4 + (2 * Math.Sqrt(longest)))) + (16 * Epsilon));
    }

    /// <summary>max |actual − expected| / max |expected|.</summary>
    public static double RelativeError(float[] expected, float[] actual)
    {
        if (expected.Length != actual.Length)
        {
            return double.PositiveInfinity;
        }

        var scale = Math.Max(expected.Max(v => Math.Abs((double)v)), 1e-30);
        return expected.Select((e, i) => Math.Abs((double)actual[i] - e)).Max() / scale;
    }
}
