using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.Arm;
using System.Runtime.Intrinsics.X86;

namespace CheapConv.Backends.Cpu;

/// <summary>The register widths a <see cref="ILanes{TVector}"/> kernel can run at.</summary>
internal enum LaneWidth
{
    /// <summary>One float at a time: any machine.</summary>
    Scalar,

    /// <summary>Vector128 with fused multiply-add (Arm64's AdvSimd, or x86 with FMA).</summary>
    Vector128,

    /// <summary>Vector256 with fused multiply-add (AVX2 + FMA).</summary>
    Vector256,

    /// <summary>Vector512 (AVX-512).</summary>
    Vector512,
}

/// <summary>
/// The few vector operations the depthwise kernels need, at one register width: a kernel written once over
/// <c>TLanes : ILanes&lt;TVector&gt;</c> is compiled by the JIT separately for each struct below (generic code over value
/// types is specialised), so the same source runs as Vector512, Vector256, Vector128 or scalar code with nothing virtual left.
/// </summary>
/// <remarks>
/// MultiplyAdd is fused (one rounding) at every width, so a lane of a vector and the scalar code give the same bits.
/// </remarks>
internal unsafe interface ILanes<TVector> where TVector : unmanaged
{
    static abstract int Count { get; }

    static abstract TVector Zero { get; }

    static abstract TVector Broadcast(float value);

    static abstract TVector Load(float* source);

    static abstract void Store(TVector value, float* destination);

    /// <summary>a·b + addend with one rounding.</summary>
    static abstract TVector MultiplyAdd(TVector a, TVector b, TVector addend);

    static abstract TVector Add(TVector a, TVector b);

    /// <summary>The sum of the lanes, in an order fixed by the width (not by the data or the thread).</summary>
    static abstract float Sum(TVector value);
}

/// <summary>Which <see cref="LaneWidth"/> the machine runs natively.</summary>
internal static class Lanes
{
    /// <summary>True when <paramref name="width"/> runs in hardware here (scalar always does).</summary>
    public static bool IsAccelerated(LaneWidth width) => width switch
    {
        LaneWidth.Vector512 => Vector512.IsHardwareAccelerated && Avx512F.IsSupported,
        // Without FMA, Vector256.FusedMultiplyAdd would be emulated in software: slower than scalar code.
        LaneWidth.Vector256 => Vector256.IsHardwareAccelerated && Fma.IsSupported,
        LaneWidth.Vector128 => Vector128.IsHardwareAccelerated && (Fma.IsSupported || AdvSimd.IsSupported),
        _ => true,
    };

    /// <summary>
    /// The widest accelerated width whose vectors fit a row of <paramref name="rowLength"/> floats (a shorter row would leave
    /// most of every vector idle); a function of the row and the machine alone, never of the thread count.
    /// </summary>
    public static LaneWidth Best(int rowLength)
    {
        if (IsAccelerated(LaneWidth.Vector512) && rowLength >= Vector512<float>.Count)
        {
            return LaneWidth.Vector512;
        }

        if (IsAccelerated(LaneWidth.Vector256))
        {
            return LaneWidth.Vector256;
        }

        // Arm64 (Vector256 is not accelerated there): its 128-bit vectors rather than scalar code.
        return IsAccelerated(LaneWidth.Vector128) ? LaneWidth.Vector128 : LaneWidth.Scalar;
    }
}

internal readonly unsafe struct Lanes512 : ILanes<Vector512<float>>
{
    public static int Count => Vector512<float>.Count;

    public static Vector512<float> Zero => Vector512<float>.Zero;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector512<float> Broadcast(float value) => Vector512.Create(value);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector512<float> Load(float* source) => Vector512.Load(source);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void Store(Vector512<float> value, float* destination) => value.Store(destination);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector512<float> MultiplyAdd(Vector512<float> a, Vector512<float> b, Vector512<float> addend) =>
        Vector512.FusedMultiplyAdd(a, b, addend);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector512<float> Add(Vector512<float> a, Vector512<float> b) => a + b;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static float Sum(Vector512<float> value) => Vector512.Sum(value);
}

internal readonly unsafe struct Lanes256 : ILanes<Vector256<float>>
{
    public static int Count => Vector256<float>.Count;

    public static Vector256<float> Zero => Vector256<float>.Zero;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<float> Broadcast(float value) => Vector256.Create(value);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<float> Load(float* source) => Vector256.Load(source);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void Store(Vector256<float> value, float* destination) => value.Store(destination);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<float> MultiplyAdd(Vector256<float> a, Vector256<float> b, Vector256<float> addend) =>
        Vector256.FusedMultiplyAdd(a, b, addend);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<float> Add(Vector256<float> a, Vector256<float> b) => a + b;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static float Sum(Vector256<float> value) => Vector256.Sum(value);
}

internal readonly unsafe struct Lanes128 : ILanes<Vector128<float>>
{
    public static int Count => Vector128<float>.Count;

    public static Vector128<float> Zero => Vector128<float>.Zero;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector128<float> Broadcast(float value) => Vector128.Create(value);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector128<float> Load(float* source) => Vector128.Load(source);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void Store(Vector128<float> value, float* destination) => value.Store(destination);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector128<float> MultiplyAdd(Vector128<float> a, Vector128<float> b, Vector128<float> addend) =>
        Vector128.FusedMultiplyAdd(a, b, addend);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector128<float> Add(Vector128<float> a, Vector128<float> b) => a + b;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static float Sum(Vector128<float> value) => Vector128.Sum(value);
}

internal readonly unsafe struct LanesScalar : ILanes<float>
{
    public static int Count => 1;

    public static float Zero => 0f;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static float Broadcast(float value) => value;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static float Load(float* source) => *source;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void Store(float value, float* destination) => *destination = value;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static float MultiplyAdd(float a, float b, float addend) => MathF.FusedMultiplyAdd(a, b, addend);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static float Add(float a, float b) => a + b;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static float Sum(float value) => value;
}
