using System.Reflection;
using System.Runtime.InteropServices;
using CheapConv.Backends;
using CheapConv.Devices;
using CheapConv.Interop;
using CheapConv.Problems;
using Xunit;

namespace CheapConv.Tests.Devices;

/// <summary>
/// The fake CUDA driver (native/tests/fake_cuda/fake_cuda.cpp) seen from C#: its log of what it was asked, and the
/// driver calls a scenario makes itself to play the caller — another engine that owns a context, a stream and memory.
/// They go to the fake directly, never through <see cref="CudaDriver"/>, so that what the caller did cannot be
/// mistaken for what <see cref="CudaDevice"/> did.
/// </summary>
internal sealed unsafe class FakeCuda
{
    private readonly nint _library = NativeLibrary.Load(LibraryPath);

    /// <summary>Initialises the driver, as the engine the scenario plays would have before making contexts.</summary>
    public FakeCuda() => Check(((delegate* unmanaged<uint, int>)Export("cuInit"))(0), "cuInit");

    /// <summary>Where the native build puts the fake driver (make -C native test-support).</summary>
    public static string LibraryPath => TestPaths.Native("build", "test", "libcheapconv_fake_cuda.so");

    /// <summary>How the fake's log prints a pointer (glibc's %p).</summary>
    public static string Pointer(nint pointer) => pointer == 0 ? "(nil)" : $"0x{pointer:x}";

    /// <summary>Everything logged since the last <see cref="Reset"/>.</summary>
    public string Log => Marshal.PtrToStringUTF8(((delegate* unmanaged<nint>)Export("fake_cuda_log"))()) ?? "";

    /// <summary>The log's lines that start with <paramref name="prefix"/>, in order.</summary>
    public List<string> Lines(string prefix) =>
        [.. Log.Split('\n', StringSplitOptions.RemoveEmptyEntries).Where(line => line.StartsWith(prefix, StringComparison.Ordinal))];

    public void Reset() => ((delegate* unmanaged<void>)Export("fake_cuda_reset"))();

    /// <summary>The context current on the calling thread (0 for none).</summary>
    public nint Current
    {
        get
        {
            nint context;
            Check(((delegate* unmanaged<nint*, int>)Export("cuCtxGetCurrent"))(&context), "cuCtxGetCurrent");
            return context;
        }
    }

    /// <summary>A new context of <paramref name="device"/>, current on this thread (cuCtxCreate).</summary>
    public nint CreateContext(int device)
    {
        nint context;
        Check(((delegate* unmanaged<nint*, uint, int, int>)Export("cuCtxCreate_v2"))(&context, 0, device), "cuCtxCreate_v2");
        return context;
    }

    public void DestroyContext(nint context) => Check(((delegate* unmanaged<nint, int>)Export("cuCtxDestroy_v2"))(context), "cuCtxDestroy_v2");

    public void SetCurrent(nint context) => Check(((delegate* unmanaged<nint, int>)Export("cuCtxSetCurrent"))(context), "cuCtxSetCurrent");

    public nint RetainPrimary(int device)
    {
        nint context;
        Check(((delegate* unmanaged<nint*, int, int>)Export("cuDevicePrimaryCtxRetain"))(&context, device), "cuDevicePrimaryCtxRetain");
        return context;
    }

    public void ReleasePrimary(int device) =>
        Check(((delegate* unmanaged<int, int>)Export("cuDevicePrimaryCtxRelease_v2"))(device), "cuDevicePrimaryCtxRelease_v2");

    /// <summary>A stream of the current context.</summary>
    public nint CreateStream()
    {
        nint stream;
        Check(((delegate* unmanaged<nint*, uint, int>)Export("cuStreamCreate"))(&stream, 0), "cuStreamCreate");
        return stream;
    }

    public void DestroyStream(nint stream) => Check(((delegate* unmanaged<nint, int>)Export("cuStreamDestroy_v2"))(stream), "cuStreamDestroy_v2");

