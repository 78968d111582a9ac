using System.Reflection;

namespace CheapConv.Kernels;

/// <summary>
/// The <c>extern "C"</c> names of the kernels in native/kernels, shared by both devices. One partial file
/// per op family (KernelNames.Gemm.cs, …) next to this one; every <c>const string</c> here is a kernel.
/// </summary>
public static partial class KernelNames
{
    public const string Conv2dForward = "cc_conv2d_forward_kernel";
    public const string Conv2dBackwardData = "cc_conv2d_backward_data_kernel";
    public const string Conv2dBackwardWeight = "cc_conv2d_backward_weight_kernel";

    /// <summary>Every kernel the library launches; each must be in the PTX and in the emulator library.</summary>
    public static IReadOnlyList<string> All { get; } = typeof(KernelNames)
        .GetFields(BindingFlags.Public | BindingFlags.Static)
        .Where(f => f.IsLiteral && f.FieldType == typeof(string))
        .Select(f => (string)f.GetRawConstantValue()!)
        .Order(StringComparer.Ordinal)
        .ToList();
}
