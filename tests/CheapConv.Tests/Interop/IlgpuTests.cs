using CheapConv.Backends;
using CheapConv.Ilgpu;
using CheapConv.Interop;
using CheapConv.Problems;
using CheapConv.Tests.Emulator;
using CheapConv.Verification;
using ILGPU;
using ILGPU.Runtime;
using ILGPU.Runtime.CPU;
using ILGPU.Runtime.Cuda;
using CheapConv.Tests.Cuda;
using Xunit;

namespace CheapConv.Tests.Interop;

/// <summary>An ILGPU CPU accelerator with CheapConv bound to it (the emulator library), shared by a test class.</summary>
public sealed class IlgpuCpuFixture : IDisposable
{
    public IlgpuCpuFixture()
    {
        Context = Context.Create(builder => builder.CPU());
        Accelerator = Context.CreateCPUAccelerator(0);
        CheapConv = CheapConvIlgpu.Create(Accelerator);
    }

    public Context Context { get; }

    public Accelerator Accelerator { get; }

    public CheapConvIlgpu CheapConv { get; }

    public void Dispose()
    {
        CheapConv.Dispose();
        Accelerator.Dispose();
        Context.Dispose();
    }
}

/// <summary>
/// <see cref="CheapConvIlgpu"/> on ILGPU's CPU accelerator, which runs the kernels in the emulator on the views' host
/// addresses: the convolution against the float64 reference over the rigorous catalogue (outputs NaN-poisoned, the
/// tolerance derived as for every emulator test), every other family against the bits <see cref="GpuBackend"/> gets
/// from the same library on the same inputs, sub-views, ILGPU kernels producing the inputs on the stream, and the
/// refusals. The CUDA accelerator test skips, with the reason, where ILGPU finds no CUDA device.
/// </summary>
public sealed class IlgpuTests(IlgpuCpuFixture ilgpu, EmulatorFixture emulator) : IClassFixture<IlgpuCpuFixture>, IClassFixture<EmulatorFixture>
{
    private readonly Accelerator _accelerator = ilgpu.Accelerator;
    private readonly CheapConvIlgpu _cheapConv = ilgpu.CheapConv;

    public static TheoryData<string> Rigorous => new(TestCatalogue.Rigorous.Select(entry => entry.Source));

    [Theory]
    [MemberData(nameof(Rigorous))]
    public void Conv_AllPasses_MatchTheReference(string source)
    {
        var problem = TestCatalogue.Scaled(source);
        var inputs = ConvInputs.Random(problem, seed: 1);
        // The adapter passes the C library's default options: tf32 allowed, so the tf32 bound where it applies.
        ConvAssert.Passed(ConvCheck.Compare(problem, inputs, RunConv(_cheapConv, _accelerator, problem, inputs), "ILGPU CPU accelerator",
            KernelPrecision.Tf32));
    }

    [Fact]
    public void Create_BindsTheEmulatorLibrary()
    {
        Assert.Equal(CheapConvBackend.Emulator, _cheapConv.Native.Backend);
        Assert.StartsWith("emulator", _cheapConv.Description);
    }

    [Fact]
    public void Conv_OnSubViews_ReadsAndWritesOnlyThem()
    {
        var problem = ConvProblem.Create(2, 6, 9, 9, 6, 3, 3, stride: 2, pad: 1, groups: 3);
        var inputs = ConvInputs.Random(problem, seed: 2);
        const int offset = 37;
        var guard = Enumerable.Repeat(-7f, offset).ToArray();
        using var x = _accelerator.Allocate1D([.. guard, .. inputs.X, .. guard]);
        using var w = _accelerator.Allocate1D(inputs.W);
        using var y = _accelerator.Allocate1D(Enumerable.Repeat(-7f, (int)problem.OutputElements + 2 * offset).ToArray());

        _cheapConv.ConvForward(problem, x.View.SubView(offset, problem.InputElements), w.View, y.View.SubView(offset, problem.OutputElements));

        var expected = RunConv(_cheapConv, _accelerator, problem, inputs).Y;
        var result = y.GetAsArray1D();
        Assert.Equal(guard, result[..offset]);
        Assert.Equal(expected, result[offset..^offset]);
        Assert.Equal(guard, result[^offset..]);
    }

