using CheapConv.Devices;
using CheapConv.Kernels;
using CheapConv.Problems;

namespace CheapConv.Backends;

/// <summary>
/// The op level over a <see cref="Device"/>: picks the kernel, computes its grid and block, and packs the
/// arguments as <c>void**</c> exactly as <c>cuLaunchKernel</c> wants them. The same code drives the CUDA
/// driver and the emulator, so CI exercises the real launch path without a GPU.
/// </summary>
public sealed unsafe class GpuBackend(Device device)
{
    /// <summary>Threads per block for the one-thread-per-element kernels.</summary>
    public const int ElementwiseBlock = 256;

    /// <summary>Threads per block of the weight-gradient kernel: 8 warps, one weight element each.</summary>
    public const int WeightGradBlock = 256;

    public Device Device { get; } = device;

    /// <summary>y = conv(x, w).</summary>
    public void Conv2dForward(ConvProblem problem, DeviceBuffer<float> x, DeviceBuffer<float> w, DeviceBuffer<float> y)
    {
        Check(problem, (nameof(x), x, problem.InputElements), (nameof(w), w, problem.WeightElements), (nameof(y), y, problem.OutputElements));
        Launch(KernelNames.Conv2dForward, ForwardConfig(problem), problem, x.Pointer, w.Pointer, y.Pointer);
    }

    /// <summary>dx = ∂L/∂x given dy = ∂L/∂y.</summary>
    public void Conv2dBackwardData(ConvProblem problem, DeviceBuffer<float> dy, DeviceBuffer<float> w, DeviceBuffer<float> dx)
    {
        Check(problem, (nameof(dy), dy, problem.OutputElements), (nameof(w), w, problem.WeightElements), (nameof(dx), dx, problem.InputElements));
        Launch(KernelNames.Conv2dBackwardData, BackwardDataConfig(problem), problem, dy.Pointer, w.Pointer, dx.Pointer);
    }

    /// <summary>dw = ∂L/∂w given x and dy = ∂L/∂y (overwrites dw; no accumulation).</summary>
    public void Conv2dBackwardWeight(ConvProblem problem, DeviceBuffer<float> x, DeviceBuffer<float> dy, DeviceBuffer<float> dw)
    {
        Check(problem, (nameof(x), x, problem.InputElements), (nameof(dy), dy, problem.OutputElements), (nameof(dw), dw, problem.WeightElements));
        Launch(KernelNames.Conv2dBackwardWeight, BackwardWeightConfig(problem), problem, x.Pointer, dy.Pointer, dw.Pointer);
    }

    public static LaunchConfig ForwardConfig(ConvProblem problem) => Elementwise(problem.OutputElements);

    public static LaunchConfig BackwardDataConfig(ConvProblem problem) => Elementwise(problem.InputElements);

    public static LaunchConfig BackwardWeightConfig(ConvProblem problem)
    {
        const int warpsPerBlock = WeightGradBlock / 32;
        return new LaunchConfig(new Dim3(checked((uint)((problem.WeightElements + warpsPerBlock - 1) / warpsPerBlock))), new Dim3(WeightGradBlock));
    }

    private static LaunchConfig Elementwise(long elements) =>
        new(new Dim3(checked((uint)((elements + ElementwiseBlock - 1) / ElementwiseBlock))), new Dim3(ElementwiseBlock));

    // The three conv passes share one signature: (cc_conv_problem, pointer, pointer, pointer).
    private void Launch(string kernel, LaunchConfig config, ConvProblem problem, nint a, nint b, nint c)
    {
        void** args = stackalloc void*[4];
        args[0] = &problem;
        args[1] = &a;
        args[2] = &b;
        args[3] = &c;
        Device.Launch(kernel, config, args, problem.ToString());
    }

    private void Check(ConvProblem problem, params ReadOnlySpan<(string Name, DeviceBuffer<float> Buffer, long Expected)> tensors)
    {
        foreach (var (name, buffer, expected) in tensors)
        {
            if (buffer.Device != Device)
            {
                throw new ArgumentException($"{name} lives on {buffer.Device.Name}, not on {Device.Name}");
            }

            if (buffer.Length != expected)
            {
                throw new ArgumentException($"{name} has {buffer.Length} elements but the problem ({problem}) needs {expected}");
            }
        }
    }
}
