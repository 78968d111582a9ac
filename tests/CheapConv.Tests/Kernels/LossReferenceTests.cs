using CheapConv.Backends;
using Xunit;

namespace CheapConv.Tests.Kernels;

/// <summary>
/// Keeps the Loss family's C# reference honest with oracles that do not share its code: central finite
/// differences of each forward pass in float64 for every backward pass, hand-computed examples, and the
/// invariants (KD and AT of identical inputs are exactly 0; argmax ties go to the first class).
/// </summary>
public class LossReferenceTests
{
    public static TheoryData<int, int> SmallRows() => new() { { 1, 2 }, { 3, 5 }, { 4, 10 }, { 2, 33 } };

    public static TheoryData<int, int, int, int> SmallActivations() => new()
    {
        { 1, 3, 5, 7 },
        { 2, 4, 3, 3 },
        { 2, 1, 2, 2 },
        { 3, 2, 1, 4 },
    };

    [Theory]
    [MemberData(nameof(SmallRows))]
    public void CrossEntropyGradient_RandomLogits_MatchesFiniteDifferences(int n, int classes)
    {
        var random = new Random(11 * n + classes);
        var logits = LossTolerance.ToDouble(LossTolerance.Uniform(random, n * classes, 4));
        var labels = LossTolerance.Labels(random, n, classes);
        const double dloss = 0.7;

        double Loss()
        {
            var loss = new double[1];
            CpuBackend.CrossEntropyForward(n, classes, logits, labels, loss, new double[n * classes]);
            return dloss * loss[0];
        }

        var probabilities = new double[n * classes];
        CpuBackend.CrossEntropyForward(n, classes, logits, labels, new double[1], probabilities);
        var gradient = new double[n * classes];
        CpuBackend.CrossEntropyBackward(n, classes, probabilities, labels, [dloss], gradient);
        AssertMatchesFiniteDifferences(logits, gradient, Loss, "dlogits");
    }

    [Theory]
    [InlineData(1, 4, 1.0)]
    [InlineData(3, 10, 1.0)]
    [InlineData(1, 4, 4.0)]
    [InlineData(3, 10, 4.0)]
    [InlineData(2, 33, 4.0)]
    public void KdGradient_RandomLogits_MatchesFiniteDifferences(int n, int classes, double temperature)
    {
        var random = new Random(13 * n + classes);
        var student = LossTolerance.ToDouble(LossTolerance.Uniform(random, n * classes, 6));
        var teacher = LossTolerance.ToDouble(LossTolerance.Uniform(random, n * classes, 6));
        const double dloss = 1.3;

        double Loss()
        {
            var loss = new double[1];
            CpuBackend.KdForward(n, classes, temperature, student, teacher, loss, new double[n * classes], new double[n * classes]);
            return dloss * loss[0];
        }

        double[] studentSoft = new double[n * classes], teacherSoft = new double[n * classes];
        CpuBackend.KdForward(n, classes, temperature, student, teacher, new double[1], studentSoft, teacherSoft);
        var gradient = new double[n * classes];
        CpuBackend.KdBackward(n, classes, temperature, studentSoft, teacherSoft, [dloss], gradient);
        AssertMatchesFiniteDifferences(student, gradient, Loss, "dstudent");
    }

    [Theory]
    [MemberData(nameof(SmallActivations))]
    public void AtGradient_RandomActivations_MatchesFiniteDifferences(int n, int c, int h, int w)
    {
        var random = new Random(17 * n + 5 * c + h * w);
        var student = LossTolerance.ToDouble(LossTolerance.Uniform(random, n * c * h * w, 1));
        var teacher = LossTolerance.ToDouble(LossTolerance.Uniform(random, n * c * h * w, 1));
        const double dloss = 0.9;
        int hw = h * w;

        double Loss()
        {
            var loss = new double[1];
            CpuBackend.AtForward(n, c, h, w, student, teacher, loss, new double[n * hw], new double[n * hw], new double[n]);
            return dloss * loss[0];
        }

        double[] studentMap = new double[n * hw], teacherMap = new double[n * hw], norm = new double[n];
        CpuBackend.AtForward(n, c, h, w, student, teacher, new double[1], studentMap, teacherMap, norm);
        var gradient = new double[student.Length];
        CpuBackend.AtBackward(n, c, h, w, student, studentMap, teacherMap, norm, [dloss], gradient);
        AssertMatchesFiniteDifferences(student, gradient, Loss, "dstudent");
    }

