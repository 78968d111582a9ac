using CheapConv.Backends;
using CheapConv.Cli;
using CheapConv.Devices;
using CheapConv.Tests.Cuda;
using Xunit;

namespace CheapConv.Tests.Devices;

/// <summary>--device read and opened in one place: the names, cuda:N, auto, and what each name opens.</summary>
public class ComputeDeviceTests
{
    private static readonly Lazy<CudaProbe> Probe = new(CudaDevice.Probe);

    [Theory]
    [InlineData("auto", "auto", 0, "auto")]
    [InlineData("cpu", "cpu", 0, "cpu")]
    [InlineData("emu", "emu", 0, "emu")]
    [InlineData("cuda", "cuda", 0, "cuda")]
    [InlineData("cuda:0", "cuda", 0, "cuda")]
    [InlineData("cuda:3", "cuda", 3, "cuda:3")]
    [InlineData("cuda:03", "cuda", 3, "cuda:3")]
    public void TryParse_KnownNames_GiveKindOrdinalAndTheNormalName(string text, string kind, int ordinal, string normal)
    {
        Assert.True(DeviceRequest.TryParse(text, out var request));
        Assert.Equal((kind, ordinal, normal), (request.Kind, request.Ordinal, request.ToString()));
        Assert.Equal(request, DeviceRequest.Parse(normal));
    }

    [Theory]
    [InlineData("")]
    [InlineData("tpu")]
    [InlineData("CUDA")]
    [InlineData("cuda:")]
    [InlineData("cuda:-1")]
    [InlineData("cuda:+1")]
    [InlineData("cuda:x")]
    [InlineData("cuda: 1")]
    [InlineData("cpu:1")]
    public void Parse_OtherNames_IsAFormatErrorThatListsTheNames(string text)
    {
        Assert.False(DeviceRequest.TryParse(text, out _));
        var error = Assert.Throws<FormatException>(() => DeviceRequest.Parse(text));
        Assert.Equal($"unknown device '{text}': use auto, cpu, emu, cuda or cuda:N", error.Message);
    }

    [Fact]
    public void Resolve_Auto_IsCudaWhereAGpuIsUsableElseCpu()
    {
        Assert.Equal(Probe.Value.IsAvailable ? DeviceRequest.Cuda() : DeviceRequest.Cpu, DeviceRequest.Auto.Resolve());
        Assert.Equal(DeviceRequest.Emulator, DeviceRequest.Emulator.Resolve());
        Assert.Equal(DeviceRequest.Cuda(2), DeviceRequest.Cuda(2).Resolve());
    }

    [Fact]
    public void Open_Cpu_IsTheCSharpBackendWithoutADevice()
    {
        using var device = ComputeDevice.Open(DeviceRequest.Cpu);
        Assert.IsType<CpuBackend>(device.Backend);
        Assert.Null(device.Device);
        Assert.Equal($"cpu: C# backend, {Environment.ProcessorCount} threads", device.ToString());
    }

    [Fact]
    public void Open_Emulator_IsTheGpuBackendOnTheEmulator()
    {
        using var device = ComputeDevice.Open(DeviceRequest.Emulator);
        Assert.IsType<EmulatedDevice>(device.Device);
        Assert.Same(device.Device, Assert.IsType<GpuBackend>(device.Backend).Device);
        Assert.Equal("emu: CUDA emulator (correctness only, slow)", device.ToString());
    }

    [SkippableFact]
    public void Open_CudaWithoutGpu_IsUnavailableWithTheProbesReason()
    {
        Skip.If(Probe.Value.IsAvailable, "a CUDA device is present");
        var error = Assert.Throws<DeviceUnavailableException>(() => ComputeDevice.Open(DeviceRequest.Cuda(1)));
        Assert.Equal(Probe.Value.Reason, error.Message);
    }

    [SkippableFact]
    public void Open_AGpuPastTheLast_SaysWhichExist()
    {
        CudaRequirement.SkipOrFailWithoutGpu();
        var count = Probe.Value.Devices.Count;
        var error = Assert.Throws<DeviceUnavailableException>(() => ComputeDevice.Open(DeviceRequest.Cuda(count)));
        Assert.Contains($"cuda:{count} does not exist", error.Message);
    }

    [Theory]
    [InlineData("tpu", "option --device must be one of cpu, emu, cuda[:N], got 'tpu'")]
    [InlineData("cuda:x", "option --device must be one of cpu, emu, cuda[:N], got 'cuda:x'")]
    [InlineData("auto", "option --device must be one of cpu, emu, cuda[:N], got 'auto'")]
    public void CliOption_OutsideTheCommandsKinds_IsAUsageError(string value, string message)
    {
        var error = Assert.Throws<UsageException>(() => new Options(["--device", value]).Device(DeviceRequest.Emulator, "cpu", "emu", "cuda"));
        Assert.Equal(message, error.Message);
    }

    [Fact]
    public void CliOption_NotGiven_IsTheFallback() =>
        Assert.Equal(DeviceRequest.Emulator, new Options([]).Device(DeviceRequest.Emulator, "cpu", "emu", "cuda"));
}
