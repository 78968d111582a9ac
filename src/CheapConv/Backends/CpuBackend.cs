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
    /// <summary>What the static reference methods use when no <see cref="ParallelOptions"/> is given: the whole pool.</summary>
    private static readonly ParallelOptions Unbounded = new();

    /// <summary>A backend that runs on up to <see cref="Environment.ProcessorCount"/> threads at once.</summary>
    public CpuBackend()
        : this(Environment.ProcessorCount)
    {
    }

    /// <summary>
    /// A backend whose every op runs on at most <paramref name="threads"/> threads at once (the calling thread included):
    /// each Parallel.For of the CPU code gets <see cref="ParallelOptions.MaxDegreeOfParallelism"/> = <paramref name="threads"/>.
    /// Results do not depend on it (threads only split independent outputs), only the speed does.
    /// </summary>
    public CpuBackend(int threads)
        : this(threads, TaskScheduler.Default)
    {
    }

    /// <summary>As <see cref="CpuBackend(int)"/>, with the parallel loops' tasks on <paramref name="scheduler"/> (tests count on it how many run at once).</summary>
    internal CpuBackend(int threads, TaskScheduler scheduler)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(threads, 1);
        Threads = threads;
        Parallelism = new ParallelOptions { MaxDegreeOfParallelism = threads, TaskScheduler = scheduler };
    }

    /// <summary>The most threads an op runs on at once.</summary>
    public int Threads { get; }

    /// <summary>The bound every parallel loop of this backend runs under.</summary>
    internal ParallelOptions Parallelism { get; }

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
        CpuConv.Forward(problem, hx, hw, hy, Parallelism);
    }

    /// <summary>
    /// As <see cref="IBackend"/>'s default (conv, add, eval batch norm + ReLU in turn, the same bits), with the add and the
    /// normalisation made image by image right after each image's convolution, while its output is still in cache.
    /// </summary>
    void IBackend.Conv2dForwardFused(ConvProblem problem, Storage x, Storage w, Storage? y, Storage? residual, EvalBatchNormRelu? activation)
    {
        var sum = y ?? activation?.Output ?? throw new ArgumentException("Conv2dForwardFused: neither y nor an activation output: nothing to write");
        float[] hx = Host(x), hw = Host(w), hy = Host(sum);
        CheckLengths(problem, ("x", hx.Length, problem.InputElements), ("w", hw.Length, problem.WeightElements), ("y", hy.Length, problem.OutputElements));
        var hr = residual is null ? null : Host(residual);
        if (hr is not null && hr.Length != hy.Length)
        {
            throw new ArgumentException($"residual has {hr.Length} elements but the problem ({problem}) needs {hy.Length}");
        }

        ConvEpilogue? epilogue = null;
        if (activation is { } a)
        {
            float[] hg = Host(a.Gamma), hb = Host(a.Beta), hm = Host(a.RunningMean), hv = Host(a.RunningVar), ho = Host(a.Output);
            CheckLengths(problem, ("activation output", ho.Length, problem.OutputElements), ("gamma", hg.Length, problem.K),
                ("beta", hb.Length, problem.K), ("runningMean", hm.Length, problem.K), ("runningVar", hv.Length, problem.K));
            epilogue = new ConvEpilogue(hr, hg, hb, hm, hv, a.Eps, ho);
        }
        else if (hr is not null)
        {
            epilogue = new ConvEpilogue(hr, null, null, null, null, 0f, null);
        }

        CpuConv.Forward(problem, hx, hw, hy, Parallelism, epilogue);
    }

    void IBackend.Conv2dBackwardData(ConvProblem problem, Storage dy, Storage w, Storage dx, bool accumulate)
    {
        float[] hdy = Host(dy), hw = Host(w), hdx = Host(dx);
        CheckLengths(problem, ("dy", hdy.Length, problem.OutputElements), ("w", hw.Length, problem.WeightElements), ("dx", hdx.Length, problem.InputElements));
        if (accumulate)
        {
            CpuConv.BackwardDataAccumulate(problem, hdy, hw, hdx, Parallelism);
        }
        else
        {
            CpuConv.BackwardData(problem, hdy, hw, hdx, Parallelism);
        }
    }

    void IBackend.Conv2dBackwardWeight(ConvProblem problem, Storage x, Storage dy, Storage dw)
    {
        float[] hx = Host(x), hdy = Host(dy), hdw = Host(dw);
        CheckLengths(problem, ("x", hx.Length, problem.InputElements), ("dy", hdy.Length, problem.OutputElements), ("dw", hdw.Length, problem.WeightElements));
        CpuConv.BackwardWeight(problem, hx, hdy, hdw, Parallelism);
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
