using CheapConv.Backends;
using CheapConv.Tests.Emulator;
using Xunit;

namespace CheapConv.Tests.Kernels;

/// <summary>
/// The Loss family's CUDA kernels, run by the emulator through GpuBackend (the C ABI's launchers, as on a GPU),
/// against the float64 reference. Outputs are poisoned with NaN before each run; every result is held
/// to the per-element bounds of <see cref="LossTolerance"/>. The backward passes run on the device's own saved
/// forward results, as training does, so their bounds include the forward's errors.
/// </summary>
public sealed class LossEmulatedTests(EmulatorFixture emulator) : IClassFixture<EmulatorFixture>, IDisposable
{
    private readonly GpuBackend _gpu = new(emulator.Device);

    public void Dispose()
    {
        _gpu.Dispose();
        Assert.Empty(emulator.Device.TakeWarnings());
    }

    /// <summary>(N, classes): a binary batch of 1, CIFAR-10 batches (2 and the training batch 128), CIFAR-100 with an odd batch, ImageNet classes.</summary>
    public static TheoryData<int, int> RowShapes() => new() { { 1, 2 }, { 2, 10 }, { 128, 10 }, { 7, 100 }, { 3, 1000 } };

    public static TheoryData<int, int, float> KdCases()
    {
        var data = new TheoryData<int, int, float>();
        foreach (var (n, classes) in new[] { (1, 2), (2, 10), (128, 10), (7, 100), (3, 1000) })
        {
            data.Add(n, classes, 1f);
            data.Add(n, classes, 4f);
        }

        return data;
    }

    /// <summary>The AT points of WRN-40-2 (REFERENCE.md: the three group outputs) at batch 2, and odd sizes.</summary>
    public static TheoryData<int, int, int, int> AtShapes() => new()
    {
        { TestCatalogue.EmulatorBatch, 32, 32, 32 },
        { TestCatalogue.EmulatorBatch, 64, 16, 16 },
        { TestCatalogue.EmulatorBatch, 128, 8, 8 },
        { 1, 3, 5, 7 },
        { 3, 5, 9, 4 },
        { 2, 1, 1, 1 },
    };

    [Fact]
    public void AtShapes_AreConvOutputsOfTheCatalogue()
    {
        // The three group outputs must be real shapes of the network the catalogue describes.
        var outputs = TestCatalogue.Real.Select(e => (e.Problem.K, e.Problem.P, e.Problem.Q)).ToHashSet();
        Assert.Contains((32, 32, 32), outputs);
        Assert.Contains((64, 16, 16), outputs);
        Assert.Contains((128, 8, 8), outputs);
    }

    [Theory]
    [MemberData(nameof(RowShapes))]
    public void CrossEntropy_RandomLogits_MatchesReference(int n, int classes)
    {
        var random = new Random(1000 * n + classes);
        var logits = LossTolerance.Uniform(random, n * classes, 8);
        var labels = LossTolerance.Labels(random, n, classes);
        CheckCrossEntropy(n, classes, logits, labels, dloss: 0.75f);
    }

    [Fact]
    public void CrossEntropy_HugeLogits_StayFiniteAndMatchReference()
    {
        // 80 + 8: exp of any of these overflows fp32; only x − max is ever exponentiated.
        var random = new Random(4);
        var logits = LossTolerance.Uniform(random, 4 * 10, 8).Select(v => v + 80f).ToArray();
        CheckCrossEntropy(4, 10, logits, LossTolerance.Labels(random, 4, 10), dloss: 1f);
    }

    [Fact]
    public void CrossEntropy_LabelsChangeBetweenBatches_UsesTheCurrentLabels()
    {
        // The device label buffer is reused, grown, and skipped when unchanged: each batch must see its own labels.
        var random = new Random(8);
        foreach (var n in new[] { 7, 128, 7, 128, 128 })
        {
            var logits = LossTolerance.Uniform(random, n * 10, 8);
            CheckCrossEntropy(n, 10, logits, LossTolerance.Labels(random, n, 10), dloss: 1f);
            using var x = Upload(logits);
            int[] threes = [.. Enumerable.Repeat(3, n)];
            Assert.Equal(CpuBackend.CountCorrect(n, 10, logits, threes), ((IBackend)_gpu).CountCorrect(n, 10, x, threes));
        }
    }

