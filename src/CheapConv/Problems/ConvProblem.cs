using System.Runtime.InteropServices;

namespace CheapConv.Problems;

/// <summary>
/// A 2D convolution problem: the C# twin of <c>cc_conv_problem</c> in native/include/cheapconv/problem.h
/// (same fields, same order, all 32-bit), passed by value to the kernels. Cross-correlation as in PyTorch:
/// x is N×C×H×W, w is K×(C/groups)×R×S, y is N×K×P×Q, all NCHW fp32.
/// </summary>
[StructLayout(LayoutKind.Sequential)]
public readonly record struct ConvProblem
{
    // Set only through Create (validated, P and Q derived): a problem from outside this assembly is always consistent.
    public int N { get; internal init; }
    public int C { get; internal init; }
    public int H { get; internal init; }
    public int W { get; internal init; }
    public int K { get; internal init; }
    public int R { get; internal init; }
    public int S { get; internal init; }
    public int PadH { get; internal init; }
    public int PadW { get; internal init; }
    public int StrideH { get; internal init; }
    public int StrideW { get; internal init; }
    public int Groups { get; internal init; }
    public int P { get; internal init; }
    public int Q { get; internal init; }
    public int Layout { get; internal init; }
    public int DType { get; internal init; }

    /// <summary>Size in bytes of the native struct; a test checks it against the C header's layout.</summary>
    internal const int NativeSize = 16 * sizeof(int);

    /// <summary>
    /// Builds a validated problem with square stride and padding, deriving P and Q.
    /// Throws <see cref="InvalidProblemException"/> with a message that says what is wrong.
    /// </summary>
    [System.Diagnostics.CodeAnalysis.SuppressMessage("ApiDesign", "RS0027",
        Justification = "The square form has the defaults; the full form has none, so no call can be ambiguous.")]
    public static ConvProblem Create(int n, int c, int h, int w, int k, int r, int s,
        int stride = 1, int pad = 0, int groups = 1) =>
        Create(n, c, h, w, k, r, s, stride, stride, pad, pad, groups);

    public static ConvProblem Create(int n, int c, int h, int w, int k, int r, int s,
        int strideH, int strideW, int padH, int padW, int groups)
    {
        var error = Validate(n, c, h, w, k, r, s, strideH, strideW, padH, padW, groups);
        if (error is not null)
        {
            throw new InvalidProblemException(error);
        }

        return new ConvProblem
        {
            N = n, C = c, H = h, W = w, K = k, R = r, S = s,
            PadH = padH, PadW = padW, StrideH = strideH, StrideW = strideW, Groups = groups,
            P = (h + 2 * padH - r) / strideH + 1,
            Q = (w + 2 * padW - s) / strideW + 1,
        };
    }

    /// <summary>Returns why the sizes do not describe a valid convolution, or null when they do.</summary>
    public static string? Validate(int n, int c, int h, int w, int k, int r, int s,
        int strideH, int strideW, int padH, int padW, int groups)
    {
        foreach (var (name, value) in new[] { ("N", n), ("C", c), ("H", h), ("W", w), ("K", k), ("R", r), ("S", s) })
        {
            if (value <= 0)
            {
                return $"{name} must be positive, got {value}";
            }
        }

        if (strideH <= 0 || strideW <= 0)
        {
            return $"stride must be positive, got {strideH}x{strideW}";
        }

        if (padH < 0 || padW < 0)
        {
            return $"padding must not be negative, got {padH}x{padW}";
        }

        if (groups <= 0)
        {
            return $"groups must be positive, got {groups}";
        }

        if (c % groups != 0)
        {
            return $"groups ({groups}) must divide the input channels C ({c})";
        }

        if (k % groups != 0)
        {
            return $"groups ({groups}) must divide the output channels K ({k})";
        }

        if (r > h + 2 * padH || s > w + 2 * padW)
        {
            return $"the {r}x{s} kernel is larger than the padded {h + 2 * padH}x{w + 2 * padW} input";
        }

        // Every tensor is indexed with 32-bit ints in the kernels.
        long[] sizes =
        [
            (long)n * c * h * w,
            (long)k * (c / groups) * r * s,
            (long)n * k * ((h + 2 * padH - r) / strideH + 1) * ((w + 2 * padW - s) / strideW + 1),
        ];
        if (sizes.Any(size => size > int.MaxValue))
        {
            return "a tensor of this problem has more than 2^31-1 elements, which the kernels do not index";
        }

        return null;
    }

    /// <summary>Input channels per group.</summary>
    public int ChannelsPerGroup => C / Groups;

    /// <summary>Output channels per group.</summary>
    public int FiltersPerGroup => K / Groups;

    public long InputElements => (long)N * C * H * W;

    public long WeightElements => (long)K * ChannelsPerGroup * R * S;

    public long OutputElements => (long)N * K * P * Q;

    /// <summary>Multiply-accumulates of the forward pass (each backward pass costs the same).</summary>
    public long Macs => OutputElements * ChannelsPerGroup * R * S;

    public int[] InputShape => [N, C, H, W];

    public int[] WeightShape => [K, ChannelsPerGroup, R, S];

    public int[] OutputShape => [N, K, P, Q];

    /// <summary>The one-line form used by the shape catalogue and error messages.</summary>
    public override string ToString() =>
        $"N={N} C={C} H={H} W={W} K={K} R={R} S={S} stride={StrideH}x{StrideW} pad={PadH}x{PadW} groups={Groups} -> P={P} Q={Q}";
}

/// <summary>A convolution problem that cannot exist (groups not dividing C, kernel larger than the input, ...).</summary>
public sealed class InvalidProblemException(string message) : Exception(message);
