using CheapConv.Backends.Cpu;
using CheapConv.Problems;

namespace CheapConv.Backends;

/// <summary>
/// The plain C# backend: the reference every kernel is checked against, and the device of last resort.
/// Its static methods are the maths, generic over the element type so the same loops run in float (what the
/// kernels compute) and in double (for the finite-difference checks that keep this reference honest),
/// written as the textbook definition, one output element at a time and parallel only across independent
/// output slices. The <see cref="IBackend"/> implementation runs them in float on <see cref="HostStorage"/>.
/// One file per op family: CpuBackend.Conv.cs, .Gemm.cs, .Norm.cs, .Loss.cs.
/// </summary>
public sealed partial class CpuBackend : IBackend
{
    public string Name => "cpu";

    public Storage Allocate(long length) => new HostStorage(new float[length]);

    public Storage Upload(ReadOnlySpan<float> data) => new HostStorage(data.ToArray());

    public void Download(Storage source, Span<float> destination) => Host(source).AsSpan().CopyTo(destination);

    public void Copy(Storage source, Storage destination)
    {
        CheckSameLength(source, destination);
        Host(source).AsSpan().CopyTo(Host(destination));
    }

    // The IBackend members run the fast float paths of Backends/Cpu (im2col + packed SGEMM, direct depthwise);
    // the static generic methods stay the textbook reference they are tested against.
    void IBackend.Conv2dForward(ConvProblem problem, Storage x, Storage w, Storage y)
    {
        float[] hx = Host(x), hw = Host(w), hy = Host(y);
        CheckLengths(problem, ("x", hx.Length, problem.InputElements), ("w", hw.Length, problem.WeightElements), ("y", hy.Length, problem.OutputElements));
        CpuConv.Forward(problem, hx, hw, hy);
    }

    void IBackend.Conv2dBackwardData(ConvProblem problem, Storage dy, Storage w, Storage dx)
    {
        float[] hdy = Host(dy), hw = Host(w), hdx = Host(dx);
        CheckLengths(problem, ("dy", hdy.Length, problem.OutputElements), ("w", hw.Length, problem.WeightElements), ("dx", hdx.Length, problem.InputElements));
        CpuConv.BackwardData(problem, hdy, hw, hdx);
    }

    void IBackend.Conv2dBackwardWeight(ConvProblem problem, Storage x, Storage dy, Storage dw)
    {
        float[] hx = Host(x), hdy = Host(dy), hdw = Host(dw);
        CheckLengths(problem, ("x", hx.Length, problem.InputElements), ("dy", hdy.Length, problem.OutputElements), ("dw", hdw.Length, problem.WeightElements));
        CpuConv.BackwardWeight(problem, hx, hdy, hdw);
    }

    /// <summary>The array behind a storage of this backend.</summary>
    internal static float[] Host(Storage storage) => storage is HostStorage host
        ? host.Data
        : throw new ArgumentException($"a {storage.GetType().Name} was given to the cpu backend, which works on host storages only");

    /// <summary>The precondition of <see cref="IBackend.Copy"/> and <see cref="IBackend.Axpy"/> on every backend: equal lengths.</summary>
    internal static void CheckSameLength(Storage a, Storage b)
    {
        if (a.Length != b.Length)
        {
            throw new ArgumentException($"storages of {a.Length} and {b.Length} elements where equal lengths are needed");
        }
    }
}