    [Fact]
    public void Conv_ReadsInputsAnIlgpuKernelWroteOnTheStream()
    {
        // The inputs come from an ILGPU kernel queued on the stream, not from the host: the call must wait for it.
        var problem = ConvProblem.Create(2, 8, 6, 6, 8, 3, 3, pad: 1, groups: 8);
        var fill = _accelerator.LoadAutoGroupedKernel<Index1D, ArrayView<float>, float>(
            (i, data, scale) => data[i] = ((i * 7 + 3) % 11 - 5) * scale);
        using var stream = _accelerator.CreateStream();
        using var x = _accelerator.Allocate1D<float>(problem.InputElements);
        using var w = _accelerator.Allocate1D<float>(problem.WeightElements);
        using var y = _accelerator.Allocate1D<float>(problem.OutputElements);
        fill(stream, (int)x.Length, x.View, 0.125f);
        fill(stream, (int)w.Length, w.View, 0.25f);

        _cheapConv.ConvForward(problem, x.View, w.View, y.View, stream: stream);

        stream.Synchronize();
        var inputs = new ConvInputs(x.GetAsArray1D(), w.GetAsArray1D(), new float[problem.OutputElements]);
        Assert.Contains(inputs.X, v => v != 0);
        var reference = ConvCheck.RunOnCpu(problem, inputs).Y;
        var result = y.GetAsArray1D();
        for (var i = 0; i < result.Length; i++)
        {
            Assert.True(Math.Abs(result[i] - reference[i]) <= 1e-5f * (1 + Math.Abs(reference[i])), $"y[{i}] = {result[i]}, reference {reference[i]}");
        }
    }

    [Fact]
    public void Linear_GivesTheGpuBackendsBits()
    {
        var problem = new LinearProblem(5, 33, 17);
        float[] x = Random(1, 5 * 33), w = Random(2, 17 * 33), b = Random(3, 17), dy = Random(4, 5 * 17);
        IBackend gpu = new GpuBackend(emulator.Device);
        using Storage gx = gpu.Upload(x), gw = gpu.Upload(w), gb = gpu.Upload(b), gdy = gpu.Upload(dy);
        using Storage gy = gpu.Allocate(5 * 17), gdx = gpu.Allocate(5 * 33), gdw = gpu.Allocate(17 * 33), gdb = gpu.Allocate(17);
        gpu.LinearForward(5, 33, 17, gx, gw, gb, gy);
        gpu.LinearBackwardData(5, 33, 17, gdy, gw, gdx);
        gpu.LinearBackwardWeight(5, 33, 17, gx, gdy, gdw);
        gpu.LinearBackwardBias(5, 17, gdy, gdb);

        using var ix = Upload(x);
        using var iw = Upload(w);
        using var ib = Upload(b);
        using var idy = Upload(dy);
        using var iy = Nan(5 * 17);
        using var idx = Nan(5 * 33);
        using var idw = Nan(17 * 33);
        using var idb = Nan(17);
        _cheapConv.LinearForward(problem, ix.View, iw.View, ib.View, iy.View);
        _cheapConv.LinearBackwardData(problem, idy.View, iw.View, idx.View);
        _cheapConv.LinearBackwardWeight(problem, ix.View, idy.View, idw.View);
        _cheapConv.LinearBackwardBias(problem, idy.View, idb.View);

        AssertSame(gpu, (gy, iy), (gdx, idx), (gdw, idw), (gdb, idb));
    }