    /// <summary>Device memory in the current context, allocated by "the caller".</summary>
    public nint Allocate(long bytes)
    {
        nint pointer;
        Check(((delegate* unmanaged<nint*, nuint, int>)Export("cuMemAlloc_v2"))(&pointer, (nuint)bytes), "cuMemAlloc_v2");
        return pointer;
    }

    /// <summary>cuMemFree's status: CUDA_SUCCESS only for memory that is still allocated.</summary>
    public int Free(nint pointer) => ((delegate* unmanaged<nint, int>)Export("cuMemFree_v2"))(pointer);

    private nint Export(string name) => NativeLibrary.GetExport(_library, name);

    private static void Check(int status, string call) => Assert.True(status == 0, $"the fake driver's {call} returned {status}");
}

/// <summary>
/// What <see cref="FakeDriverDeviceTests"/> runs in a child process whose CUDA driver is the fake one: each public
/// method is a scenario, named on the command line (<see cref="TestProgram"/>). A scenario asserts with xunit's
/// <see cref="Assert"/>; a failure prints the exception and the fake's log, and the process exits 1.
/// </summary>
internal static unsafe class FakeDriverScenarios
{
    public static int Run(string name, TextWriter output)
    {
        var scenario = typeof(FakeDriverScenarios).GetMethod(name, BindingFlags.Public | BindingFlags.Static);
        if (scenario is null || scenario.Name == nameof(Run))
        {
            output.WriteLine($"no fake-driver scenario named {name}");
            return 2;
        }

        var fake = new FakeCuda();
        try
        {
            // Never a real GPU: the device must have loaded the driver the environment names, the fake.
            Assert.Equal(FakeCuda.LibraryPath, CudaDriver.LibraryName);
            scenario.Invoke(null, [fake]);
            output.WriteLine($"{name}: passed");
            return 0;
        }
        catch (TargetInvocationException e) when (e.InnerException is not null)
        {
            output.WriteLine($"{name}: {e.InnerException}");
        }
        catch (Exception e)
        {
            output.WriteLine($"{name}: {e}");
        }

        output.WriteLine($"the fake driver's log since its last reset:\n{fake.Log}");
        return 1;
    }

    /// <summary>Open retains the device's primary context (the device for its memory, the C ABI handle for its kernels)
    /// and holds it while it lives; Dispose releases every retain, however often it is called, and leaves no released
    /// context current.</summary>
    public static void OpenRetainsThePrimaryContextAndDisposeReleasesIt(FakeCuda fake)
    {
        fake.Reset();
        var device = CudaDevice.Open();

        Assert.True(device.IsPrimaryContext);
        Assert.Equal(["retain 0 refs=1", "retain 0 refs=2"], fake.Lines("retain"));
        Assert.Empty(fake.Lines("release"));
        Assert.Equal(device.ContextHandle, fake.Current);
        Assert.StartsWith("cuda: Fake GPU 0 (device 0, sm_90), kernels: ", device.KernelBinary);

        device.Dispose();
        device.Dispose();

        Assert.Equal(["release 0 refs=1", "release 0 refs=0"], fake.Lines("release"));
        Assert.Equal(0, fake.Current);
    }

