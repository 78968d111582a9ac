using CheapConv.Backends;
using CheapConv.Devices;
using CheapConv.Interop;
using CheapConv.Problems;

namespace CheapConv.Verification;

/// <summary>
/// The six tensors of one convolution on a device — inputs x, w, dy uploaded, outputs y, dx, dw allocated —
/// and the three passes over them. Shared by the checks and the benchmarks so both run exactly the same launches.
/// </summary>
internal sealed class ConvTensors : IDisposable
{
    private readonly GpuBackend _backend;

    /// <param name="precision">What the convolutions may use (<see cref="GpuBackend.ConvPrecision"/>).</param>
    /// <param name="algorithm">The kernels to ask for (<see cref="GpuBackend.ConvAlgorithm"/>): the launcher's choice, or
    /// a forced variant such as the direct kernels (the reference algorithm on the device).</param>
    public ConvTensors(Device device, ConvProblem problem, ConvInputs inputs, KernelPrecision precision = KernelPrecision.Fp32,
        KernelAlgorithm algorithm = KernelAlgorithm.Auto)
    {
        Problem = problem;
        _backend = new GpuBackend(device) { ConvPrecision = precision, ConvAlgorithm = algorithm };
        X = device.Upload<float>(inputs.X);
        W = device.Upload<float>(inputs.W);
        Dy = device.Upload<float>(inputs.Dy);
        Y = device.Allocate<float>(problem.OutputElements);
        Dx = device.Allocate<float>(problem.InputElements);
        Dw = device.Allocate<float>(problem.WeightElements);
    }

    public ConvProblem Problem { get; }

    public DeviceBuffer<float> X { get; }

    public DeviceBuffer<float> W { get; }

    public DeviceBuffer<float> Dy { get; }

    public DeviceBuffer<float> Y { get; }

    public DeviceBuffer<float> Dx { get; }

    public DeviceBuffer<float> Dw { get; }

    public void Forward() => _backend.Conv2dForward(Problem, X, W, Y);

    public void BackwardData() => _backend.Conv2dBackwardData(Problem, Dy, W, Dx);

    public void BackwardWeight() => _backend.Conv2dBackwardWeight(Problem, X, Dy, Dw);

    public void Dispose()
    {
        foreach (var buffer in new[] { X, W, Dy, Y, Dx, Dw })
        {
            buffer.Dispose();
        }
    }
}