    [Fact]
    public void BatchNorm_GivesTheGpuBackendsBits()
    {
        const int n = 2, c = 5, h = 7, w = 3, elements = n * c * h * w;
        var problem = new BatchNormProblem(n, c, h, w, 1e-5f, 0.1f, Relu: 1);
        float[] x = Random(5, elements), gamma = Random(6, c), beta = Random(7, c), dy = Random(8, elements);
        float[] mean = Random(9, c), variance = Random(10, c).Select(v => 1 + Math.Abs(v)).ToArray();
        IBackend gpu = new GpuBackend(emulator.Device);
        using Storage gx = gpu.Upload(x), gg = gpu.Upload(gamma), gb = gpu.Upload(beta), gdy = gpu.Upload(dy);
        using Storage gm = gpu.Upload(mean), gv = gpu.Upload(variance), gy = gpu.Allocate(elements), gs = gpu.Allocate(c), gi = gpu.Allocate(c);
        using Storage geval = gpu.Allocate(elements), gdx = gpu.Allocate(elements), gdg = gpu.Allocate(c), gdb = gpu.Allocate(c);
        gpu.BatchNormReluEvalForward(n, c, h, w, gx, gg, gb, gm, gv, 1e-5f, geval);
        gpu.BatchNormReluTrainForward(n, c, h, w, gx, gg, gb, gm, gv, 0.1f, 1e-5f, gy, gs, gi);
        gpu.BatchNormReluBackward(n, c, h, w, gx, gdy, gg, gb, gs, gi, gdx, gdg, gdb);

        using var ix = Upload(x);
        using var ig = Upload(gamma);
        using var ib = Upload(beta);
        using var idy = Upload(dy);
        using var im = Upload(mean);
        using var iv = Upload(variance);
        using var iy = Nan(elements);
        using var ieval = Nan(elements);
        using var isave = Nan(c);
        using var iinv = Nan(c);
        using var idx = Nan(elements);
        using var idg = Nan(c);
        using var idb = Nan(c);
        _cheapConv.BatchNormEvalForward(problem, ix.View, ig.View, ib.View, im.View, iv.View, ieval.View);
        _cheapConv.BatchNormTrainForward(problem, ix.View, ig.View, ib.View, im.View, iv.View, iy.View, isave.View, iinv.View);
        _cheapConv.BatchNormBackward(problem, ix.View, idy.View, ig.View, ib.View, isave.View, iinv.View, idx.View, idg.View, idb.View);

        AssertSame(gpu, (geval, ieval), (gy, iy), (gs, isave), (gi, iinv), (gm, im), (gv, iv), (gdx, idx), (gdg, idg), (gdb, idb));
    }

