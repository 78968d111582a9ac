using CheapConv.Autograd;
using CheapConv.Backends;
using CheapConv.Problems;
using Xunit;

namespace CheapConv.Tests.Autograd;

/// <summary>
/// Each primitive's forward and backward give exactly (bit for bit) what the backend's ops give when called
/// directly with the same operands: the wiring of shapes, saved tensors and argument order. The ops' maths
/// is checked by the backend's own tests (finite differences, emulator vs reference).
/// </summary>
public class PrimitiveWiringTests
{
    private readonly IBackend _b = new CpuBackend();

    private Storage Up(float[] data) => _b.Upload(data);

    private float[] Read(Storage s) => TensorAssert.Read(_b, s);

    private float[] Run(long length, Action<Storage> op)
    {
        var result = _b.Allocate(length);
        op(result);
        return Read(result);
    }

    [Theory]
    [InlineData(2, 4, 5, 5, 6, 3, 2, 1, 2)]
    [InlineData(2, 3, 7, 6, 5, 1, 2, 0, 1)]
    [InlineData(1, 6, 4, 4, 6, 3, 1, 1, 6)]
    public void Conv2d_ForwardAndBackward_AreTheBackendOps(int n, int c, int h, int w, int k, int r, int stride, int pad, int groups)
    {
        using var scope = TensorScope.Begin();
        var problem = ConvProblem.Create(n, c, h, w, k, r, r, stride, pad, groups);
        float[] xv = TensorAssert.Random(problem.InputElements, 1), wv = TensorAssert.Random(problem.WeightElements, 2), dyv = TensorAssert.Random(problem.OutputElements, 3);
        var x = Tensor.FromHost(_b, problem.InputShape, xv, requiresGrad: true);
        var weight = Tensor.Parameter(_b, problem.WeightShape, wv);
        var y = Ops.Conv2d(x, weight, stride, pad, groups);
        Assert.Equal(problem.OutputShape, y.Shape);
        y.Backward(Up(dyv));

        TensorAssert.Identical(Run(problem.OutputElements, o => _b.Conv2dForward(problem, Up(xv), Up(wv), o)), y.ToArray(), "y");
        TensorAssert.Identical(Run(problem.InputElements, o => _b.Conv2dBackwardData(problem, Up(dyv), Up(wv), o)), x.GradientToArray(), "dx");
        TensorAssert.Identical(Run(problem.WeightElements, o => _b.Conv2dBackwardWeight(problem, Up(xv), Up(dyv), o)), weight.GradientToArray(), "dw");
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void BatchNormTrain_ForwardBackwardAndRunningStats_AreTheBackendOps(bool relu)
    {
        const int n = 2, c = 3, h = 4, w = 5;
        const float momentum = 0.1f, eps = 1e-5f;
        using var scope = TensorScope.Begin();
        float[] xv = TensorAssert.Random(n * c * h * w, 1), gv = TensorAssert.Random(c, 2), bv = TensorAssert.Random(c, 3), dyv = TensorAssert.Random(n * c * h * w, 4);
        float[] mean0 = TensorAssert.Random(c, 5), var0 = [0.5f, 1f, 2f];
        var x = Tensor.FromHost(_b, [n, c, h, w], xv, requiresGrad: true);
        Tensor gamma = Tensor.Parameter(_b, [c], gv), beta = Tensor.Parameter(_b, [c], bv);
        Tensor runningMean = Tensor.Buffer(_b, [c], mean0), runningVar = Tensor.Buffer(_b, [c], var0);
        var y = relu
            ? Ops.BatchNormReluTrain(x, gamma, beta, runningMean, runningVar, momentum, eps)
            : Ops.BatchNormTrain(x, gamma, beta, runningMean, runningVar, momentum, eps);
        y.Backward(Up(dyv));

        Storage refY = _b.Allocate(xv.Length), refMean = _b.Allocate(c), refInvStd = _b.Allocate(c), refRm = Up(mean0), refRv = Up(var0);
        Storage refDx = _b.Allocate(xv.Length), refDg = _b.Allocate(c), refDb = _b.Allocate(c);
        if (relu)
        {
            _b.BatchNormReluTrainForward(n, c, h, w, Up(xv), Up(gv), Up(bv), refRm, refRv, momentum, eps, refY, refMean, refInvStd);
            _b.BatchNormReluBackward(n, c, h, w, Up(xv), Up(dyv), Up(gv), Up(bv), refMean, refInvStd, refDx, refDg, refDb);
        }
        else
        {
            _b.BatchNormTrainForward(n, c, h, w, Up(xv), Up(gv), Up(bv), refRm, refRv, momentum, eps, refY, refMean, refInvStd);
            _b.BatchNormBackward(n, c, h, w, Up(xv), Up(dyv), Up(gv), refMean, refInvStd, refDx, refDg, refDb);
        }

        TensorAssert.Identical(Read(refY), y.ToArray(), "y");
        TensorAssert.Identical(Read(refRm), runningMean.ToArray(), "running mean");
        TensorAssert.Identical(Read(refRv), runningVar.ToArray(), "running var");
        TensorAssert.Identical(Read(refDx), x.GradientToArray(), "dx");
        TensorAssert.Identical(Read(refDg), gamma.GradientToArray(), "dgamma");
        TensorAssert.Identical(Read(refDb), beta.GradientToArray(), "dbeta");
        Assert.Null(runningMean.Gradient);
        Assert.Null(runningVar.Gradient);
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void BatchNormEval_ForwardIsTheBackendOp_BackwardIsTheClosedForm(bool relu)
    {
        // Eval-mode backward has no kernel; it is composed from ops (see BatchNormEvalFunction). Checked against
        // dx = γ·m·dy/σ, dγ = Σ m·dy·(x − μ)/σ, dβ = Σ m·dy in float64, m the ReLU mask (1 without ReLU).
        // Tolerance: each value is a float32 result of at most M = N·H·W = 40 terms: ε·(4 + 2√M)·Σ|terms|.
        const int n = 2, c = 3, h = 4, w = 5;
        const float eps = 1e-5f;
        using var scope = TensorScope.Begin();
        float[] xv = TensorAssert.Random(n * c * h * w, 1), gv = TensorAssert.Random(c, 2), bv = TensorAssert.Random(c, 3), dyv = TensorAssert.Random(n * c * h * w, 4);
        float[] mean = [0.1f, -0.2f, 0.3f], variance = [0.5f, 1f, 2f];
        var x = Tensor.FromHost(_b, [n, c, h, w], xv, requiresGrad: true);
        Tensor gamma = Tensor.Parameter(_b, [c], gv), beta = Tensor.Parameter(_b, [c], bv);
        var y = Ops.BatchNormEval(x, gamma, beta, Tensor.Buffer(_b, [c], mean), Tensor.Buffer(_b, [c], variance), eps, relu);
        y.Backward(Up(dyv));

        var refY = _b.Allocate(xv.Length);
        if (relu)
        {
            _b.BatchNormReluEvalForward(n, c, h, w, Up(xv), Up(gv), Up(bv), Up(mean), Up(variance), eps, refY);
        }
        else
        {
            _b.BatchNormEvalForward(n, c, h, w, Up(xv), Up(gv), Up(bv), Up(mean), Up(variance), eps, refY);
        }

        var yv = Read(refY);
        TensorAssert.Identical(yv, y.ToArray(), "y");
        double[] dx = new double[xv.Length], dg = new double[c], db = new double[c], dgAbs = new double[c], dbAbs = new double[c];
        for (var i = 0; i < xv.Length; i++)
        {
            var ch = i / (h * w) % c;
            var invStd = 1 / Math.Sqrt(variance[ch] + (double)eps);
            double dy = relu && !(yv[i] > 0) ? 0 : dyv[i], xhat = (xv[i] - mean[ch]) * invStd;
            dx[i] = gv[ch] * invStd * dy;
            dg[ch] += dy * xhat;
            dgAbs[ch] += Math.Abs(dy * xhat);
            db[ch] += dy;
            dbAbs[ch] += Math.Abs(dy);
        }

        var bound = Math.Pow(2, -24) * (4 + 2 * Math.Sqrt(n * h * w));
        AssertWithin(dx, x.GradientToArray(), dx.Select(v => Math.Abs(v) * bound).ToArray(), "dx");
        AssertWithin(dg, gamma.GradientToArray(), dgAbs.Select(v => v * bound).ToArray(), "dgamma");
        AssertWithin(db, beta.GradientToArray(), dbAbs.Select(v => v * bound).ToArray(), "dbeta");
    }

    [Fact]
    public void Relu_ForwardAndBackward_AreTheBackendOps()
    {
        using var scope = TensorScope.Begin();
        float[] xv = TensorAssert.Random(30, 1), dyv = TensorAssert.Random(30, 2);
        var x = Tensor.FromHost(_b, [2, 3, 5], xv, requiresGrad: true);
        var y = Ops.Relu(x);
        y.Backward(Up(dyv));
        var refY = Run(30, o => _b.ReluForward(30, Up(xv), o));
        TensorAssert.Identical(refY, y.ToArray(), "y");
        TensorAssert.Identical(Run(30, o => _b.ReluBackward(30, Up(refY), Up(dyv), o)), x.GradientToArray(), "dx");
    }

    [Fact]
    public void Add_ForwardIsTheBackendOp_BothInputsGetDy()
    {
        using var scope = TensorScope.Begin();
        float[] av = TensorAssert.Random(24, 1), bv = TensorAssert.Random(24, 2), dyv = TensorAssert.Random(24, 3);
        var a = Tensor.FromHost(_b, [2, 3, 2, 2], av, requiresGrad: true);
        var b = Tensor.FromHost(_b, [2, 3, 2, 2], bv, requiresGrad: true);
        var y = Ops.Add(a, b);
        y.Backward(Up(dyv));
        TensorAssert.Identical(Run(24, o => _b.Add(24, Up(av), Up(bv), o)), y.ToArray(), "y");
        TensorAssert.Identical(dyv, a.GradientToArray(), "da");
        TensorAssert.Identical(dyv, b.GradientToArray(), "db");
        Assert.NotSame(a.Gradient, b.Gradient);
    }

    [Fact]
    public void GlobalAvgPool_ForwardAndBackward_AreTheBackendOps()
    {
        using var scope = TensorScope.Begin();
        float[] xv = TensorAssert.Random(2 * 3 * 4 * 5, 1), dyv = TensorAssert.Random(6, 2);
        var x = Tensor.FromHost(_b, [2, 3, 4, 5], xv, requiresGrad: true);
        var y = Ops.GlobalAvgPool(x);
        Assert.Equal([2, 3], y.Shape);
        y.Backward(Up(dyv));
        TensorAssert.Identical(Run(6, o => _b.GlobalAvgPoolForward(2, 3, 4, 5, Up(xv), o)), y.ToArray(), "y");
        TensorAssert.Identical(Run(xv.Length, o => _b.GlobalAvgPoolBackward(2, 3, 4, 5, Up(dyv), o)), x.GradientToArray(), "dx");
    }

    [Fact]
    public void ZeroPad_ForwardAndBackward_AreTheBackendOps()
    {
        using var scope = TensorScope.Begin();
        float[] xv = TensorAssert.Random(2 * 3 * 4 * 5, 1), dyv = TensorAssert.Random(2 * 3 * 7 * 9, 2);
        var x = Tensor.FromHost(_b, [2, 3, 4, 5], xv, requiresGrad: true);
        var y = Ops.ZeroPad(x, 1, 2, 3, 1);
        Assert.Equal([2, 3, 7, 9], y.Shape);
        y.Backward(Up(dyv));
        TensorAssert.Identical(Run(dyv.Length, o => _b.ZeroPadForward(2, 3, 4, 5, 1, 2, 3, 1, Up(xv), o)), y.ToArray(), "y");
        TensorAssert.Identical(Run(xv.Length, o => _b.ZeroPadBackward(2, 3, 4, 5, 1, 2, 3, 1, Up(dyv), o)), x.GradientToArray(), "dx");
    }

    [Fact]
    public void Linear_ForwardAndBackward_AreTheBackendOps()
    {
        const int n = 3, inF = 5, outF = 4;
        using var scope = TensorScope.Begin();
        float[] xv = TensorAssert.Random(n * inF, 1), wv = TensorAssert.Random(outF * inF, 2), bv = TensorAssert.Random(outF, 3), dyv = TensorAssert.Random(n * outF, 4);
        var x = Tensor.FromHost(_b, [n, inF], xv, requiresGrad: true);
        Tensor weight = Tensor.Parameter(_b, [outF, inF], wv), bias = Tensor.Parameter(_b, [outF], bv);
        var y = Ops.Linear(x, weight, bias);
        y.Backward(Up(dyv));
        TensorAssert.Identical(Run(n * outF, o => _b.LinearForward(n, inF, outF, Up(xv), Up(wv), Up(bv), o)), y.ToArray(), "y");
        TensorAssert.Identical(Run(n * inF, o => _b.LinearBackwardData(n, inF, outF, Up(dyv), Up(wv), o)), x.GradientToArray(), "dx");
        TensorAssert.Identical(Run(outF * inF, o => _b.LinearBackwardWeight(n, inF, outF, Up(xv), Up(dyv), o)), weight.GradientToArray(), "dw");
        TensorAssert.Identical(Run(outF, o => _b.LinearBackwardBias(n, outF, Up(dyv), o)), bias.GradientToArray(), "db");
    }

    [Fact]
    public void CrossEntropy_ForwardAndBackward_AreTheBackendOps()
    {
        const int n = 3, classes = 4;
        int[] labels = [2, 0, 3];
        using var scope = TensorScope.Begin();
        var lv = TensorAssert.Random(n * classes, 1);
        var logits = Tensor.FromHost(_b, [n, classes], lv, requiresGrad: true);
        var loss = Ops.CrossEntropy(logits, labels);
        loss.Backward();
        Storage refLoss = _b.Allocate(1), probabilities = _b.Allocate(n * classes);
        _b.CrossEntropyForward(n, classes, Up(lv), labels, refLoss, probabilities);
        TensorAssert.Identical(Read(refLoss), loss.ToArray(), "loss");
        TensorAssert.Identical(Run(n * classes, o => _b.CrossEntropyBackward(n, classes, probabilities, labels, Up([1f]), o)), logits.GradientToArray(), "dlogits");
    }

    [Fact]
    public void Kd_ForwardAndBackward_AreTheBackendOps_TeacherGetsNoGradient()
    {
        const int n = 3, classes = 4;
        const float temperature = 4f;
        using var scope = TensorScope.Begin();
        float[] sv = TensorAssert.Random(n * classes, 1), tv = TensorAssert.Random(n * classes, 2);
        var student = Tensor.FromHost(_b, [n, classes], sv, requiresGrad: true);
        var teacher = Tensor.FromHost(_b, [n, classes], tv);
        var loss = Ops.KnowledgeDistillation(student, teacher, temperature);
        loss.Backward();
        Storage refLoss = _b.Allocate(1), ss = _b.Allocate(n * classes), ts = _b.Allocate(n * classes);
        _b.KdForward(n, classes, temperature, Up(sv), Up(tv), refLoss, ss, ts);
        TensorAssert.Identical(Read(refLoss), loss.ToArray(), "loss");
        TensorAssert.Identical(Run(n * classes, o => _b.KdBackward(n, classes, temperature, ss, ts, Up([1f]), o)), student.GradientToArray(), "dstudent");
        Assert.Null(teacher.Gradient);
    }

    [Fact]
    public void At_ForwardAndBackward_AreTheBackendOps()
    {
        const int n = 2, c = 3, h = 4, w = 5;
        using var scope = TensorScope.Begin();
        float[] sv = TensorAssert.Random(n * c * h * w, 1), tv = TensorAssert.Random(n * c * h * w, 2);
        var student = Tensor.FromHost(_b, [n, c, h, w], sv, requiresGrad: true);
        var loss = Ops.AttentionTransfer(student, Tensor.FromHost(_b, [n, c, h, w], tv));
        loss.Backward(Up([2.5f]));
        Storage refLoss = _b.Allocate(1), sm = _b.Allocate(n * h * w), tm = _b.Allocate(n * h * w), norm = _b.Allocate(n);
        _b.AtForward(n, c, h, w, Up(sv), Up(tv), refLoss, sm, tm, norm);
        TensorAssert.Identical(Read(refLoss), loss.ToArray(), "loss");
        TensorAssert.Identical(Run(sv.Length, o => _b.AtBackward(n, c, h, w, Up(sv), sm, tm, norm, Up([2.5f]), o)), student.GradientToArray(), "dstudent");
    }

    [Fact]
    public void WeightedSum_ForwardIsCopyScaleAxpy_BackwardScalesDy()
    {
        using var scope = TensorScope.Begin();
        float[] av = TensorAssert.Random(6, 1), bv = TensorAssert.Random(6, 2), dyv = TensorAssert.Random(6, 3);
        var a = Tensor.FromHost(_b, [6], av, requiresGrad: true);
        var b = Tensor.FromHost(_b, [6], bv, requiresGrad: true);
        var y = Ops.WeightedSum([a, b], [0.1f, 900f]);
        y.Backward(Up(dyv));
        var refY = Up(av);
        _b.Scale(refY, 0.1f);
        _b.Axpy(900f, Up(bv), refY);
        TensorAssert.Identical(Read(refY), y.ToArray(), "y");
        TensorAssert.Identical(dyv.Select(v => v * 0.1f).ToArray(), a.GradientToArray(), "da");
        TensorAssert.Identical(dyv.Select(v => v * 900f).ToArray(), b.GradientToArray(), "db");
    }

    [Fact]
    public void Shapes_Mismatched_AreRejectedWithTheShapes()
    {
        var backend = new ShapeOnlyBackend();
        using var scope = TensorScope.Begin();
        var error = Assert.Throws<ArgumentException>(() => Ops.Add(Tensor.Empty(backend, 2, 3), Tensor.Empty(backend, 3, 2)));
        Assert.Contains("[2x3] and [3x2]", error.Message);
        Assert.Contains("needs [4x1x3x3]", Assert.Throws<ArgumentException>(() =>
            Ops.Conv2d(Tensor.Empty(backend, 1, 2, 5, 5), Tensor.Empty(backend, 4, 2, 3, 3), pad: 1, groups: 2)).Message);
        Assert.Contains("2 labels", Assert.Throws<ArgumentException>(() => Ops.CrossEntropy(Tensor.Empty(backend, 3, 10), [1, 2])).Message);
    }

    private static void AssertWithin(double[] expected, float[] actual, double[] bounds, string what)
    {
        for (var i = 0; i < expected.Length; i++)
        {
            Assert.True(Math.Abs(actual[i] - expected[i]) <= bounds[i] + 1e-30,
                $"{what}[{i}]: expected {expected[i]:R}, got {actual[i]:R}, bound {bounds[i]:0.00e+00}");
        }
    }
}
