using CheapConv.Devices;
using CheapConv.Kernels;
using Xunit;

namespace CheapConv.Tests.Kernels;

/// <summary>The PTX that ships inside the assembly: the same kernels as the emulator, for the baseline architecture, self-contained.</summary>
public class PtxTests
{
    [Fact]
    public void EmbeddedPtx_HoldsExactlyTheKernelsOfTheEmulatorLibrary()
    {
        // One kernel source, two builds (DESIGN.md): a kernel in only one of them is a build that forgot a file.
        using var emulator = EmulatedDevice.Open();
        var entries = PtxModules.All.SelectMany(m => m.Entries).Order(StringComparer.Ordinal);
        Assert.Equal(emulator.KernelNames.Order(StringComparer.Ordinal), entries);
    }

    [Fact]
    public void EmbeddedPtx_TargetsSm80AndCallsNoExternalFunction()
    {
        Assert.NotEmpty(PtxModules.All);
        foreach (var module in PtxModules.All)
        {
            Assert.Equal("sm_80", module.Target);
            Assert.Equal("7.0", module.Version);
            // An .extern .func would be a libdevice/libc call the driver's JIT cannot resolve.
            Assert.DoesNotContain(".extern .func", module.Text);
        }
    }

    [Fact]
    public void Parse_ReadsHeaderAndEntries()
    {
        var module = PtxModules.Parse("m", ".version 7.0\n.target sm_80\n.address_size 64\n.visible .entry cc_a(\n.param .u64 p\n)\n{}\n.visible .entry cc_b(\n)\n{}\n");
        Assert.Equal(["cc_a", "cc_b"], module.Entries);
        Assert.Equal("sm_80", module.Target);
    }
}