    [Fact]
    public void ElementwisePoolingAndSgd_GiveTheGpuBackendsBits()
    {
        const int n = 2, c = 3, h = 5, w = 4, length = n * c * h * w, padded = n * c * (h + 3) * (w + 1);
        float[] a = Random(11, length), b = Random(12, length), pooledGradient = Random(13, n * c), paddedGradient = Random(14, padded);
        IBackend gpu = new GpuBackend(emulator.Device);
        using Storage ga = gpu.Upload(a), gb = gpu.Upload(b), gpg = gpu.Upload(pooledGradient), gpd = gpu.Upload(paddedGradient);
        using Storage relu = gpu.Allocate(length), reluGrad = gpu.Allocate(length), sum = gpu.Allocate(length), total = gpu.Allocate(1);
        using Storage pooled = gpu.Allocate(n * c), pooledBack = gpu.Allocate(length), pad = gpu.Allocate(padded), padBack = gpu.Allocate(length);
        using Storage p = gpu.Upload(a), buffer = gpu.Upload(b);
        gpu.ReluForward(length, ga, relu);
        gpu.ReluBackward(length, relu, gb, reluGrad);
        gpu.Add(length, ga, gb, sum);
        gpu.Scale(sum, 0.75f);
        gpu.Axpy(-2f, ga, sum);
        gpu.Sum(sum, total);
        gpu.GlobalAvgPoolForward(n, c, h, w, ga, pooled);
        gpu.GlobalAvgPoolBackward(n, c, h, w, gpg, pooledBack);
        gpu.ZeroPadForward(n, c, h, w, 1, 2, 0, 1, ga, pad);
        gpu.ZeroPadBackward(n, c, h, w, 1, 2, 0, 1, gpd, padBack);
        gpu.SgdStep(length, p, gb, buffer, 0.1f, 0.9f, 5e-4f, nesterov: true);

        using var ia = Upload(a);
        using var ib = Upload(b);
        using var ipg = Upload(pooledGradient);
        using var ipd = Upload(paddedGradient);
        using var irelu = Nan(length);
        using var ireluGrad = Nan(length);
        using var isum = Nan(length);
        using var itotal = Nan(1);
        using var ipooled = Nan(n * c);
        using var ipooledBack = Nan(length);
        using var ipad = Nan(padded);
        using var ipadBack = Nan(length);
        using var ip = Upload(a);
        using var ibuffer = Upload(b);
        var pool = new PoolProblem(n, c, h, w);
        var padding = new PoolProblem(n, c, h, w, 1, 2, 0, 1);
        _cheapConv.ReluForward(ia.View, irelu.View);
        _cheapConv.ReluBackward(irelu.View, ib.View, ireluGrad.View);
        _cheapConv.Add(ia.View, ib.View, isum.View);
        _cheapConv.Scale(isum.View, 0.75f);
        _cheapConv.Axpy(-2f, ia.View, isum.View);
        _cheapConv.Sum(isum.View, itotal.View);
        _cheapConv.GlobalAvgPoolForward(pool, ia.View, ipooled.View);
        _cheapConv.GlobalAvgPoolBackward(pool, ipg.View, ipooledBack.View);
        _cheapConv.ZeroPadForward(padding, ia.View, ipad.View);
        _cheapConv.ZeroPadBackward(padding, ipd.View, ipadBack.View);
        _cheapConv.SgdStep(new SgdProblem(length, 0.1f, 0.9f, 5e-4f, Nesterov: 1), ip.View, ib.View, ibuffer.View);

        AssertSame(gpu, (relu, irelu), (reluGrad, ireluGrad), (sum, isum), (total, itotal), (pooled, ipooled), (pooledBack, ipooledBack),
            (pad, ipad), (padBack, ipadBack), (p, ip), (buffer, ibuffer));

        _cheapConv.Fill(isum.View, 2.5f);
        Assert.All(isum.GetAsArray1D(), v => Assert.Equal(2.5f, v));
    }

