using CheapConv.Autograd.Functions;

namespace CheapConv.Autograd;

/// <summary>
/// The differentiable operations, one line each over the primitives of <see cref="Functions"/>: what modules,
/// models and losses are written in.
/// </summary>
public static class Ops
{
    /// <summary>Convolution without bias (w is K×(C/groups)×R×S).</summary>
    public static Tensor Conv2d(Tensor x, Tensor w, int stride = 1, int pad = 0, int groups = 1) =>
        Conv2dFunction.Apply(x, w, stride, pad, groups);

    /// <summary>Training-mode batch norm; updates the running statistics.</summary>
    public static Tensor BatchNormTrain(Tensor x, Tensor gamma, Tensor beta, Tensor runningMean, Tensor runningVar, float momentum, float eps) =>
        BatchNormTrainFunction.Apply(x, gamma, beta, runningMean, runningVar, momentum, eps, relu: false);

    /// <summary>Fused relu(training-mode batch norm); updates the running statistics.</summary>
    public static Tensor BatchNormReluTrain(Tensor x, Tensor gamma, Tensor beta, Tensor runningMean, Tensor runningVar, float momentum, float eps) =>
        BatchNormTrainFunction.Apply(x, gamma, beta, runningMean, runningVar, momentum, eps, relu: true);

    /// <summary>Eval-mode batch norm (running statistics), optionally fused with a ReLU.</summary>
    public static Tensor BatchNormEval(Tensor x, Tensor gamma, Tensor beta, Tensor runningMean, Tensor runningVar, float eps, bool relu = false) =>
        BatchNormEvalFunction.Apply(x, gamma, beta, runningMean, runningVar, eps, relu);

    /// <summary>max(x, 0).</summary>
    public static Tensor Relu(Tensor x) => ReluFunction.Apply(x);

    /// <summary>a + b.</summary>
    public static Tensor Add(Tensor a, Tensor b) => AddFunction.Apply(a, b);

    /// <summary>N×C×H×W → N×C means.</summary>
    public static Tensor GlobalAvgPool(Tensor x) => GlobalAvgPoolFunction.Apply(x);

    /// <summary>Zero padding of the spatial dimensions.</summary>
    public static Tensor ZeroPad(Tensor x, int top, int bottom, int left, int right) => ZeroPadFunction.Apply(x, top, bottom, left, right);

    /// <summary>x·wᵀ + b.</summary>
    public static Tensor Linear(Tensor x, Tensor w, Tensor b) => LinearFunction.Apply(x, w, b);

    /// <summary>Mean softmax cross-entropy with integer labels.</summary>
    public static Tensor CrossEntropy(Tensor logits, ReadOnlySpan<int> labels) => CrossEntropyFunction.Apply(logits, labels);

    /// <summary>KD loss (corrected form, × T²) of student logits against constant teacher logits.</summary>
    public static Tensor KnowledgeDistillation(Tensor student, Tensor teacher, float temperature) => KdFunction.Apply(student, teacher, temperature);

    /// <summary>AT loss of one activation pair (teacher constant).</summary>
    public static Tensor AttentionTransfer(Tensor student, Tensor teacher) => AtFunction.Apply(student, teacher);

    /// <summary>alpha·x.</summary>
    public static Tensor Scale(Tensor x, float alpha) => WeightedSumFunction.Apply([x], [alpha]);

    /// <summary>Σ wᵢ·xᵢ.</summary>
    public static Tensor WeightedSum(IReadOnlyList<Tensor> terms, IReadOnlyList<float> weights) => WeightedSumFunction.Apply(terms, weights);
}