    [Theory]
    [MemberData(nameof(KdCases))]
    public void Kd_RandomLogits_MatchesReference(int n, int classes, float temperature)
    {
        var random = new Random(2000 * n + classes + (int)temperature);
        var student = LossTolerance.Uniform(random, n * classes, 8);
        var teacher = LossTolerance.Uniform(random, n * classes, 8);
        const float dloss = 0.9f;
        IBackend backend = _gpu;
        using var s = Upload(student);
        using var t = Upload(teacher);
        using var loss = Poisoned(1);
        using var ps = Poisoned(n * classes);
        using var pt = Poisoned(n * classes);
        using var dl = Upload([dloss]);
        using var ds = Poisoned(n * classes);
        backend.KdForward(n, classes, temperature, s, t, loss, ps, pt);
        backend.KdBackward(n, classes, temperature, ps, pt, dl, ds);

        double[] refLoss = new double[1], refPs = new double[n * classes], refPt = new double[n * classes], refDs = new double[n * classes];
        CpuBackend.KdForward(n, classes, temperature, LossTolerance.ToDouble(student), LossTolerance.ToDouble(teacher), refLoss, refPs, refPt);
        CpuBackend.KdBackward(n, classes, temperature, refPs, refPt, [dloss], refDs);

        double[] psBound = new double[n * classes], ptBound = new double[n * classes], dsBound = new double[n * classes];
        double rowBounds = 0, rowMagnitudes = 0;
        var eps = LossTolerance.Epsilon;
        for (var row = 0; row < n; row++)
        {
            var sRow = LossTolerance.Row(student.AsSpan(row * classes, classes), temperature);
            var tRow = LossTolerance.Row(teacher.AsSpan(row * classes, classes), temperature);
            double kl = 0, termMagnitudes = 0;
            for (var j = 0; j < classes; j++)
            {
                var i = row * classes + j;
                psBound[i] = sRow.ProbabilityRelative * refPs[i];
                ptBound[i] = tRow.ProbabilityRelative * refPt[i];
                dsBound[i] = ((sRow.ProbabilityRelative * refPs[i]) + (tRow.ProbabilityRelative * refPt[i]) + eps * Math.Abs(refPs[i] - refPt[i]))
                    * temperature * dloss / n + 3 * eps * Math.Abs(refDs[i]);
                var logS = student[i] / (double)temperature - sRow.Max - sRow.LogSum;
                var logT = teacher[i] / (double)temperature - tRow.Max - tRow.LogSum;
                var term = refPt[i] * (logT - logS);
                kl += term;
                termMagnitudes += Math.Abs(term);
            }

            // Σ_j p_t,j·(error of log p_t,j + error of log p_s,j) ≤ the two log bounds (Σ p_t = 1), plus the error of
            // p_t itself and of the sum, relative to Σ|terms|.
            rowBounds += sRow.LogRelativeAbsolute + tRow.LogRelativeAbsolute
                + (tRow.ProbabilityRelative + LossTolerance.Sum(classes) + eps) * termMagnitudes;
            rowMagnitudes += Math.Abs(kl);
        }

        var t2 = (double)temperature * temperature;
        var lossBound = t2 / n * (rowBounds + LossTolerance.Sum(n) * rowMagnitudes) + 3 * eps * Math.Abs(refLoss[0]);
        LossTolerance.AssertWithin("KD loss", Download(loss)[0], refLoss[0], lossBound);
        LossTolerance.AssertWithin("softmax(s/T)", Download(ps), refPs, psBound);
        LossTolerance.AssertWithin("softmax(t/T)", Download(pt), refPt, ptBound);
        LossTolerance.AssertWithin("dstudent", Download(ds), refDs, dsBound);
    }

    [Theory]
    [InlineData(1f)]
    [InlineData(4f)]
    public void Kd_IdenticalLogits_LossAndGradientAreExactlyZero(float temperature)
    {
        const int n = 7, classes = 100;
        var logits = LossTolerance.Uniform(new Random(6), n * classes, 8);
        IBackend backend = _gpu;
        using var s = Upload(logits);
        using var t = Upload(logits);
        using var loss = Poisoned(1);
        using var ps = Poisoned(n * classes);
        using var pt = Poisoned(n * classes);
        using var dl = Upload([1f]);
        using var ds = Poisoned(n * classes);
        backend.KdForward(n, classes, temperature, s, t, loss, ps, pt);
        backend.KdBackward(n, classes, temperature, ps, pt, dl, ds);
        Assert.Equal(0f, Download(loss)[0]);
        Assert.All(Download(ds), g => Assert.Equal(0f, g));
    }

