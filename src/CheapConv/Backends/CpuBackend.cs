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

    void IBackend.Conv2dForward(ConvProblem problem, Storage x, Storage w, Storage y) =>
        Conv2dForward(problem, Host(x), Host(w), Host(y));

    void IBackend.Conv2dBackwardData(ConvProblem problem, Storage dy, Storage w, Storage dx) =>
        Conv2dBackwardData(problem, Host(dy), Host(w), Host(dx));

    void IBackend.Conv2dBackwardWeight(ConvProblem problem, Storage x, Storage dy, Storage dw) =>
        Conv2dBackwardWeight(problem, Host(x), Host(dy), Host(dw));

    /// <summary>The array behind a storage of this backend.</summary>
    internal static float[] Host(Storage storage) => storage is HostStorage host
        ? host.Data
        : throw new ArgumentException($"a {storage.GetType().Name} was given to the cpu backend, which works on host storages only");

    internal static void CheckSameLength(Storage a, Storage b)
    {
        if (a.Length != b.Length)
        {
            throw new ArgumentException($"storages of {a.Length} and {b.Length} elements where equal lengths are needed");
        }
    }
}