    /// <summary>
    /// Open without a stream makes a non-blocking stream of its own in the primary context and sends all its work there —
    /// so a graph capture, which CUDA refuses on the legacy default stream, is possible — and disposing destroys it once.
    /// With <see cref="CudaDevice.SynchronizeAfterEachLaunch"/> a launch recorded by a capture is not waited for (it has
    /// not run, and a capture refuses a wait); the graph's launch is.
    /// </summary>
    public static void OpenWorksOnANonBlockingStreamOfItsOwnWhichCaptures(FakeCuda fake)
    {
        fake.Reset();
        var device = CudaDevice.Open();
        Assert.NotEqual(0, device.StreamHandle);
        Assert.Equal(device.StreamHandle, device.Stream);
        var stream = FakeCuda.Pointer(device.StreamHandle);
        Assert.Equal([$"stream create {stream} context={FakeCuda.Pointer(device.ContextHandle)} flags={CudaDriver.CU_STREAM_NON_BLOCKING}"],
            fake.Lines("stream create"));

        using (var backend = new GpuBackend(device))
        using (var storage = ((IBackend)backend).Allocate(64))
        {
            device.SynchronizeAfterEachLaunch = true;
            fake.Reset();
            device.BeginCapture();
            ((IBackend)backend).Fill(storage, 1f);
            backend.Buffer(storage).FillBytes(7);
            using (var graph = device.EndCapture())
            {
                graph.Launch();
            }

            device.SynchronizeAfterEachLaunch = false;
            backend.CopyFromHost(new float[64], storage);
            var work = fake.Log.Split('\n', StringSplitOptions.RemoveEmptyEntries)
                .Where(line => line.Contains("stream=", StringComparison.Ordinal)).ToList();
            // Each line's name: its words before the first pointer or key=value.
            var names = work.Select(line =>
                string.Join(' ', line.Split(' ').TakeWhile(word => !word.Contains('=', StringComparison.Ordinal) && !word.StartsWith("0x", StringComparison.Ordinal)))).ToList();
            Assert.StartsWith("launch cc_fill", names[1], StringComparison.Ordinal);
            Assert.Equal(["capture begin", "launch", "memset8", "capture end", "graph launch", "sync", "memcpy htod", "event record"],
                names.Select(name => name.StartsWith("launch ", StringComparison.Ordinal) ? "launch" : name));
            Assert.All(work, line => Assert.Contains($"stream={stream}", line));
        }

        Assert.Empty(fake.Lines("stream destroy"));
        device.Dispose();
        device.Dispose();
        Assert.Equal([$"stream destroy {stream}"], fake.Lines("stream destroy"));
    }

    /// <summary>FromContext works in the caller's context and on the caller's stream — binding the context itself, since
    /// the caller's thread may have none current — and disposing it leaves context, stream and memory to the caller.</summary>
    public static void FromContextUsesTheCallersContextAndStreamAndLeavesThemAlive(FakeCuda fake)
    {
        var problem = ConvProblem.Create(n: 2, c: 8, h: 9, w: 7, k: 8, r: 3, s: 3, stride: 2, pad: 1, groups: 4);
        var context = fake.CreateContext(0);
        var stream = fake.CreateStream();
        var x = fake.Allocate(problem.InputElements * sizeof(float));
        var w = fake.Allocate(problem.WeightElements * sizeof(float));
        var y = fake.Allocate(problem.OutputElements * sizeof(float));
        fake.SetCurrent(0);
        fake.Reset();

        using (var device = CudaDevice.FromContext(context, stream))
        {
            Assert.False(device.IsPrimaryContext);
            Assert.Equal(context, device.ContextHandle);
            Assert.Equal(stream, device.StreamHandle);
            Assert.StartsWith("cuda: Fake GPU 0 (device 0, sm_90, the caller's context), kernels: ", device.KernelBinary);

            using var backend = new GpuBackend(device);
            using var xs = DeviceBuffer<float>.Wrap(device, x, problem.InputElements);
            using var ws = DeviceBuffer<float>.Wrap(device, w, problem.WeightElements);
            using var ys = DeviceBuffer<float>.Wrap(device, y, problem.OutputElements);
            xs.CopyFrom(Ramp(problem.InputElements));
            fake.Reset();
            backend.Conv2dForward(problem, xs, ws, ys);

            var launch = Assert.Single(fake.Lines("launch "));
            Assert.EndsWith($" stream={FakeCuda.Pointer(stream)} context={FakeCuda.Pointer(context)}", launch);
            Assert.Equal(Ramp(problem.InputElements), xs.ToArray());
            Assert.All(fake.Lines("memcpy "), line => Assert.EndsWith($" stream={FakeCuda.Pointer(stream)}", line));
        }

        Assert.Empty(fake.Lines("retain"));
        Assert.Empty(fake.Lines("release"));
        Assert.Empty(fake.Lines("context destroy"));
        Assert.Empty(fake.Lines("stream destroy"));
        Assert.Empty(fake.Lines("free"));

        // Still the caller's: its memory is allocated, its stream and context exist (the fake refuses the unknown).
        fake.SetCurrent(context);
        Assert.All(new[] { x, w, y }, pointer => Assert.Equal(0, fake.Free(pointer)));
        fake.DestroyStream(stream);
        fake.DestroyContext(context);
    }

