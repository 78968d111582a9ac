using System.Runtime.CompilerServices;
using CheapConv.Devices;

namespace CheapConv.Tests.Emulator;

/// <summary>
/// Packs a kernel's arguments the way <c>cuLaunchKernel</c> and <c>cc_emu_launch</c> take them, for the tests that
/// launch the emulator's diagnostic kernels by name (production code goes through the C ABI, which packs its own):
/// an array of pointers, the i-th pointing at the i-th argument's value. Values live in an inline buffer of this
/// struct, so packing allocates nothing; keep the struct on the stack until <see cref="Launch"/> returns.
/// <code>
/// var args = new KernelArguments();
/// args.Add(x.Pointer); args.Add(n);
/// args.Launch(device, "cc_test_block_reduce", config, "diagnostics test");
/// </code>
/// </summary>
internal unsafe struct KernelArguments
{
    /// <summary>Most arguments a kernel may take here.</summary>
    public const int MaxArguments = 16;

    private const int ValueBytes = 512;

    private ValueBuffer _values;
    private OffsetBuffer _offsets;
    private int _count;
    private int _used;

    [InlineArray(ValueBytes / 8)]
    private struct ValueBuffer
    {
        private long _element;
    }

    [InlineArray(MaxArguments)]
    private struct OffsetBuffer
    {
        private int _element;
    }

    /// <summary>Adds one argument: a pointer (nint), int, float, or a POD descriptor struct by value.</summary>
    public void Add<T>(T value) where T : unmanaged
    {
        if (_count == MaxArguments)
        {
            throw new InvalidOperationException($"a kernel takes at most {MaxArguments} arguments here");
        }

        // Align every value to 8 bytes: enough for pointers and for the int-only descriptor structs.
        var offset = (_used + 7) & ~7;
        if (offset + sizeof(T) > ValueBytes)
        {
            throw new InvalidOperationException($"kernel arguments exceed {ValueBytes} bytes");
        }

        fixed (ValueBuffer* values = &_values)
        {
            *(T*)((byte*)values + offset) = value;
        }

        _offsets[_count++] = offset;
        _used = offset + sizeof(T);
    }

    /// <summary>Launches <paramref name="kernel"/> on <paramref name="device"/> with the arguments added so far.</summary>
    public void Launch(EmulatedDevice device, string kernel, LaunchConfig config, string description)
    {
        fixed (ValueBuffer* values = &_values)
        {
            var pointers = stackalloc void*[Math.Max(_count, 1)];
            for (var i = 0; i < _count; i++)
            {
                pointers[i] = (byte*)values + _offsets[i];
            }

            device.Launch(kernel, config, pointers, description);
        }
    }
}
