namespace CheapConv.Autograd;

/// <summary>The weights of the distillation loss; defaults are the fixture values of models.md.</summary>
/// <param name="Alpha">Weight of KD; CE gets 1 − α. 0 turns KD off (the AT rows of the paper).</param>
/// <param name="Temperature">KD temperature T.</param>
/// <param name="Beta">Weight of each AT term (REFERENCE's 3β/L with L = 3 points).</param>
public sealed record DistillationOptions(float Alpha = 0.9f, float Temperature = 4f, float Beta = 1e3f);

/// <summary>The total loss and its parts (for logging); <see cref="Total"/> is the one to call Backward on.</summary>
public sealed record DistillationLossParts(Tensor Total, Tensor CrossEntropy, Tensor? KnowledgeDistillation, IReadOnlyList<Tensor> AttentionTransfer);

/// <summary>
/// total = (1−α)·CE(student, labels) + α·KD(student, teacher; T) + β·Σ_g AT(student group g, teacher group g):
/// a composition of primitives, so its gradient is theirs. Terms whose weight is 0 are not computed.
/// </summary>
public static class DistillationLoss
{
    /// <summary>The loss of one batch; the teacher tensors must come from a no-grad forward pass.</summary>
    public static DistillationLossParts Compute(Tensor studentLogits, Tensor teacherLogits, ReadOnlySpan<int> labels,
        IReadOnlyList<Tensor> studentGroups, IReadOnlyList<Tensor> teacherGroups, DistillationOptions options)
    {
        if (studentGroups.Count != teacherGroups.Count)
        {
            throw new ArgumentException($"attention transfer pairs {studentGroups.Count} student activations with {teacherGroups.Count} teacher activations");
        }

        List<Tensor> terms = [];
        List<float> weights = [];
        var crossEntropy = Ops.CrossEntropy(studentLogits, labels);
        if (options.Alpha != 1f)
        {
            terms.Add(crossEntropy);
            weights.Add(1f - options.Alpha);
        }

        Tensor? kd = null;
        if (options.Alpha != 0f)
        {
            kd = Ops.KnowledgeDistillation(studentLogits, teacherLogits, options.Temperature);
            terms.Add(kd);
            weights.Add(options.Alpha);
        }

        List<Tensor> at = [];
        if (options.Beta != 0f)
        {
            for (var g = 0; g < studentGroups.Count; g++)
            {
                var term = Ops.AttentionTransfer(studentGroups[g], teacherGroups[g]);
                at.Add(term);
                terms.Add(term);
                weights.Add(options.Beta);
            }
        }

        return new DistillationLossParts(Ops.WeightedSum(terms, weights), crossEntropy, kd, at);
    }
}