    [Fact]
    public void Losses_GiveTheGpuBackendsBits()
    {
        const int n = 4, classes = 6, c = 3, h = 5, w = 2;
        int[] labels = [1, 5, 0, 3];
        float[] student = Random(15, n * classes), teacher = Random(16, n * classes), dloss = [0.5f];
        float[] studentMaps = Random(17, n * c * h * w), teacherMaps = Random(18, n * c * h * w);
        var gpuBackend = new GpuBackend(emulator.Device);
        IBackend gpu = gpuBackend;
        using Storage gs = gpu.Upload(student), gt = gpu.Upload(teacher), gdl = gpu.Upload(dloss);
        using Storage gsm = gpu.Upload(studentMaps), gtm = gpu.Upload(teacherMaps);
        using Storage ceLoss = gpu.Allocate(1), probabilities = gpu.Allocate(n * classes), ceGrad = gpu.Allocate(n * classes);
        using Storage kdLoss = gpu.Allocate(1), studentSoft = gpu.Allocate(n * classes), teacherSoft = gpu.Allocate(n * classes), kdGrad = gpu.Allocate(n * classes);
        using Storage atLoss = gpu.Allocate(1), qs = gpu.Allocate(n * h * w), qt = gpu.Allocate(n * h * w), norm = gpu.Allocate(n), atGrad = gpu.Allocate(n * c * h * w);
        gpu.CrossEntropyForward(n, classes, gs, labels, ceLoss, probabilities);
        gpu.CrossEntropyBackward(n, classes, probabilities, labels, gdl, ceGrad);
        gpu.KdForward(n, classes, 4f, gs, gt, kdLoss, studentSoft, teacherSoft);
        gpu.KdBackward(n, classes, 4f, studentSoft, teacherSoft, gdl, kdGrad);
        gpu.AtForward(n, c, h, w, gsm, gtm, atLoss, qs, qt, norm);
        gpu.AtBackward(n, c, h, w, gsm, qs, qt, norm, gdl, atGrad);
        var correct = gpu.CountCorrect(n, classes, gs, labels);

        var rows = new LossProblem(n, classes, 4f, 0, 0, 0);
        var maps = new LossProblem(n, 0, 0, c, h, w);
        using var ilabels = _accelerator.Allocate1D(labels);
        using var icorrect = _accelerator.Allocate1D([-1]);
        using var istudent = Upload(student);
        using var iteacher = Upload(teacher);
        using var idloss = Upload(dloss);
        using var ism = Upload(studentMaps);
        using var itm = Upload(teacherMaps);
        using var iceLoss = Nan(1);
        using var iprobabilities = Nan(n * classes);
        using var iceGrad = Nan(n * classes);
        using var ikdLoss = Nan(1);
        using var istudentSoft = Nan(n * classes);
        using var iteacherSoft = Nan(n * classes);
        using var ikdGrad = Nan(n * classes);
        using var iatLoss = Nan(1);
        using var iqs = Nan(n * h * w);
        using var iqt = Nan(n * h * w);
        using var inorm = Nan(n);
        using var iatGrad = Nan(n * c * h * w);
        _cheapConv.CrossEntropyForward(rows, istudent.View, ilabels.View, iceLoss.View, iprobabilities.View);
        _cheapConv.CrossEntropyBackward(rows, iprobabilities.View, ilabels.View, idloss.View, iceGrad.View);
        _cheapConv.KdForward(rows, istudent.View, iteacher.View, ikdLoss.View, istudentSoft.View, iteacherSoft.View);
        _cheapConv.KdBackward(rows, istudentSoft.View, iteacherSoft.View, idloss.View, ikdGrad.View);
        _cheapConv.AtForward(maps, ism.View, itm.View, iatLoss.View, iqs.View, iqt.View, inorm.View);
        _cheapConv.AtBackward(maps, ism.View, iqs.View, iqt.View, inorm.View, idloss.View, iatGrad.View);
        _cheapConv.CountCorrect(rows, istudent.View, ilabels.View, icorrect.View);

        AssertSame(gpu, (ceLoss, iceLoss), (probabilities, iprobabilities), (ceGrad, iceGrad), (kdLoss, ikdLoss), (studentSoft, istudentSoft),
            (teacherSoft, iteacherSoft), (kdGrad, ikdGrad), (atLoss, iatLoss), (qs, iqs), (qt, iqt), (norm, inorm), (atGrad, iatGrad));
        Assert.Equal([correct], icorrect.GetAsArray1D());
        gpuBackend.Dispose();
    }