    [Theory]
    [MemberData(nameof(AtShapes))]
    public void At_RandomActivations_MatchesReference(int n, int c, int h, int w)
    {
        var random = new Random(3000 * n + 31 * c + h * w);
        CheckAttentionTransfer(n, c, h, w, LossTolerance.Uniform(random, n * c * h * w, 1), LossTolerance.Uniform(random, n * c * h * w, 1));
    }

    [Fact]
    public void At_ZeroStudent_ClampsTheNorm()
    {
        const int n = 2, c = 5, h = 3, w = 4;
        CheckAttentionTransfer(n, c, h, w, new float[n * c * h * w], LossTolerance.Uniform(new Random(12), n * c * h * w, 1));
    }

    [Fact]
    public void At_IdenticalActivations_LossAndGradientAreExactlyZero()
    {
        const int n = 2, c = 64, h = 16, w = 16;
        var activations = LossTolerance.Uniform(new Random(13), n * c * h * w, 1);
        IBackend backend = _gpu;
        using var s = Upload(activations);
        using var t = Upload(activations);
        using var loss = Poisoned(1);
        using var qs = Poisoned(n * h * w);
        using var qt = Poisoned(n * h * w);
        using var norm = Poisoned(n);
        using var dl = Upload([1f]);
        using var ds = Poisoned(activations.Length);
        backend.AtForward(n, c, h, w, s, t, loss, qs, qt, norm);
        backend.AtBackward(n, c, h, w, s, qs, qt, norm, dl, ds);
        Assert.Equal(0f, Download(loss)[0]);
        Assert.All(Download(ds), g => Assert.Equal(0f, g));
    }

    [Fact]
    public void CountCorrect_TiesNaNAndBatchOfOne_MatchReference()
    {
        float[] logits =
        [
            1, 3, 3, 0, // tie between 1 and 2: argmax is 1
            5, 5, 5, 5, // all equal: argmax is 0
            -1, float.NaN, 7, float.NaN, // NaN is the largest, the first NaN wins
            0, 0, 0, 9,
        ];
        using var x = Upload(logits);
        IBackend backend = _gpu;
        Assert.Equal(4, backend.CountCorrect(4, 4, x, [1, 0, 1, 3]));
        Assert.Equal(0, backend.CountCorrect(4, 4, x, [2, 3, 3, 0]));
        using var one = Upload(logits[..4]);
        Assert.Equal(1, backend.CountCorrect(1, 4, one, [1]));
        Assert.Equal(0, backend.CountCorrect(1, 4, one, [2]));
    }

    [Theory]
    [MemberData(nameof(RowShapes))]
    public void CountCorrect_RandomLogits_MatchesReference(int n, int classes)
    {
        var random = new Random(4000 * n + classes);
        // Few distinct values, so ties are common and the first-index rule is exercised across lanes.
        var logits = LossTolerance.Uniform(random, n * classes, 3).Select(v => MathF.Round(v)).ToArray();
        var labels = LossTolerance.Labels(random, n, classes);
        using var x = Upload(logits);
        Assert.Equal(CpuBackend.CountCorrect(n, classes, logits, labels), ((IBackend)_gpu).CountCorrect(n, classes, x, labels));
    }

    [Theory]
    [InlineData(10, 3)]
    [InlineData(-1, 0)]
    public void Labels_OutOfRange_AreRefusedWithTheirValueAndIndex(int badLabel, int index)
    {
        var labels = new[] { 0, 1, 2, 3 };
        labels[index] = badLabel;
        IBackend backend = _gpu;
        using var logits = Poisoned(40);
        using var loss = Poisoned(1);
        using var p = Poisoned(40);
        var error = Assert.Throws<ArgumentException>(() => backend.CrossEntropyForward(4, 10, logits, labels, loss, p));
        Assert.Contains($"label {badLabel} at index {index}", error.Message);
        Assert.Contains("10 classes", error.Message);
        Assert.Throws<ArgumentException>(() => backend.CrossEntropyBackward(4, 10, p, labels, loss, p));
        Assert.Throws<ArgumentException>(() => backend.CountCorrect(4, 10, logits, labels));
        var lengthError = Assert.Throws<ArgumentException>(() => backend.CrossEntropyForward(4, 10, logits, [0, 1, 2], loss, p));
        Assert.Contains("3 labels for a batch of 4", lengthError.Message);
    }

