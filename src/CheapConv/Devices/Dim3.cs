using System.Runtime.InteropServices;

namespace CheapConv.Devices;

/// <summary>A CUDA grid or block size; the layout matches <c>cc_dim3</c> in native/emu/cc_emu.h.</summary>
[StructLayout(LayoutKind.Sequential)]
internal readonly record struct Dim3(uint X, uint Y = 1, uint Z = 1)
{
    public long Volume => (long)X * Y * Z;

    public override string ToString() => $"({X},{Y},{Z})";
}

/// <summary>Everything besides the arguments that a kernel launch needs.</summary>
internal readonly record struct LaunchConfig(Dim3 Grid, Dim3 Block, uint DynamicSharedBytes = 0)
{
    public override string ToString() => $"grid {Grid} block {Block} dynamic shared {DynamicSharedBytes} B";
}