    [Fact]
    public void FusedCalls_GiveTheGpuBackendsBits()
    {
        // Dense 3x3 with 16 channels: the tensor-core kernels, whose store applies the epilogue and whose two gradients share
        // a launch. The backend with tf32 allowed, as the adapter's default options.
        var problem = ConvProblem.Create(2, 16, 8, 8, 16, 3, 3, pad: 1);
        int xs = (int)problem.InputElements, ws = (int)problem.WeightElements, ys = (int)problem.OutputElements, k = problem.K;
        float[] x = Random(11, xs), w = Random(12, ws), dy = Random(13, ys), residual = Random(14, ys), dxBefore = Random(15, xs);
        float[] gamma = Random(16, k), beta = Random(17, k), mean = Random(18, k), variance = Random(19, k).Select(v => 1 + Math.Abs(v)).ToArray();
        IBackend gpu = new GpuBackend(emulator.Device) { ConvPrecision = KernelPrecision.Tf32 };
        using Storage gx = gpu.Upload(x), gw = gpu.Upload(w), gdy = gpu.Upload(dy), gres = gpu.Upload(residual), gdx = gpu.Upload(dxBefore);
        using Storage gg = gpu.Upload(gamma), gb = gpu.Upload(beta), gm = gpu.Upload(mean), gv = gpu.Upload(variance);
        using Storage gy = gpu.Allocate(ys), gact = gpu.Allocate(ys), gdw = gpu.Allocate(ws);
        gpu.Conv2dForwardFused(problem, gx, gw, gy, gres, new EvalBatchNormRelu(gg, gb, gm, gv, 1e-5f, gact));
        gpu.Conv2dBackward(problem, gx, gdy, gw, gdx, gdw, accumulate: true);

        using var ix = Upload(x);
        using var iw = Upload(w);
        using var idy = Upload(dy);
        using var ires = Upload(residual);
        using var idx = Upload(dxBefore);
        using var ig = Upload(gamma);
        using var ib = Upload(beta);
        using var im = Upload(mean);
        using var iv = Upload(variance);
        using var iy = Nan(ys);
        using var iact = Nan(ys);
        using var idw = Nan(ws);
        _cheapConv.ConvForwardFused(problem, ix.View, iw.View, iy.View, ires.View, new EvalBatchNormReluViews(ig.View, ib.View, im.View, iv.View, 1e-5f, iact.View));
        _cheapConv.ConvBackward(problem, ix.View, idy.View, iw.View, idx.View, idw.View, new KernelOptions { Accumulate = 1 });

        AssertSame(gpu, (gy, iy), (gact, iact), (gdx, idx), (gdw, idw));

        // Only the activation, and only dw: the other output is left alone.
        using var onlyActivation = Nan(ys);
        _cheapConv.ConvForwardFused(problem, ix.View, iw.View, null, null, new EvalBatchNormReluViews(ig.View, ib.View, im.View, iv.View, 1e-5f, onlyActivation.View));
        using var onlyDw = Nan(ws);
        _cheapConv.ConvBackward(problem, ix.View, idy.View, iw.View, null, onlyDw.View);
        gpu.Conv2dForwardFused(problem, gx, gw, null, null, new EvalBatchNormRelu(gg, gb, gm, gv, 1e-5f, gact));
        AssertSame(gpu, (gact, onlyActivation), (gdw, onlyDw));
    }

    [Fact]
    public void FusedCalls_WithoutAnOutputOrWithAWrongLength_AreRefused()
    {
        var problem = ConvProblem.Create(1, 2, 4, 4, 2, 3, 3, pad: 1);
        using var x = _accelerator.Allocate1D<float>(problem.InputElements);
        using var w = _accelerator.Allocate1D<float>(problem.WeightElements);
        using var y = _accelerator.Allocate1D<float>(problem.OutputElements);
        using var shortResidual = _accelerator.Allocate1D<float>(problem.OutputElements - 1);
        var error = Assert.Throws<ArgumentException>(() => _cheapConv.ConvForwardFused(problem, x.View, w.View, null));
        Assert.Contains("neither y nor a batch norm output", error.Message);
        error = Assert.Throws<ArgumentException>(() => _cheapConv.ConvForwardFused(problem, x.View, w.View, y.View, shortResidual.View));
        Assert.Contains("residual has 31 elements but the problem needs 32", error.Message);
        error = Assert.Throws<ArgumentException>(() => _cheapConv.ConvBackward(problem, x.View, y.View, w.View, null, null));
        Assert.Contains("neither dx nor dw", error.Message);
        error = Assert.Throws<ArgumentException>(() => _cheapConv.ConvBackward(problem, x.View, shortResidual.View, w.View, x.View, null));
        Assert.Contains("dy has 31 elements but the problem needs 32", error.Message);
    }

    [Fact]
    public void WrongLengthsAndForeignMemory_AreRefusedBeforeAnyKernelRuns()
    {
        var problem = ConvProblem.Create(1, 2, 4, 4, 2, 3, 3, pad: 1);
        using var x = _accelerator.Allocate1D<float>(problem.InputElements);
        using var w = _accelerator.Allocate1D<float>(problem.WeightElements);
        using var y = _accelerator.Allocate1D<float>(problem.OutputElements + 1);
        var error = Assert.Throws<ArgumentException>(() => _cheapConv.ConvForward(problem, x.View, w.View, y.View));
        Assert.Contains("y has 33 elements but the problem needs 32", error.Message);

        using var other = ilgpu.Context.CreateCPUAccelerator(0);
        using var foreign = other.Allocate1D<float>(problem.OutputElements);
        error = Assert.Throws<ArgumentException>(() => _cheapConv.ConvForward(problem, x.View, w.View, foreign.View));
        Assert.Contains("is not memory of", error.Message);

        var invalid = Assert.Throws<CheapConvException>(() => _cheapConv.ConvForward(problem with { Groups = 3 }, x.View, w.View, y.View));
        Assert.Equal(CheapConvStatus.InvalidValue, invalid.Status);
    }