    [Fact]
    public void Storages_OfTheWrongLength_AreRefusedByName()
    {
        IBackend backend = _gpu;
        using var s = Poisoned(2 * 3 * 4 * 5);
        using var loss = Poisoned(1);
        using var map = Poisoned(2 * 20);
        using var shortNorm = Poisoned(1);
        var error = Assert.Throws<ArgumentException>(() => backend.AtForward(2, 3, 4, 5, s, s, loss, map, map, shortNorm));
        Assert.Contains("studentNorm", error.Message);
    }

    private void CheckCrossEntropy(int n, int classes, float[] logits, int[] labels, float dloss)
    {
        IBackend backend = _gpu;
        using var x = Upload(logits);
        using var loss = Poisoned(1);
        using var p = Poisoned(n * classes);
        using var dl = Upload([dloss]);
        using var dx = Poisoned(n * classes);
        backend.CrossEntropyForward(n, classes, x, labels, loss, p);
        backend.CrossEntropyBackward(n, classes, p, labels, dl, dx);

        double[] refLoss = new double[1], refP = new double[n * classes], refDx = new double[n * classes];
        CpuBackend.CrossEntropyForward(n, classes, LossTolerance.ToDouble(logits), labels, refLoss, refP);
        CpuBackend.CrossEntropyBackward(n, classes, refP, labels, [dloss], refDx);

        var eps = LossTolerance.Epsilon;
        double[] pBound = new double[n * classes], dxBound = new double[n * classes];
        double rowBounds = 0, rowMagnitudes = 0;
        for (var row = 0; row < n; row++)
        {
            var stats = LossTolerance.Row(logits.AsSpan(row * classes, classes), 1.0);
            for (var j = 0; j < classes; j++)
            {
                var i = row * classes + j;
                var target = j == labels[row] ? 1.0 : 0.0;
                pBound[i] = stats.ProbabilityRelative * refP[i];
                dxBound[i] = (stats.ProbabilityRelative * refP[i] + eps * Math.Abs(refP[i] - target)) * dloss / n + 2 * eps * Math.Abs(refDx[i]);
            }

            // row = log S − (x_label − max): the log's error, the denominator's, the rounding of x_label − max and of the result.
            var rowLoss = stats.LogSum - (logits[row * classes + labels[row]] - stats.Max);
            rowBounds += stats.LogRelativeAbsolute + eps * Math.Abs(rowLoss);
            rowMagnitudes += Math.Abs(rowLoss);
        }

        var lossBound = (rowBounds + LossTolerance.Sum(n) * rowMagnitudes) / n + 2 * eps * Math.Abs(refLoss[0]);
        LossTolerance.AssertWithin("cross-entropy loss", Download(loss)[0], refLoss[0], lossBound);
        LossTolerance.AssertWithin("probabilities", Download(p), refP, pBound);
        LossTolerance.AssertWithin("dlogits", Download(dx), refDx, dxBound);
    }