    [Fact]
    public void CrossEntropy_HandComputedExample_Matches()
    {
        // logits (0, ln 3): softmax = (1/4, 3/4); label 1 costs −ln(3/4); label 0 costs −ln(1/4).
        double[] logits = [0, Math.Log(3), 0, Math.Log(3)];
        double[] loss = new double[1], p = new double[4];
        CpuBackend.CrossEntropyForward(2, 2, logits, [1, 0], loss, p);
        Assert.Equal((-Math.Log(0.75) - Math.Log(0.25)) / 2, loss[0], 14);
        Assert.Equal([0.25, 0.75, 0.25, 0.75], p.Select(v => Math.Round(v, 14)));
    }

    [Fact]
    public void CrossEntropy_HugeLogits_StayFinite()
    {
        // exp(1000) overflows any float; the log-sum-exp form only ever exponentiates x − max ≤ 0.
        float[] shifted = [1000f, 1001f, 999f], plain = [0f, 1f, -1f];
        float[] a = new float[1], b = new float[1];
        CpuBackend.CrossEntropyForward(1, 3, shifted, [2], a, new float[3]);
        CpuBackend.CrossEntropyForward(1, 3, plain, [2], b, new float[3]);
        Assert.True(float.IsFinite(a[0]));
        Assert.Equal(b[0], a[0], 5);
    }

    [Fact]
    public void Kd_HandComputedExample_Matches()
    {
        // T = 2: student (0, 0) → (1/2, 1/2); teacher (0, 2 ln 3) → softmax(0, ln 3) = (1/4, 3/4).
        // KL = 1/4 ln(1/2) + 3/4 ln(3/2); the loss is T²·KL for the one row.
        double[] student = [0, 0], teacher = [0, 2 * Math.Log(3)];
        double[] loss = new double[1], ps = new double[2], pt = new double[2];
        CpuBackend.KdForward(1, 2, 2.0, student, teacher, loss, ps, pt);
        Assert.Equal(4 * (0.25 * Math.Log(0.5) + 0.75 * Math.Log(1.5)), loss[0], 14);
        Assert.Equal(0.75, pt[1], 14);
        Assert.Equal(0.5, ps[0], 14);
    }

    [Theory]
    [InlineData(1.0f)]
    [InlineData(4.0f)]
    public void Kd_IdenticalLogits_LossAndGradientAreExactlyZero(float temperature)
    {
        var logits = LossTolerance.Uniform(new Random(3), 5 * 10, 8);
        float[] loss = [float.NaN], ps = new float[50], pt = new float[50], gradient = new float[50];
        CpuBackend.KdForward(5, 10, temperature, logits, (float[])logits.Clone(), loss, ps, pt);
        CpuBackend.KdBackward(5, 10, temperature, ps, pt, [1f], gradient);
        Assert.Equal(0f, loss[0]);
        Assert.All(gradient, g => Assert.Equal(0f, g));
    }

    [Fact]
    public void At_HandComputedExample_Matches()
    {
        // N = C = H = 1, W = 2: student (2, 0) → map (4, 0) → q (1, 0); teacher (0, 3) → q (0, 1);
        // loss = mean over 2 positions of (1² + 1²) = 1, and ‖map_s‖ = 4.
        double[] loss = new double[1], qs = new double[2], qt = new double[2], norm = new double[1];
        CpuBackend.AtForward(1, 1, 1, 2, [2.0, 0.0], [0.0, 3.0], loss, qs, qt, norm);
        Assert.Equal(1.0, loss[0], 14);
        Assert.Equal([1.0, 0.0], qs);
        Assert.Equal([0.0, 1.0], qt);
        Assert.Equal(4.0, norm[0], 14);
    }

    [Fact]
    public void At_IdenticalActivations_LossAndGradientAreExactlyZero()
    {
        const int n = 2, c = 3, h = 4, w = 5;
        var activations = LossTolerance.Uniform(new Random(5), n * c * h * w, 1);
        float[] loss = [float.NaN], qs = new float[n * h * w], qt = new float[n * h * w], norm = new float[n], gradient = new float[activations.Length];
        CpuBackend.AtForward(n, c, h, w, activations, (float[])activations.Clone(), loss, qs, qt, norm);
        CpuBackend.AtBackward(n, c, h, w, activations, qs, qt, norm, [1f], gradient);
        Assert.Equal(0f, loss[0]);
        Assert.All(gradient, g => Assert.Equal(0f, g));
    }