    [SkippableFact]
    public void CudaAccelerator_RunsTheConvolutionOnItsContextAndStream()
    {
        CudaRequirement.SkipOrFailWithoutGpu();
        using var context = Context.Create(builder => builder.Cuda());
        Assert.True(context.GetCudaDevices().Count > 0, "the CUDA driver has a device but ILGPU finds none");
        using var accelerator = context.CreateCudaAccelerator(0);
        using var cheapConv = CheapConvIlgpu.Create(accelerator);
        Assert.StartsWith("cuda:", cheapConv.Description);

        var problem = ConvProblem.Create(8, 32, 16, 16, 32, 3, 3, pad: 1, groups: 32);
        var inputs = ConvInputs.Random(problem, seed: 3);
        using var stream = accelerator.CreateStream();
        ConvAssert.Passed(ConvCheck.Compare(problem, inputs, RunConv(cheapConv, accelerator, problem, inputs, stream), "ILGPU CUDA accelerator"));
    }

    /// <summary>The three passes on NaN-poisoned outputs, read back after the stream.</summary>
    private static ConvOutputs RunConv(CheapConvIlgpu cheapConv, Accelerator accelerator, ConvProblem problem, ConvInputs inputs,
        AcceleratorStream? stream = null)
    {
        using var x = accelerator.Allocate1D(inputs.X);
        using var w = accelerator.Allocate1D(inputs.W);
        using var dy = accelerator.Allocate1D(inputs.Dy);
        using var y = accelerator.Allocate1D(NanArray(problem.OutputElements));
        using var dx = accelerator.Allocate1D(NanArray(problem.InputElements));
        using var dw = accelerator.Allocate1D(NanArray(problem.WeightElements));
        cheapConv.ConvForward(problem, x.View, w.View, y.View, stream: stream);
        cheapConv.ConvBackwardData(problem, dy.View, w.View, dx.View, stream: stream);
        cheapConv.ConvBackwardWeight(problem, x.View, dy.View, dw.View, stream: stream);
        (stream ?? accelerator.DefaultStream).Synchronize();
        return new ConvOutputs(y.GetAsArray1D(), dx.GetAsArray1D(), dw.GetAsArray1D());
    }

    private MemoryBuffer1D<float, Stride1D.Dense> Upload(float[] data) => _accelerator.Allocate1D(data);

    private MemoryBuffer1D<float, Stride1D.Dense> Nan(long length) => _accelerator.Allocate1D(NanArray(length));

    private static float[] NanArray(long length) => Enumerable.Repeat(float.NaN, (int)length).ToArray();

    private static float[] Random(int seed, int length)
    {
        var random = new Random(seed);
        return Enumerable.Range(0, length).Select(_ => (float)(random.NextDouble() * 2 - 1)).ToArray();
    }

    /// <summary>Each ILGPU result has exactly the bits of the GpuBackend's.</summary>
    private static void AssertSame(IBackend gpu, params (Storage Expected, MemoryBuffer1D<float, Stride1D.Dense> Actual)[] pairs)
    {
        for (var i = 0; i < pairs.Length; i++)
        {
            var expected = new float[pairs[i].Expected.Length];
            gpu.Download(pairs[i].Expected, expected);
            var actual = pairs[i].Actual.GetAsArray1D();
            Assert.True(expected.Select(BitConverter.SingleToInt32Bits).SequenceEqual(actual.Select(BitConverter.SingleToInt32Bits)),
                $"result {i}: expected [{string.Join(", ", expected.Take(8))}...], got [{string.Join(", ", actual.Take(8))}...]");
        }
    }
}
