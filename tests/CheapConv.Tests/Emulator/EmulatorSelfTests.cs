using Xunit;

namespace CheapConv.Tests.Emulator;

/// <summary>
/// The emulator's own primitive tests (native/tests/selftest): shuffles at every width, votes, atomics
/// across blocks, 3-D grids, partial warps, every diagnostic, worker counts, concurrent launches, and that
/// the libraries export only the C API and the production one holds no test kernel.
/// </summary>
public class EmulatorSelfTests
{
    [Fact]
    public void NativeSelfTest_Passes()
    {
        var (code, output) = NativeProcess.Run(
            TestPaths.Native("build", "bin", "cc_emu_selftest"),
            TestPaths.Native("build", "lib", "libcheapconv_emu_test.so"),
            TestPaths.Native("build", "lib", "libcheapconv_emu.so"));
        Assert.True(code == 0, output);
        Assert.Matches(@"\d+ passed, 0 failed", output);
    }
}
