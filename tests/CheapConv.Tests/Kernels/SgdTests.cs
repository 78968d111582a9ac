using CheapConv.Backends;
using CheapConv.Devices;
using CheapConv.Tests.Emulator;
using Xunit;

namespace CheapConv.Tests.Kernels;

/// <summary>
/// The SGD step: the reference against hand-computed PyTorch (torch.optim.SGD, dampening 0) sequences, and the
/// cc_sgd_step kernel on the emulator against the float64 reference over several steps, every valid
/// combination of momentum, Nesterov and weight decay, and lengths that leave a partial last block.
/// </summary>
public sealed class SgdTests(EmulatorFixture emulator) : IClassFixture<EmulatorFixture>, IDisposable
{
    private readonly GpuBackend _gpu = new(emulator.Device);

    public void Dispose() => _gpu.Dispose();

    /// <summary>
    /// p₀ = 1, g = 0.5 every step, lr = 0.1; the expected parameters after steps 1–3 worked out by hand from
    /// PyTorch's rule: d = g + wd·p; buf = d on the first step, then m·buf + d; d = nesterov ? d + m·buf : buf; p −= lr·d.
    /// E.g. Nesterov with m = 0.9, wd = 0.1: d = 0.6, buf = 0.6, d = 0.6 + 0.54 = 1.14, p = 0.886; then
    /// d = 0.5886, buf = 1.1286, d = 1.60434, p = 0.725566; then d = 0.5725566, buf = 1.5882966, d = 2.00202354, p = 0.525363646.
    /// </summary>
    public static TheoryData<double, double, bool, double, double, double> HandComputed() => new()
    {
        { 0.0, 0.0, false, 0.95, 0.90, 0.85 },
        { 0.9, 0.0, false, 0.95, 0.855, 0.7195 },
        { 0.9, 0.0, true, 0.905, 0.7695, 0.59755 },
        { 0.0, 0.1, false, 0.94, 0.8806, 0.821794 },
        { 0.9, 0.1, false, 0.94, 0.8266, 0.666274 },
        { 0.9, 0.1, true, 0.886, 0.725566, 0.525363646 },
    };

    [Theory]
    [MemberData(nameof(HandComputed))]
    public void Reference_ThreeSteps_MatchHandComputedPyTorchUpdates(double momentum, double weightDecay, bool nesterov, double step1, double step2, double step3)
    {
        double[] parameter = [1.0], buffer = [0.0];
        double[] expected = [step1, step2, step3];
        for (var step = 0; step < 3; step++)
        {
            CpuBackend.SgdStep(parameter, [0.5], buffer, 0.1, momentum, weightDecay, nesterov);
            Assert.Equal(expected[step], parameter[0], 12);
        }
    }

    [Fact]
    public void Reference_ZeroMomentum_NeverTouchesTheBuffer()
    {
        float[] parameter = [1f, 2f], buffer = [float.NaN, 7f];
        CpuBackend.SgdStep(parameter, [0.5f, 0.25f], buffer, 0.1f, 0f, 0.01f, nesterov: false);
        Assert.True(float.IsNaN(buffer[0]));
        Assert.Equal(7f, buffer[1]);
        Assert.Equal(1f - 0.1f * (0.5f + 0.01f * 1f), parameter[0]);
    }

    [Theory]
    [InlineData(-0.1f, 0f, 0f, false)]
    [InlineData(0.1f, -0.9f, 0f, false)]
    [InlineData(0.1f, 0.9f, float.NaN, false)]
    [InlineData(0.1f, 0f, 0f, true)]
    public void Options_TorchWouldRefuse_AreRefused(float learningRate, float momentum, float weightDecay, bool nesterov)
    {
        Assert.ThrowsAny<ArgumentException>(() => CpuBackend.SgdStep(new float[1], new float[1], new float[1], learningRate, momentum, weightDecay, nesterov));
        using var p = _gpu.Device.Allocate<float>(1);
        Assert.ThrowsAny<ArgumentException>(() => _gpu.SgdStep(1, p, p, p, learningRate, momentum, weightDecay, nesterov));
    }

    public static TheoryData<int, float, float, bool> KernelCases()
    {
        var data = new TheoryData<int, float, float, bool>();
        foreach (var length in new[] { 1, 1000, 65537 })
        {
            foreach (var (momentum, nesterov) in new[] { (0f, false), (0.9f, false), (0.9f, true) })
            {
                foreach (var weightDecay in new[] { 0f, 5e-4f })
                {
                    data.Add(length, momentum, weightDecay, nesterov);
                }
            }
        }

        return data;
    }