    [Fact]
    public void At_ZeroStudent_ClampsTheNormAndGivesZeroGradient()
    {
        // ‖map_s‖ = 0 < eps: q_s = 0 / eps = 0, so the loss is mean(q_t²) = 1/(H·W) (each q_t has unit norm), and
        // the gradient 2a/C · ∂L/∂map vanishes with a = 0, as PyTorch's does.
        const int n = 2, c = 3, h = 2, w = 3;
        var teacher = LossTolerance.ToDouble(LossTolerance.Uniform(new Random(9), n * c * h * w, 1));
        var student = new double[teacher.Length];
        double[] loss = new double[1], qs = new double[n * h * w], qt = new double[n * h * w], norm = new double[n], gradient = new double[teacher.Length];
        CpuBackend.AtForward(n, c, h, w, student, teacher, loss, qs, qt, norm);
        CpuBackend.AtBackward(n, c, h, w, student, qs, qt, norm, [1.0], gradient);
        Assert.Equal(1.0 / (h * w), loss[0], 14);
        Assert.All(norm, v => Assert.Equal(0.0, v));
        Assert.All(gradient, g => Assert.Equal(0.0, g));
    }

    [Fact]
    public void CountCorrect_TiesNaNAndBatchOfOne_FollowArgmax()
    {
        float[] logits =
        [
            1, 3, 3, 0, // tie between 1 and 2: argmax is 1
            5, 5, 5, 5, // all equal: argmax is 0
            -1, float.NaN, 7, float.NaN, // NaN is the largest, the first NaN wins
            0, 0, 0, 9, // plain
        ];
        Assert.Equal(4, CpuBackend.CountCorrect(4, 4, logits, [1, 0, 1, 3]));
        Assert.Equal(0, CpuBackend.CountCorrect(4, 4, logits, [2, 3, 3, 0]));
        Assert.Equal(1, CpuBackend.CountCorrect(1, 4, logits[..4], [1]));
        Assert.Equal(0, CpuBackend.CountCorrect(1, 4, logits[..4], [2]));
    }

    [Theory]
    [InlineData(10, 3)]
    [InlineData(-1, 0)]
    public void Labels_OutOfRange_AreRefusedWithTheirValueAndIndex(int badLabel, int index)
    {
        IBackend backend = new CpuBackend();
        var labels = new[] { 0, 1, 2, 3 };
        labels[index] = badLabel;
        using var logits = backend.Allocate(40);
        using var loss = backend.Allocate(1);
        using var p = backend.Allocate(40);
        var error = Assert.Throws<ArgumentException>(() => backend.CrossEntropyForward(4, 10, logits, labels, loss, p));
        Assert.Contains($"label {badLabel} at index {index}", error.Message);
        Assert.Contains("10 classes", error.Message);
        Assert.Throws<ArgumentException>(() => backend.CountCorrect(4, 10, logits, labels));
    }

    [Theory]
    [InlineData(0f)]
    [InlineData(-1f)]
    [InlineData(float.NaN)]
    public void Kd_NonPositiveTemperature_IsRefused(float temperature) =>
        Assert.Throws<ArgumentOutOfRangeException>(() => CpuBackend.KdForward(1, 2, temperature, new float[2], new float[2], new float[1], new float[2], new float[2]));

    /// <summary>Central differences (step 1e-5) of <paramref name="loss"/> in every entry of <paramref name="variable"/>.</summary>
    private static void AssertMatchesFiniteDifferences(double[] variable, double[] gradient, Func<double> loss, string name)
    {
        // Truncation error ~ step²·|f'''|/6 ≈ 1e-11 and rounding ~ 1e-16·|L|/step ≈ 1e-11 for these O(1) losses:
        // 1e-8 + 1e-6 relative is far above both and far below any wrong factor or missing term.
        const double step = 1e-5;
        for (var i = 0; i < variable.Length; i++)
        {
            var saved = variable[i];
            variable[i] = saved + step;
            var plus = loss();
            variable[i] = saved - step;
            var minus = loss();
            variable[i] = saved;
            var numeric = (plus - minus) / (2 * step);
            Assert.True(Math.Abs(numeric - gradient[i]) <= 1e-8 + 1e-6 * Math.Abs(gradient[i]),
                $"{name}[{i}]: analytic {gradient[i]:R} vs finite differences {numeric:R}");
        }
    }
}