    /// <summary>A wrapped pointer is never freed — not by the buffer, not by the device — while memory the device
    /// allocated is freed exactly once: by its buffer, or by the device for a buffer never disposed.</summary>
    public static void WrappedMemoryIsNeverFreedOwnedMemoryOnce(FakeCuda fake)
    {
        var device = CudaDevice.Open();
        var foreign = fake.Allocate(1024 * sizeof(float)); // someone else's, in the device's context (current after Open)
        fake.Reset();

        using (var borrowed = DeviceBuffer<float>.Wrap(device, foreign, 1024))
        {
            Assert.False(borrowed.OwnsMemory);
            borrowed.CopyFrom(Ramp(1024));
        }

        var owned = device.Allocate<float>(256);
        var ownedPointer = owned.Pointer;
        owned.Dispose();
        owned.Dispose();
        var forgotten = device.Allocate<float>(64).Pointer; // never disposed: the device frees it
        using (var again = DeviceBuffer<float>.Wrap(device, foreign, 1024))
        {
            Assert.Equal(Ramp(1024), again.ToArray());
        }

        device.Dispose();

        Assert.Equal([$"free {FakeCuda.Pointer(ownedPointer)}", $"free {FakeCuda.Pointer(forgotten)}"], fake.Lines("free"));
        fake.SetCurrent(fake.RetainPrimary(0));
        Assert.Equal(0, fake.Free(foreign));
        fake.ReleasePrimary(0);
    }

    /// <summary>Host data survives the trip to the device and back, through a device-to-device copy and a fill, also
    /// from a thread on which no context was current; copies go to the device's stream and those to the host wait for
    /// it; the memory counts agree with the driver's.</summary>
    public static void CopiesRoundTripHostData(FakeCuda fake)
    {
        using var device = CudaDevice.Open();
        var data = Ramp(100_003);
        fake.Reset();

        using var a = device.Upload<float>(data);
        using var b = device.Allocate<float>(data.Length);
        device.CopyDeviceToDevice(b.Pointer, a.Pointer, a.Bytes);
        Assert.Equal(data, a.ToArray());
        Assert.Equal(data, b.ToArray());
        b.FillBytes(0xFF);
        Assert.All(b.ToArray(), value => Assert.True(float.IsNaN(value)));
        Assert.Equal(data, Task.Run(a.ToArray).GetAwaiter().GetResult());

        var stream = FakeCuda.Pointer(device.StreamHandle); // the device's own stream
        var copies = fake.Log.Split('\n').Where(line => line.StartsWith("memcpy", StringComparison.Ordinal) ||
            line.StartsWith("memset8", StringComparison.Ordinal) || line.StartsWith("sync", StringComparison.Ordinal)).ToList();
        Assert.Equal(
            [
                $"memcpy htod bytes=400012 stream={stream}", $"sync stream={stream}", $"memcpy dtod bytes=400012 stream={stream}",
                $"memcpy dtoh bytes=400012 stream={stream}", $"sync stream={stream}", $"memcpy dtoh bytes=400012 stream={stream}", $"sync stream={stream}",
                $"memset8 bytes=400012 value=255 stream={stream}", $"memcpy dtoh bytes=400012 stream={stream}", $"sync stream={stream}",
                $"memcpy dtoh bytes=400012 stream={stream}", $"sync stream={stream}",
            ],
            copies);

        var (free, total) = device.GetMemoryInfo();
        Assert.Equal(device.Info.TotalMemoryBytes, total);
        Assert.Equal(a.Bytes + b.Bytes, device.AllocatedBytes);
        Assert.Equal(total - device.AllocatedBytes, free);
    }

