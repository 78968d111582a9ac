using System.Runtime.InteropServices;
using CheapConv.Backends;
using CheapConv.Devices;
using CheapConv.Tests.Emulator;
using Xunit;

namespace CheapConv.Tests.Devices;

/// <summary>
/// Owned and borrowed device memory, on the emulator (where device memory is host memory): a buffer from Allocate
/// frees its memory once, a buffer from Wrap runs kernels on someone else's memory and leaves it allocated.
/// </summary>
public sealed class DeviceBufferTests(EmulatorFixture emulator) : IClassFixture<EmulatorFixture>
{
    [Fact]
    public unsafe void Wrap_ForeignMemory_RunsKernelsOnItAndNeverFreesIt()
    {
        var memory = (float*)NativeMemory.AlignedAlloc(4 * sizeof(float), 64);
        try
        {
            new float[] { -1, 2, -3, 4 }.CopyTo(new Span<float>(memory, 4));
            var borrowed = DeviceBuffer<float>.Wrap(emulator.Device, (nint)memory, 4);
            Assert.False(borrowed.OwnsMemory);
            IBackend backend = new GpuBackend(emulator.Device);
            using var storage = new DeviceStorage(borrowed);
            backend.ReluForward(4, storage, storage);

            borrowed.Dispose();
            borrowed.Dispose();

            Assert.Throws<ObjectDisposedException>(() => borrowed.Pointer);
            // Still the caller's, still allocated, holding what the kernel wrote: freeing it below is the only free.
            Assert.Equal([0f, 2, 0, 4], new Span<float>(memory, 4).ToArray());
            using var again = DeviceBuffer<float>.Wrap(emulator.Device, (nint)memory, 4);
            Assert.Equal([0f, 2, 0, 4], again.ToArray());
        }
        finally
        {
            NativeMemory.AlignedFree(memory);
        }
    }

    [Fact]
    public void Wrap_RefusesNullAndMisalignedPointers()
    {
        Assert.Throws<ArgumentException>(() => DeviceBuffer<float>.Wrap(emulator.Device, 0, 4));
        Assert.Throws<ArgumentException>(() => DeviceBuffer<float>.Wrap(emulator.Device, 0x1002, 4));
        Assert.Throws<ArgumentOutOfRangeException>(() => DeviceBuffer<float>.Wrap(emulator.Device, 0x1000, -1));
        using var empty = DeviceBuffer<float>.Wrap(emulator.Device, 0, 0);
        Assert.Equal(0, empty.Bytes);
    }

    [Fact]
    public void Allocate_OwnsItsMemory_AndDisposeIsIdempotent()
    {
        var buffer = emulator.Device.Upload<float>([1, 2, 3]);
        Assert.True(buffer.OwnsMemory);
        Assert.Equal([1f, 2, 3], buffer.ToArray());

        buffer.Dispose();
        buffer.Dispose();

        Assert.Throws<ObjectDisposedException>(() => buffer.Pointer);
    }
}
