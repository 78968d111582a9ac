using CheapConv.Autograd;
using CheapConv.Backends;
using CheapConv.Models;
using CheapConv.Tests.Emulator;
using Xunit;

namespace CheapConv.Tests.Autograd;

/// <summary>
/// The fixture models of models.md (WRN-10-1, 1×16×16, 10 classes, batch 2) run end to end on the emulator
/// (the CUDA kernels through GpuBackend) and on the C# CPU backend, from the same weights and data.
/// </summary>
/// <remarks>
/// Tolerance, from the arithmetic: both sides are float32 with different summation orders. One reduction of
/// n terms is within ε·(4+2√n) of the sum of |terms| of the exact value (ConvCheck's bound), so two
/// implementations differ by at most twice that. The longest reductions here have n ≤ 576 (a 3×3 conv over
/// 64 channels; BN and weight gradients sum N·H·W = 512) → 2·ε·52 ≈ 6.2e-6 with ε = 2⁻²⁴. Errors of successive
/// layers add to first order; the longest path from the input through the loss and back to the stem weights
/// has L ≈ 60 reductions (about 28 layers each way plus the losses), so every tensor must agree within
/// 60 × 6.2e-6 ≈ 3.7e-4 of its largest magnitude. (Normalisation keeps activations and gradients at unit
/// scale, so the per-tensor maximum is the right scale; the emulator's approximate expf/logf are within
/// 2⁻²² relative, inside this bound.)
/// </remarks>
public class StudentOnEmulatorTests(EmulatorFixture emulator) : IClassFixture<EmulatorFixture>
{
    // The bound derived in the remarks above (emulator against the C# backend, both float32).
    internal const double Tolerance = 60 * 2 * 52 * 5.9604644775390625e-8;

    private static readonly int[] Labels = [3, 7];

    /// <summary>The fixture model the tolerance is derived for (1×16×16 images, 10 classes; batches of 2).</summary>
    internal static WrnConfig Config(string block) => WrnConfig.Student(10, 1, UnitSpec.Parse(block), inChannels: 1, classes: 10, imageSize: 16);

    private static float[] Images => TensorAssert.Random(2 * 16 * 16, 42);

    /// <summary>Everything one training forward + backward produces: logits, group outputs, every state value and gradient.</summary>
    private static Dictionary<string, float[]> ForwardBackward(IBackend backend, WrnConfig config)
    {
        var model = new WideResNet(config, backend, seed: 7);
        model.Train();
        var results = new Dictionary<string, float[]>();
        using (TensorScope.Begin())
        {
            var output = model.ForwardWithGroups(Tensor.FromHost(backend, [2, 1, 16, 16], Images));
            // A fixed ∂L/∂logits rather than a loss keeps this test to the network's own primitives.
            using var dlogits = backend.Upload(TensorAssert.Random(2 * 10, 43));
            output.Logits.Backward(dlogits);
            results["logits"] = output.Logits.ToArray();
            for (var g = 0; g < 3; g++)
            {
                results[$"group{g + 1}"] = output.Groups[g].ToArray();
            }
        }

        foreach (var (name, tensor) in model.StateDict())
        {
            results[name] = tensor.ToArray();
            if (tensor.Gradient is not null)
            {
                results["grad " + name] = tensor.GradientToArray();
            }
        }

        return results;
    }

    [Theory]
    [InlineData("G(2)")]
    [InlineData("B(2)")]
    public void Student_ForwardBackward_EmulatorMatchesCpu(string block)
    {
        var config = Config(block);
        var cpu = ForwardBackward(new CpuBackend(), config);
        var emu = ForwardBackward(new GpuBackend(emulator.Device), config);
        Assert.Equal(cpu.Keys.Order(), emu.Keys.Order());
        Assert.Equal(new WideResNet(config, new ShapeOnlyBackend()).NamedParameters().Count(), cpu.Keys.Count(k => k.StartsWith("grad ", StringComparison.Ordinal)));
        foreach (var (name, expected) in cpu)
        {
            TensorAssert.Close(expected, emu[name], Tolerance, $"{config.Name} {name}");
        }
    }

    /// <summary>One distillation step: teacher (eval, no grad) and student forward, CE + KD + AT, backward, SGD.</summary>
    private static Dictionary<string, float[]> DistillationStep(IBackend backend, string block)
    {
        var teacher = new WideResNet(Config("S"), backend, seed: 1);
        var student = new WideResNet(Config(block), backend, seed: 2);
        teacher.Eval();
        student.Train();
        using var sgd = new Sgd(student.Parameters(), learningRate: 0.1f, momentum: 0.9f, weightDecay: 5e-4f);
        var results = new Dictionary<string, float[]>();
        using (TensorScope.Begin())
        {
            var images = Tensor.FromHost(backend, [2, 1, 16, 16], Images);
            WrnOutput taught;
            using (GradientMode.NoGrad())
            {
                taught = teacher.ForwardWithGroups(images);
            }

            Assert.All(taught.Groups.Append(taught.Logits), t => Assert.Null(t.Creator));
            var output = student.ForwardWithGroups(images);
            var loss = DistillationLoss.Compute(output.Logits, taught.Logits, Labels, output.Groups, taught.Groups, new DistillationOptions());
            sgd.ZeroGrad();
            loss.Total.Backward();
            sgd.Step();
            results["total"] = loss.Total.ToArray();
            results["ce"] = loss.CrossEntropy.ToArray();
            results["kd"] = loss.KnowledgeDistillation!.ToArray();
            for (var g = 0; g < 3; g++)
            {
                results[$"at{g + 1}"] = loss.AttentionTransfer[g].ToArray();
            }
        }

        Assert.All(teacher.Parameters(), p => Assert.Null(p.Gradient));
        foreach (var (name, tensor) in student.StateDict())
        {
            results["student " + name] = tensor.ToArray();
        }

        foreach (var (name, tensor) in teacher.NamedBuffers())
        {
            results["teacher " + name] = tensor.ToArray(); // eval mode: must be unchanged
        }

        return results;
    }

    [Theory]
    [InlineData("G(2)")]
    [InlineData("B(2)")]
    public void DistillationStep_EmulatorMatchesCpu(string block)
    {
        var cpu = DistillationStep(new CpuBackend(), block);
        var emu = DistillationStep(new GpuBackend(emulator.Device), block);
        Assert.Equal(cpu.Keys.Order(), emu.Keys.Order());
        foreach (var (name, expected) in cpu)
        {
            TensorAssert.Close(expected, emu[name], Tolerance, $"distillation step, {block}: {name}");
        }

        // The combination is the documented one: total = (1−α)·CE + α·KD + β·ΣAT.
        var total = 0.1 * cpu["ce"][0] + 0.9 * cpu["kd"][0] + 1e3 * (cpu["at1"][0] + cpu["at2"][0] + cpu["at3"][0]);
        Assert.InRange(cpu["total"][0], total - 1e-5 * Math.Abs(total), total + 1e-5 * Math.Abs(total));
        Assert.All(cpu.Where(e => e.Key.StartsWith("teacher ", StringComparison.Ordinal)), e =>
            Assert.All(e.Value, v => Assert.Equal(e.Key.EndsWith("running_var", StringComparison.Ordinal) ? 1f : 0f, v)));
    }
}