    /// <summary>GpuBackend hands the choice of kernel to libcheapconv.so and its work to the device's stream: each pass
    /// launches exactly the kernels the library says it runs for the problem and options, on the caller's stream.</summary>
    public static void ConvLaunchesTheKernelsTheLibraryChoseOnTheCallersStream(FakeCuda fake)
    {
        // Another engine on the primary context, with a stream of its own (its retain keeps the context alive).
        fake.SetCurrent(fake.RetainPrimary(0));
        var stream = fake.CreateStream();
        using var device = CudaDevice.Open(0, stream);
        var grouped = ConvProblem.Create(n: 2, c: 8, h: 9, w: 7, k: 8, r: 3, s: 3, stride: 2, pad: 1, groups: 4);
        var pointwise = ConvProblem.Create(n: 2, c: 16, h: 8, w: 8, k: 32, r: 1, s: 1);
        var launched = new HashSet<string>();

        foreach (var (problem, gemm, precision) in new[]
                 {
                     (grouped, true, KernelPrecision.Fp32), (pointwise, true, KernelPrecision.Fp32), (pointwise, false, KernelPrecision.Fp32),
                     (pointwise, true, KernelPrecision.Tf32),
                 })
        {
            using var backend = new GpuBackend(device) { ConvAlgorithm = gemm ? KernelAlgorithm.Auto : KernelAlgorithm.Direct, ConvPrecision = precision };
            var options = new KernelOptions(gemm ? KernelAlgorithm.Auto : KernelAlgorithm.Direct) { Precision = precision };
            using var x = device.Allocate<float>(problem.InputElements);
            using var w = device.Allocate<float>(problem.WeightElements);
            using var y = device.Allocate<float>(problem.OutputElements);
            using var dy = device.Allocate<float>(problem.OutputElements);
            foreach (var pass in new[] { ConvPass.Forward, ConvPass.BackwardWeight })
            {
                fake.Reset();
                if (pass == ConvPass.Forward)
                {
                    backend.Conv2dForward(problem, x, w, y);
                }
                else
                {
                    backend.Conv2dBackwardWeight(problem, x, dy, w);
                }

                var launches = fake.Lines("launch ");
                var names = launches.Select(line => line.Split(' ')[1]).ToList();
                Assert.Equal(device.Native.ConvKernelNames(problem, pass, options).Split('+'), names);
                Assert.All(launches, line => Assert.EndsWith($" stream={FakeCuda.Pointer(stream)} context={FakeCuda.Pointer(device.ContextHandle)}", line));
                launched.UnionWith(names);
            }
        }

        // The three configurations chose different kernels: the comparison above was not between two constants.
        Assert.Contains("cc_conv2d_forward_kernel", launched);
        Assert.Contains("cc_pointwise_forward_kernel", launched);
        Assert.Contains("cc_implicit_gemm_forward_1x1_kernel", launched);
    }

    /// <summary>The timer's events go to the device's stream around the work and measure it (the fake counts 1 µs per
    /// operation queued between them); disposing it destroys both.</summary>
    public static void TimerRecordsEventsOnTheDevicesStream(FakeCuda fake)
    {
        using var device = CudaDevice.Open();
        using var buffer = device.Allocate<byte>(4096);
        fake.Reset();

        using (var timer = device.CreateTimer())
        {
            timer.Start();
            buffer.FillBytes(1);
            buffer.FillBytes(2);
            timer.Stop();
            Assert.Equal(0.002f, timer.ElapsedMilliseconds, 6);
        }

        var created = fake.Lines("event create").Select(line => line.Split(' ')[2]).ToList();
        Assert.Equal(2, created.Count);
        var order = fake.Log.Split('\n')
            .Where(line => line.StartsWith("event record", StringComparison.Ordinal) || line.StartsWith("memset8", StringComparison.Ordinal))
            .Select(line => line.StartsWith("memset8", StringComparison.Ordinal) ? "memset8" : line);
        var stream = FakeCuda.Pointer(device.StreamHandle);
        Assert.Equal([$"event record {created[0]} stream={stream}", "memset8", "memset8", $"event record {created[1]} stream={stream}"], order);
        Assert.Equal(created.Select(e => $"event destroy {e}"), fake.Lines("event destroy"));
    }

