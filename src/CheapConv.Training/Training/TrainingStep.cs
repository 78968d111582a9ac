using CheapConv.Autograd;
using CheapConv.Backends;
using CheapConv.Models;

namespace CheapConv.Training;

/// <summary>
/// One training step as <see cref="Trainer"/> runs it: upload the batch, the teacher's no-grad forward pass (distillation),
/// the student's forward pass, the loss (cross-entropy alone, or <see cref="DistillationLoss"/>), backward, the step's row
/// of the <see cref="StepLog"/> (every loss term, the correct count, the gradient check), then the SGD update. Nothing in
/// it makes the host wait for the device: the batch goes up through staged copies, and the results stay in the log until
/// the trainer reads them (<see cref="StepLog.ReadNew"/>) — so a GPU runs steps back to back. The trainer and the step
/// profile run this one method, so what is profiled is what trains; with --graph on the trainer replays a capture of its
/// <see cref="Compute"/> part instead (<see cref="StepRunner"/>), which launches the same kernels in the same order.
/// </summary>
/// <remarks>
/// A step that goes non-finite is found when its row is read, not inside the step: the steps run after it, until that
/// read, are wasted work whose results nobody keeps (the trainer stops before it evaluates or writes a checkpoint).
/// </remarks>
internal static class TrainingStep
{
    /// <summary>
    /// Runs one step on <paramref name="images"/> (<paramref name="shape"/>: batch × channels × height × width) and
    /// <paramref name="labels"/>, recording its results in <paramref name="log"/>. <paramref name="teacher"/> and
    /// <paramref name="loss"/> are both given for distillation, both null for plain training. The step's temporaries are
    /// freed before it returns.
    /// </summary>
    public static void Run(WideResNet student, WideResNet? teacher, Sgd optimizer, DistillationOptions? loss, IBackend backend,
        int[] shape, ReadOnlySpan<float> images, ReadOnlySpan<int> labels, StepLog log)
    {
        ArgumentNullException.ThrowIfNull(student);
        ArgumentNullException.ThrowIfNull(optimizer);
        ArgumentNullException.ThrowIfNull(backend);
        ArgumentNullException.ThrowIfNull(log);
        if ((teacher is null) != (loss is null))
        {
            throw new ArgumentException("a distillation step needs both the teacher and the loss options; a plain step neither");
        }

        using var scope = TensorScope.Begin();
        var input = Tensor.FromHost(backend, shape, images);
        Compute(student, teacher, optimizer, loss, input, labels, log);
        log.Commit(shape[0]);
    }

    /// <summary>
    /// The device-side part of a step on an <paramref name="input"/> already on the device: forward passes, loss, backward,
    /// the log's row (<see cref="StepLog.Record"/>, not committed) and the SGD update. Nothing here uploads or waits, so it
    /// can be captured as a graph (<see cref="StepGraph"/>).
    /// </summary>
    internal static void Compute(WideResNet student, WideResNet? teacher, Sgd optimizer, DistillationOptions? loss, Tensor input,
        ReadOnlySpan<int> labels, StepLog log)
    {
        WrnOutput? taught = null;
        if (teacher is not null)
        {
            using (GradientMode.NoGrad())
            {
                taught = teacher.ForwardWithGroups(input);
            }
        }

        var output = student.ForwardWithGroups(input);
        Tensor total, crossEntropy;
        Tensor? kd = null;
        IReadOnlyList<Tensor> at = [];
        if (taught is not null && loss is not null)
        {
            var parts = DistillationLoss.Compute(output.Logits, taught.Logits, labels, output.Groups, taught.Groups, loss);
            (total, crossEntropy, kd, at) = (parts.Total, parts.CrossEntropy, parts.KnowledgeDistillation, parts.AttentionTransfer);
        }
        else
        {
            total = crossEntropy = Ops.CrossEntropy(output.Logits, labels);
        }

        optimizer.ZeroGrad();
        total.Backward();
        // The logits are those before the update, as the accuracy of a training epoch has always been counted.
        log.Record(total, crossEntropy, kd, at, output.Logits, labels);
        optimizer.Step();
    }

    /// <summary>The AT terms a step with <paramref name="loss"/> computes (the log's AT columns): one per group of the WRN
    /// when β ≠ 0 (DistillationLoss), none otherwise.</summary>
    public static int AttentionGroups(DistillationOptions? loss) => loss is null || loss.Beta == 0f ? 0 : WideResNet.GroupCount;
}