    /// <summary>
    /// AT forward and backward against the float64 reference. Bounds: a map is a sum of C positive squares over C
    /// (δ_map = Sum(C) + ε); its norm a square root of HW positive squares (δ_norm = δ_map + Sum(HW)/2 + ε); a normalised
    /// value the quotient (δ_q = δ_map + δ_norm + ε). The loss then sums (q_s − q_t)², whose difference carries
    /// δ_q·(|q_s| + |q_t|). The backward's ∂L/∂map = k·((q_s − q_t) − q_s·D)/‖map‖ adds the error of the dot product
    /// D = ⟨q_s, q_s − q_t⟩, at most (4δ_q + 2·Sum(HW)) since Σ|q_s|(|q_s| + |q_t|) ≤ 2 for unit vectors.
    /// </summary>
    private void CheckAttentionTransfer(int n, int c, int h, int w, float[] student, float[] teacher)
    {
        int hw = h * w;
        const float dloss = 1.7f;
        IBackend backend = _gpu;
        using var s = Upload(student);
        using var t = Upload(teacher);
        using var loss = Poisoned(1);
        using var qs = Poisoned(n * hw);
        using var qt = Poisoned(n * hw);
        using var norm = Poisoned(n);
        using var dl = Upload([dloss]);
        using var ds = Poisoned(student.Length);
        backend.AtForward(n, c, h, w, s, t, loss, qs, qt, norm);
        backend.AtBackward(n, c, h, w, s, qs, qt, norm, dl, ds);

        var studentD = LossTolerance.ToDouble(student);
        double[] refLoss = new double[1], refQs = new double[n * hw], refQt = new double[n * hw], refNorm = new double[n], refDs = new double[student.Length];
        CpuBackend.AtForward(n, c, h, w, studentD, LossTolerance.ToDouble(teacher), refLoss, refQs, refQt, refNorm);
        CpuBackend.AtBackward(n, c, h, w, studentD, refQs, refQt, refNorm, [dloss], refDs);

        var eps = LossTolerance.Epsilon;
        var deltaMap = LossTolerance.Sum(c) + eps;
        var deltaNorm = deltaMap + LossTolerance.Sum(hw) / 2 + eps;
        var deltaQ = deltaMap + deltaNorm + eps;
        var k = 2.0 * dloss / ((double)n * hw);

        double[] qsBound = new double[n * hw], qtBound = new double[n * hw], normBound = new double[n], dsBound = new double[student.Length];
        double lossError = 0, squares = 0;
        for (var sample = 0; sample < n; sample++)
        {
            normBound[sample] = deltaNorm * refNorm[sample];
            double dot = 0;
            for (var i = sample * hw; i < (sample + 1) * hw; i++)
            {
                qsBound[i] = deltaQ * Math.Abs(refQs[i]);
                qtBound[i] = deltaQ * Math.Abs(refQt[i]);
                var d = refQs[i] - refQt[i];
                var differenceError = deltaQ * (Math.Abs(refQs[i]) + Math.Abs(refQt[i])) + eps * Math.Abs(d);
                lossError += 2 * Math.Abs(d) * differenceError + differenceError * differenceError;
                squares += d * d;
                dot += refQs[i] * d;
            }

            var clamped = refNorm[sample] < CpuBackend.AtNormEpsilon;
            var divisor = clamped ? CpuBackend.AtNormEpsilon : refNorm[sample];
            var projection = clamped ? 0 : dot;
            for (var ch = 0; ch < c; ch++)
            {
                for (var i = 0; i < hw; i++)
                {
                    var m = sample * hw + i;
                    var index = (sample * c + ch) * hw + i;
                    double qsAbs = Math.Abs(refQs[m]), qtAbs = Math.Abs(refQt[m]);
                    var dmapError = k / divisor * (deltaQ * (qsAbs + qtAbs) + qsAbs * (6 * deltaQ + 2 * LossTolerance.Sum(hw))
                        + (deltaNorm + 3 * eps) * (Math.Abs(refQs[m] - refQt[m]) + qsAbs * Math.Abs(projection)));
                    dsBound[index] = dmapError * 2 * Math.Abs(student[index]) / c + 3 * eps * Math.Abs(refDs[index]);
                }
            }
        }

        var lossBound = (lossError + (LossTolerance.Sum(hw) + LossTolerance.Sum(n) + 2 * eps) * squares) / ((double)n * hw);
        LossTolerance.AssertWithin("AT loss", Download(loss)[0], refLoss[0], lossBound);
        LossTolerance.AssertWithin("student map", Download(qs), refQs, qsBound);
        LossTolerance.AssertWithin("teacher map", Download(qt), refQt, qtBound);
        LossTolerance.AssertWithin("student map norm", Download(norm), refNorm, normBound);
        LossTolerance.AssertWithin("dstudent", Download(ds), refDs, dsBound);
    }

    private Storage Upload(float[] data) => _gpu.Upload(data);

    /// <summary>A storage filled with NaN (all bytes 0xFF), so an element a kernel forgets to write fails.</summary>
    private Storage Poisoned(long length)
    {
        var storage = (DeviceStorage)_gpu.Allocate(length);
        storage.Buffer.FillBytes(0xFF);
        return storage;
    }

    private float[] Download(Storage storage)
    {
        var data = new float[storage.Length];
        _gpu.Download(storage, data);
        return data;
    }
}
