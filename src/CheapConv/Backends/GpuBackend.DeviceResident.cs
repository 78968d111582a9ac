using CheapConv.Devices;
using CheapConv.Interop;

namespace CheapConv.Backends;

// The device-resident ops of IBackend.DeviceResident.cs: none of them makes the host wait.
public sealed unsafe partial class GpuBackend
{
    public void CopyFromHost(ReadOnlySpan<float> source, Storage destination)
    {
        var target = Buffer(destination);
        CpuBackend.CheckElements(nameof(source), source.Length, target.Length);
        fixed (float* pointer = source)
        {
            Device.CopyHostToDeviceStaged(target.Pointer, pointer, (long)source.Length * sizeof(float));
        }
    }

    public void CopyElements(Storage source, long sourceOffset, Storage destination, long destinationOffset, long count)
    {
        CpuBackend.CheckSlice(nameof(source), source, sourceOffset, count);
        CpuBackend.CheckSlice(nameof(destination), destination, destinationOffset, count);
        Device.CopyDeviceToDevice(Element(destination, destinationOffset), Element(source, sourceOffset), count * sizeof(float));
    }

    public StorageList CreateList(IReadOnlyList<Storage> storages) => new DeviceStorageList(this, storages);

    public void FirstNonFinite(StorageList list, Storage result, long resultOffset)
    {
        var table = list is DeviceStorageList own && own.Backend == this
            ? own.Table
            : throw new ArgumentException($"a storage list made by another backend was given to the backend of {Device.Name}", nameof(list));
        CpuBackend.CheckSlice(nameof(result), result, resultOffset, list.Storages.Count);
        Device.Native.FirstNonFinite(Device.Handle, table.Pointer, list.Storages.Count, Element(result, resultOffset), Device.Stream);
        Device.Queued("cc_first_nonfinite", new ElementwiseProblem(list.Storages.Count)); // the tensor count, for a fault's message
    }

    public void CountCorrect(int n, int classes, Storage logits, ReadOnlySpan<int> labels, Storage result, long resultOffset)
    {
        CpuBackend.CheckRows(n, classes);
        CpuBackend.CheckLabels(labels, n, classes);
        CpuBackend.CheckCountBelowFloatLimit(n);
        var rows = Buffer(logits);
        CheckLossBuffer(nameof(logits), rows, (long)n * classes);
        CpuBackend.CheckSlice(nameof(result), result, resultOffset, 1);
        var deviceLabels = UploadLabels(labels);
        var problem = new LossProblem(n, classes, 0, 0, 0, 0);
        Device.Native.CountCorrectF32(Device.Handle, problem, rows.Pointer, deviceLabels.Pointer, Element(result, resultOffset), Device.Stream);
        Device.Queued("cc_count_correct_f32", problem);
    }

    public StorageArena? AllocateArena(IReadOnlyList<long> lengths)
    {
        ArgumentNullException.ThrowIfNull(lengths);
        if (lengths.Count == 0 || lengths.Any(length => length <= 0))
        {
            throw new ArgumentException($"an arena needs at least one part, each of positive length, got [{string.Join(", ", lengths)}]");
        }

        // Each part starts on a 256-byte boundary, as cuMemAlloc's allocations do, so every vector-load path of the
        // kernels stays open to it.
        const long Alignment = 256 / sizeof(float);
        var offsets = new long[lengths.Count];
        long total = 0;
        for (var i = 0; i < lengths.Count; i++)
        {
            offsets[i] = total;
            total = checked(total + (lengths[i] + Alignment - 1) / Alignment * Alignment);
        }

        var whole = Device.Allocate<float>(total);
        whole.FillBytes(0); // the padding stays zero: an op over the whole arena leaves it so
        var parts = lengths.Select((length, i) =>
            (Storage)new DeviceStorage(DeviceBuffer<float>.Wrap(Device, whole.Pointer + checked((nint)(offsets[i] * sizeof(float))), length), whole)).ToList();
        return new StorageArena(new DeviceStorage(whole), parts);
    }

    public StorageReadback CreateReadback(Storage source) => new DeviceReadback(Buffer(source));

    /// <summary>The device address of element <paramref name="offset"/> of a storage of this backend.</summary>
    private nint Element(Storage storage, long offset) => Buffer(storage).Pointer + checked((nint)(offset * sizeof(float)));

    /// <summary>A storage's read-back through the device's <see cref="HostReadback"/>.</summary>
    private sealed class DeviceReadback(DeviceBuffer<float> source) : StorageReadback
    {
        private readonly HostReadback _readback = source.Device.CreateReadback(source.Bytes);
        private bool _started;

        public override void Start()
        {
            _readback.Start(source.Pointer, source.Bytes);
            _started = true;
        }

        public override bool TryFinish(Span<float> destination)
        {
            if (!_started)
            {
                throw new InvalidOperationException("TryFinish before any Start");
            }

            if (!_readback.IsDone)
            {
                return false;
            }

            System.Runtime.InteropServices.MemoryMarshal.Cast<byte, float>(_readback.Data).CopyTo(destination);
            return true;
        }

        public override void Dispose() => _readback.Dispose();
    }

    /// <summary>The list's pointers and lengths as cc_tensor_ref entries in device memory, uploaded once.</summary>
    private sealed class DeviceStorageList : StorageList
    {
        public DeviceStorageList(GpuBackend backend, IReadOnlyList<Storage> storages)
            : base(storages)
        {
            Backend = backend;
            var entries = Storages.Select(storage => new TensorRef(backend.Buffer(storage).Pointer, storage.Length)).ToArray();
            Table = backend.Device.Upload<TensorRef>(entries);
        }

        public GpuBackend Backend { get; }

        public DeviceBuffer<TensorRef> Table { get; }

        public override void Dispose() => Table.Dispose();
    }
}