    [Theory]
    [MemberData(nameof(KernelCases))]
    public void Kernel_ThreeSteps_MatchReference(int length, float momentum, float weightDecay, bool nesterov)
    {
        const float learningRate = 0.1f;
        var random = new Random(length + (int)(momentum * 10) + (nesterov ? 100 : 0) + (weightDecay > 0 ? 1000 : 0));
        var parameter = LossTolerance.Uniform(random, length, 1);
        // Momentum 0 must leave the buffer alone: poison it, and check every bit survives.
        var buffer = momentum == 0 ? null : new float[length];
        using var p = _gpu.Device.Upload<float>(parameter);
        using var g = _gpu.Device.Allocate<float>(length);
        using var b = buffer is null ? _gpu.Device.Allocate<float>(length) : _gpu.Device.Upload<float>(buffer);
        if (buffer is null)
        {
            b.FillBytes(0xFF);
        }

        for (var step = 0; step < 3; step++)
        {
            var gradient = LossTolerance.Uniform(random, length, 2);
            g.CopyFrom(gradient);
            var before = p.ToArray();
            var bufferBefore = b.ToArray();

            _gpu.SgdStep(length, p, g, b, learningRate, momentum, weightDecay, nesterov);

            // Reference in float64 from the same fp32 state.
            var expected = LossTolerance.ToDouble(before);
            var expectedBuffer = momentum == 0 ? new double[length] : LossTolerance.ToDouble(bufferBefore);
            CpuBackend.SgdStep(expected, LossTolerance.ToDouble(gradient), expectedBuffer, learningRate, momentum, weightDecay, nesterov);

            // Each rounded operation errs by at most half an ulp of its result, and every intermediate is bounded by
            // the sums of magnitudes below (|d| ≤ |g| + wd|p|, |buf'| ≤ m|buf| + |d|, ...). Up to 8 operations
            // (fused or not) feed p, 2 feed buf: 6ε and 3ε of those magnitudes, with ε = 2^-23, bound them.
            var parameterBound = new double[length];
            var bufferBound = new double[length];
            for (var i = 0; i < length; i++)
            {
                var d = Math.Abs(gradient[i]) + weightDecay * Math.Abs(before[i]);
                var accumulated = momentum == 0 ? d : momentum * Math.Abs(bufferBefore[i]) + d;
                var direction = nesterov ? d + momentum * accumulated : accumulated;
                parameterBound[i] = 6 * LossTolerance.Epsilon * (Math.Abs(before[i]) + learningRate * direction);
                bufferBound[i] = 3 * LossTolerance.Epsilon * accumulated;
            }

            LossTolerance.AssertWithin($"parameter after step {step + 1}", p.ToArray(), expected, parameterBound);
            if (momentum == 0)
            {
                Assert.All(b.ToArray(), v => Assert.Equal(uint.MaxValue, BitConverter.SingleToUInt32Bits(v)));
            }
            else
            {
                LossTolerance.AssertWithin($"momentum buffer after step {step + 1}", b.ToArray(), expectedBuffer, bufferBound);
            }
        }

        Assert.Empty(emulator.Device.TakeWarnings());
    }

    [Fact]
    public void Kernel_ThroughTheInterface_MatchesTheCpuBackendBitForBitOnExactData()
    {
        // Dyadic values with few bits: every product and sum is exact in fp32, fused or not, so both backends
        // must agree exactly — a check of the interface plumbing (argument order, nesterov flag) with no tolerance.
        IBackend gpu = _gpu, cpu = new CpuBackend();
        float[] parameter = [1f, -2f, 0.5f], gradient = [0.25f, 0.5f, -1f], buffer = [0.5f, 0f, -0.25f];
        using var gp = gpu.Upload(parameter);
        using var gg = gpu.Upload(gradient);
        using var gb = gpu.Upload(buffer);
        using var cp = cpu.Upload(parameter);
        using var cg = cpu.Upload(gradient);
        using var cb = cpu.Upload(buffer);
        gpu.SgdStep(3, gp, gg, gb, 0.5f, 0.5f, 0.25f, nesterov: true);
        cpu.SgdStep(3, cp, cg, cb, 0.5f, 0.5f, 0.25f, nesterov: true);
        float[] gpuParameter = new float[3], cpuParameter = new float[3], gpuBuffer = new float[3], cpuBuffer = new float[3];
        gpu.Download(gp, gpuParameter);
        cpu.Download(cp, cpuParameter);
        gpu.Download(gb, gpuBuffer);
        cpu.Download(cb, cpuBuffer);
        Assert.Equal(cpuParameter, gpuParameter);
        Assert.Equal(cpuBuffer, gpuBuffer);
        // p₀ = 1: d = 0.25 + 0.25 = 0.5, buf = 0.25 + 0.5 = 0.75, d = 0.5 + 0.375 = 0.875, p = 1 − 0.4375.
        Assert.Equal(0.5625f, cpuParameter[0]);
    }

    [Fact]
    public void Kernel_LengthMismatch_IsRefused()
    {
        using var p = _gpu.Device.Allocate<float>(4);
        using var g = _gpu.Device.Allocate<float>(3);
        var error = Assert.Throws<ArgumentException>(() => _gpu.SgdStep(4, p, g, p, 0.1f, 0f, 0f, false));
        Assert.Contains("gradient", error.Message);
    }
}