    /// <summary>A kernel that faults while running (the fake's fault=700) is reported by the next synchronization as a
    /// KernelLaunchException naming the C ABI call queued last and its problem; the device still disposes cleanly.</summary>
    public static void KernelFaultIsReportedByTheNextSynchronization(FakeCuda fake)
    {
        var device = CudaDevice.Open();
        var problem = ConvProblem.Create(n: 2, c: 8, h: 9, w: 7, k: 8, r: 3, s: 3, stride: 2, pad: 1, groups: 4);
        using var backend = new GpuBackend(device);
        var x = device.Upload<float>(Ramp(problem.InputElements));
        var w = device.Upload<float>(Ramp(problem.WeightElements));
        var y = device.Allocate<float>(problem.OutputElements);

        backend.Conv2dForward(problem, x, w, y);
        var e = Assert.Throws<KernelLaunchException>(device.Synchronize);

        Assert.Equal("CUDA_ERROR_ILLEGAL_ADDRESS", e.Status);
        Assert.Equal("cc_conv_forward", e.Kernel);
        Assert.Contains($"problem: {problem}", e.Message);
        Assert.Contains("it was the only kernel call since the last synchronization", e.Detail);
        Assert.Contains("an illegal memory access was encountered", e.Detail);
        device.Dispose();
        Assert.Equal("release 0 refs=0", fake.Lines("release").Last());
    }

    /// <summary>
    /// A free waits for queued work of every kind — a device-to-device copy or a fill reading or writing the memory, not
    /// only a kernel — and the wait is counted; a free with nothing queued does not wait.
    /// </summary>
    public static void FreeAfterQueuedCopyOrFillWaitsForTheStream(FakeCuda fake)
    {
        using var device = CudaDevice.Open();
        var data = Ramp(1000);
        var source = device.Upload<float>(data);
        var target = device.Allocate<float>(data.Length);
        var filled = device.Allocate<float>(data.Length);
        fake.Reset();
        var waits = device.HostWaits.Count;

        device.CopyDeviceToDevice(target.Pointer, source.Pointer, source.Bytes);
        source.Dispose(); // the copy may still be reading it
        filled.FillBytes(0);
        filled.Dispose(); // the fill may still be writing it
        target.Dispose(); // nothing queued since the last wait
        var stream = FakeCuda.Pointer(device.StreamHandle);

        var lines = fake.Log.Split('\n', StringSplitOptions.RemoveEmptyEntries)
            .Where(line => line.StartsWith("memcpy", StringComparison.Ordinal) || line.StartsWith("memset8", StringComparison.Ordinal) ||
                line.StartsWith("sync", StringComparison.Ordinal) || line.StartsWith("free", StringComparison.Ordinal))
            .Select(line => line.StartsWith("free", StringComparison.Ordinal) ? "free" : line).ToList();
        Assert.Equal(
            [
                $"memcpy dtod bytes=4000 stream={stream}", $"sync stream={stream}", "free",
                $"memset8 bytes=4000 value=0 stream={stream}", $"sync stream={stream}", "free",
                "free",
            ],
            lines);
        Assert.Equal(waits + 2, device.HostWaits.Count);
    }

    /// <summary>
    /// Staged uploads never make the host wait while a staging buffer is free: each goes through page-locked memory, an
    /// asynchronous copy and an event, with no stream synchronisation; the data arrives.
    /// </summary>
    public static void StagedUploadsDoNotWait(FakeCuda fake)
    {
        using var device = CudaDevice.Open();
        using var target = device.Allocate<float>(256);
        fake.Reset();
        var waits = device.HostWaits.Count;
        for (var i = 0; i < 3; i++)
        {
            var values = Ramp(256).Select(v => v + i).ToArray();
            fixed (float* pointer = values)
            {
                device.CopyHostToDeviceStaged(target.Pointer, pointer, target.Bytes);
            }
        }

        Assert.Equal(waits, device.HostWaits.Count);
        var log = fake.Log;
        Assert.DoesNotContain("sync", log);
        Assert.Equal(2, fake.Lines("hostalloc").Count); // two buffers, reused
        Assert.Equal(3, fake.Lines("memcpy htod").Count);
        Assert.Equal(3, fake.Lines("event record").Count);
        Assert.Single(fake.Lines("event query")); // the third upload comes back to the first buffer and asks if it is free
        Assert.Equal(Ramp(256).Select(v => v + 2).ToArray(), target.ToArray());
    }

