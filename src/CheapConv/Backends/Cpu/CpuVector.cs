using System.Numerics;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;

namespace CheapConv.Backends.Cpu;

/// <summary>
/// Vectorised element-wise loops for the fast CPU paths. Each element gets exactly the operations of the
/// reference (same roundings, FMA where the reference uses FMA), so these results equal the reference bit for
/// bit; only the sums (<see cref="Sum"/>) group their additions differently (by vector lane).
/// </summary>
internal static class CpuVector
{
    /// <summary>Below this many elements the thread pool costs more than it saves.</summary>
    private const int ParallelThreshold = 1 << 16;

    /// <summary>Runs body(start, length) over [0, count) in fixed slices, over the thread pool when large.</summary>
    public static void ForSlices(int count, ParallelOptions parallel, Action<int, int> body)
    {
        const int Slice = 1 << 15;
        if (count < ParallelThreshold)
        {
            body(0, count);
            return;
        }

        var slices = (count + Slice - 1) / Slice;
        Parallel.For(0, slices, parallel, slice => body(slice * Slice, Math.Min(Slice, count - slice * Slice)));
    }

    /// <summary>target[i] += addend[i].</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void AddInPlace(Span<float> target, ReadOnlySpan<float> addend)
    {
        var vt = MemoryMarshal.Cast<float, Vector<float>>(target);
        var va = MemoryMarshal.Cast<float, Vector<float>>(addend[..target.Length]);
        for (var i = 0; i < vt.Length; i++)
        {
            vt[i] += va[i];
        }

        for (var i = vt.Length * Vector<float>.Count; i < target.Length; i++)
        {
            target[i] += addend[i];
        }
    }

    /// <summary>y = a + b over the first <paramref name="count"/> elements (y may alias a or b).</summary>
    public static void Add(int count, float[] a, float[] b, float[] y, ParallelOptions parallel) => ForSlices(count, parallel, (start, length) => AddSlice(a, b, y, start, length));

    /// <summary>y = a + b over [start, start + length) (also run image by image by <see cref="ConvEpilogue"/>).</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    internal static void AddSlice(float[] a, float[] b, float[] y, int start, int length)
    {
        ReadOnlySpan<float> sa = a.AsSpan(start, length), sb = b.AsSpan(start, length);
        var sy = y.AsSpan(start, length);
        var va = MemoryMarshal.Cast<float, Vector<float>>(sa);
        var vb = MemoryMarshal.Cast<float, Vector<float>>(sb);
        var vy = MemoryMarshal.Cast<float, Vector<float>>(sy);
        for (var i = 0; i < vy.Length; i++)
        {
            vy[i] = va[i] + vb[i];
        }

        for (var i = vy.Length * Vector<float>.Count; i < length; i++)
        {
            sy[i] = sa[i] + sb[i];
        }
    }

    /// <summary>y = x &lt; 0 ? 0 : x (NaN stays NaN, −0 stays −0, as the reference).</summary>
    public static void Relu(int count, float[] x, float[] y, ParallelOptions parallel) => ForSlices(count, parallel, (start, length) => ReluSlice(x, y, start, length));

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void ReluSlice(float[] x, float[] y, int start, int length)
    {
        ReadOnlySpan<float> sx = x.AsSpan(start, length);
        var sy = y.AsSpan(start, length);
        var vx = MemoryMarshal.Cast<float, Vector<float>>(sx);
        var vy = MemoryMarshal.Cast<float, Vector<float>>(sy);
        for (var i = 0; i < vy.Length; i++)
        {
            vy[i] = Vector.ConditionalSelect(Vector.LessThan(vx[i], Vector<float>.Zero), Vector<float>.Zero, vx[i]);
        }

        for (var i = vy.Length * Vector<float>.Count; i < length; i++)
        {
            sy[i] = sx[i] < 0 ? 0 : sx[i];
        }
    }

    /// <summary>dx = y &gt; 0 ? dy : 0.</summary>
    public static void ReluBackward(int count, float[] y, float[] dy, float[] dx, ParallelOptions parallel) => ForSlices(count, parallel, (start, length) => ReluBackwardSlice(y, dy, dx, start, length));

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void ReluBackwardSlice(float[] y, float[] dy, float[] dx, int start, int length)
    {
        ReadOnlySpan<float> sy = y.AsSpan(start, length), sdy = dy.AsSpan(start, length);
        var sdx = dx.AsSpan(start, length);
        var vy = MemoryMarshal.Cast<float, Vector<float>>(sy);
        var vdy = MemoryMarshal.Cast<float, Vector<float>>(sdy);
        var vdx = MemoryMarshal.Cast<float, Vector<float>>(sdx);
        for (var i = 0; i < vdx.Length; i++)
        {
            vdx[i] = Vector.ConditionalSelect(Vector.GreaterThan(vy[i], Vector<float>.Zero), vdy[i], Vector<float>.Zero);
        }

        for (var i = vdx.Length * Vector<float>.Count; i < length; i++)
        {
            sdx[i] = sy[i] > 0 ? sdy[i] : 0;
        }
    }

    /// <summary>x *= alpha.</summary>
    public static void Scale(float[] x, float alpha, ParallelOptions parallel) => ForSlices(x.Length, parallel, (start, length) => ScaleSlice(x, alpha, start, length));

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void ScaleSlice(float[] x, float alpha, int start, int length)
    {
        var sx = x.AsSpan(start, length);
        var vx = MemoryMarshal.Cast<float, Vector<float>>(sx);
        var va = new Vector<float>(alpha);
        for (var i = 0; i < vx.Length; i++)
        {
            vx[i] *= va;
        }

        for (var i = vx.Length * Vector<float>.Count; i < length; i++)
        {
            sx[i] *= alpha;
        }
    }

    /// <summary>y = FMA(alpha, x, y), one rounding per element as the reference.</summary>
    public static void Axpy(float alpha, float[] x, float[] y, ParallelOptions parallel) => ForSlices(x.Length, parallel, (start, length) => AxpySlice(alpha, x, y, start, length));

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void AxpySlice(float alpha, float[] x, float[] y, int start, int length)
    {
        ReadOnlySpan<float> sx = x.AsSpan(start, length);
        var sy = y.AsSpan(start, length);
        var vx = MemoryMarshal.Cast<float, Vector<float>>(sx);
        var vy = MemoryMarshal.Cast<float, Vector<float>>(sy);
        var va = new Vector<float>(alpha);
        for (var i = 0; i < vy.Length; i++)
        {
            vy[i] = Vector.FusedMultiplyAdd(va, vx[i], vy[i]);
        }

        for (var i = vy.Length * Vector<float>.Count; i < length; i++)
        {
            sy[i] = MathF.FusedMultiplyAdd(alpha, sx[i], sy[i]);
        }
    }

    /// <summary>Σ x[i]: per-lane sums, then the lanes in order, then the tail — a fixed order for a given vector width.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static float Sum(ReadOnlySpan<float> x)
    {
        var vx = MemoryMarshal.Cast<float, Vector<float>>(x);
        var acc = Vector<float>.Zero;
        for (var i = 0; i < vx.Length; i++)
        {
            acc += vx[i];
        }

        var sum = 0f;
        for (var lane = 0; lane < Vector<float>.Count; lane++)
        {
            sum += acc[lane];
        }

        for (var i = vx.Length * Vector<float>.Count; i < x.Length; i++)
        {
            sum += x[i];
        }

        return sum;
    }
}
