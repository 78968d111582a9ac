using CheapConv.Autograd;
using CheapConv.Backends;
using CheapConv.Models;

namespace CheapConv.Training;

/// <summary>What one step reports back to the host, per image averages as the loss functions define them.</summary>
/// <param name="Loss">The total loss the step descended.</param>
/// <param name="KnowledgeDistillation">The KD term; 0 when α = 0 (not computed) or without a teacher.</param>
/// <param name="AttentionTransfer">Σ of the AT terms (each before its β); 0 when there are none.</param>
/// <param name="Correct">Images of the batch the student's logits (before the update) classify correctly.</param>
internal sealed record StepResult(double Loss, double CrossEntropy, double KnowledgeDistillation, double AttentionTransfer, int Correct);

/// <summary>
/// One training step as <see cref="Trainer"/> runs it: upload the batch, the teacher's no-grad forward pass (distillation),
/// the student's forward pass, the loss (cross-entropy alone, or <see cref="DistillationLoss"/>), the host reads of every
/// loss term, backward, the gradient check (one sum read back per parameter), the SGD update, then the accuracy count.
/// The trainer and the step profile run this one method, so what is profiled is what trains.
/// </summary>
internal static class TrainingStep
{
    /// <summary>
    /// Runs one step on <paramref name="images"/> (<paramref name="shape"/>: batch × channels × height × width) and
    /// <paramref name="labels"/>. <paramref name="teacher"/> and <paramref name="loss"/> are both given for distillation,
    /// both null for plain training. A non-finite loss term or gradient throws what <paramref name="diverged"/> makes of it
    /// (its name and value), before the weights change; with <paramref name="diverged"/> null the values are read but not
    /// judged — the reads, launches and host waits of a step whose values stay finite, which is what a profile of a
    /// sampled (partial, meaningless) run needs. The step's temporaries are freed before it returns.
    /// </summary>
    public static StepResult Run(WideResNet student, WideResNet? teacher, Sgd optimizer, DistillationOptions? loss, IBackend backend,
        int[] shape, ReadOnlySpan<float> images, ReadOnlySpan<int> labels, Func<string, double, Exception>? diverged)
    {
        ArgumentNullException.ThrowIfNull(student);
        ArgumentNullException.ThrowIfNull(optimizer);
        ArgumentNullException.ThrowIfNull(backend);
        if ((teacher is null) != (loss is null))
        {
            throw new ArgumentException("a distillation step needs both the teacher and the loss options; a plain step neither");
        }

        using var scope = TensorScope.Begin();
        var input = Tensor.FromHost(backend, shape, images);
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

        // Every term is checked before the backward pass and every gradient before the optimiser step: a non-finite
        // value stops the run here, with its name, instead of reaching the weights (and from there every later loss,
        // the checkpoint and best).
        var ce = Finite(crossEntropy.Item(), "the CE loss", diverged);
        var kdValue = kd is null ? 0 : Finite(kd.Item(), "the KD loss", diverged);
        var atValue = 0.0;
        for (var g = 0; g < at.Count; g++)
        {
            atValue += Finite(at[g].Item(), $"the AT loss of group {g + 1}", diverged);
        }

        var totalValue = Finite(total.Item(), "the total loss", diverged);

        optimizer.ZeroGrad();
        total.Backward();
        CheckGradients(student, backend, diverged);
        optimizer.Step();

        return new StepResult(totalValue, ce, kdValue, atValue, backend.CountCorrect(shape[0], student.Config.Classes, output.Logits.Storage, labels));
    }

    private static double Finite(float value, string term, Func<string, double, Exception>? diverged) =>
        diverged is null || float.IsFinite(value) ? value : throw diverged(term, value);

    /// <summary>
    /// Throws for the first parameter whose gradient holds a NaN or an infinity. The backend sums each gradient (a NaN or
    /// ∞ makes the sum non-finite; one scalar comes back per parameter); only a non-finite sum, which finite values can
    /// also give by overflowing, is confirmed element by element.
    /// </summary>
    private static void CheckGradients(WideResNet model, IBackend backend, Func<string, double, Exception>? diverged)
    {
        using var sum = backend.Allocate(1);
        Span<float> value = stackalloc float[1];
        foreach (var (name, parameter) in model.NamedParameters())
        {
            if (parameter.Gradient is not { } gradient)
            {
                continue;
            }

            backend.Sum(gradient, sum);
            backend.Download(sum, value);
            if (diverged is null || float.IsFinite(value[0]))
            {
                continue;
            }

            foreach (var element in parameter.GradientToArray())
            {
                if (!float.IsFinite(element))
                {
                    throw diverged($"the gradient of {name}", element);
                }
            }
        }
    }
}