    /// <summary>With both staging buffers' copies still running (the driver says CUDA_ERROR_NOT_READY), the third upload
    /// waits for the first buffer's event, and that wait is counted with its reason.</summary>
    public static void StagedUploadWaitsOnlyWhenBothBuffersAreBusy(FakeCuda fake)
    {
        using var device = CudaDevice.Open();
        using var target = device.Allocate<float>(16);
        var values = Ramp(16);
        fake.Reset();
        using var watch = device.HostWaits.Watch();
        fixed (float* pointer = values)
        {
            device.CopyHostToDeviceStaged(target.Pointer, pointer, target.Bytes);
            device.CopyHostToDeviceStaged(target.Pointer, pointer, target.Bytes);
            Assert.Empty(watch.Reasons);
            device.CopyHostToDeviceStaged(target.Pointer, pointer, target.Bytes);
        }

        Assert.Equal([HostWaitReason.StagingBufferBusy], watch.Reasons);
        Assert.Single(fake.Lines("event sync"));
    }

    /// <summary>A read-back queues a device-to-host copy into page-locked memory and an event, and never synchronises the
    /// stream; once the event has completed its data are the device's.</summary>
    public static void ReadbackQueuesACopyAndAnEvent(FakeCuda fake)
    {
        var (device, source, readback, watch) = StartReadback(fake, 64);
        using var owner = device;
        using var sourceBuffer = source;
        using var started = readback;
        using var waits = watch;
        Assert.True(readback.IsDone);
        Assert.Equal(Ramp(64), System.Runtime.InteropServices.MemoryMarshal.Cast<byte, float>(readback.Data).ToArray());
        Assert.Empty(watch.Reasons);
        Assert.DoesNotContain("sync", fake.Log);
        Assert.Single(fake.Lines("memcpy dtoh"));
        Assert.Single(fake.Lines("event record"));
    }

    /// <summary>While the driver says the copy is still running (CUDA_ERROR_NOT_READY), <see cref="HostReadback.IsDone"/>
    /// says no without waiting, and only <see cref="HostReadback.Wait"/> waits — counted with its reason.</summary>
    public static void ReadbackNotYetArrivedIsNotWaitedFor(FakeCuda fake)
    {
        var (device, source, readback, watch) = StartReadback(fake, 8);
        using var owner = device;
        using var sourceBuffer = source;
        using var started = readback;
        using var waits = watch;
        Assert.False(readback.IsDone);
        Assert.Empty(watch.Reasons);
        Assert.Empty(fake.Lines("event sync"));
        readback.Wait();
        Assert.Equal([HostWaitReason.ReadBackNotArrived], watch.Reasons);
        Assert.Single(fake.Lines("event sync"));
    }

    /// <summary>A device, a buffer of the ramp 0, 1, ... on it, and a read-back of it started after the fake's log was reset
    /// and a watch of the host waits opened.</summary>
    private static (CudaDevice Device, DeviceBuffer<float> Source, HostReadback Readback, HostWaits.HostWaitWatch Watch) StartReadback(
        FakeCuda fake, int length)
    {
        var device = CudaDevice.Open();
        var source = device.Upload<float>(Ramp(length));
        var readback = device.CreateReadback(source.Bytes);
        fake.Reset();
        var watch = device.HostWaits.Watch();
        readback.Start(source.Pointer, source.Bytes);
        return (device, source, readback, watch);
    }

    private static float[] Ramp(long length) => [.. Enumerable.Range(0, checked((int)length)).Select(i => (float)i)];
}
