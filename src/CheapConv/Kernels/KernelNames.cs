namespace CheapConv.Kernels;

/// <summary>The <c>extern "C"</c> names of the kernels in native/kernels, shared by both devices.</summary>
public static class KernelNames
{
    public const string Conv2dForward = "cc_conv2d_forward";
    public const string Conv2dBackwardData = "cc_conv2d_backward_data";
    public const string Conv2dBackwardWeight = "cc_conv2d_backward_weight";

    /// <summary>Every kernel the library launches; each must be in the PTX and in the emulator library.</summary>
    public static IReadOnlyList<string> All { get; } = [Conv2dForward, Conv2dBackwardData, Conv2dBackwardWeight];
}
