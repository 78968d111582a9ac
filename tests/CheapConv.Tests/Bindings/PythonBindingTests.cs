using System.Diagnostics;
using System.Text.RegularExpressions;
using CheapConv.Tests.Emulator;
using Xunit;
using Xunit.Abstractions;

namespace CheapConv.Tests.Bindings;

/// <summary>
/// The Python/PyTorch binding (bindings/python) through its own unittest suite, run by Debian's
/// /usr/bin/python3 from the repository root against the libraries this build made: the emulator library
/// copied beside the test binaries and, where it was built, native/build/lib/libcheapconv.so (its tests skip
/// themselves where torch sees no GPU). Skipped, with the reason, where python3 or its torch/numpy packages
/// are missing — unless CHEAPCONV_REQUIRE_TORCH=1 (CI), where that is a failure.
/// </summary>
public partial class PythonBindingTests(ITestOutputHelper output)
{
    internal const string Python = "/usr/bin/python3";

    internal static bool RequireTorch => Environment.GetEnvironmentVariable("CHEAPCONV_REQUIRE_TORCH") == "1";

    [SkippableFact]
    public void UnittestSuite_Passes()
    {
        var missing = MissingPrerequisite();
        if (missing is not null)
        {
            Assert.False(RequireTorch, $"CHEAPCONV_REQUIRE_TORCH=1 but {missing}");
            Skip.If(true, missing);
        }

        var start = new ProcessStartInfo(Python) { WorkingDirectory = TestPaths.RepositoryRoot };
        foreach (var argument in new[] { "-m", "unittest", "discover", "-s", "bindings/python/tests", "-v" })
        {
            start.ArgumentList.Add(argument);
        }

        start.Environment["PYTHONPATH"] = Path.Combine(TestPaths.RepositoryRoot, "bindings", "python");
        start.Environment["PYTHONDONTWRITEBYTECODE"] = "1";
        SetLibrary(start, "CHEAPCONV_EMU_LIBRARY", Path.Combine(AppContext.BaseDirectory, "libcheapconv_emu.so"),
            TestPaths.Native("build", "lib", "libcheapconv_emu.so"));
        SetLibrary(start, "CHEAPCONV_LIBRARY", Path.Combine(AppContext.BaseDirectory, "libcheapconv.so"),
            TestPaths.Native("build", "lib", "libcheapconv.so"));

        var (code, text) = NativeProcess.Run(start, TimeSpan.FromMinutes(10));
        output.WriteLine(text);
        Assert.True(code == 0, $"python3 -m unittest exited {code}:\n{text}");
        var ran = RanLine().Match(text);
        var ok = OkLine().Match(text);
        Assert.True(ran.Success && ok.Success, $"no unittest summary in the output:\n{text}");
        // Skips are expected (the CUDA tests without a GPU), but not a run where nothing but skips happened.
        var skipped = ok.Groups[1].Success ? int.Parse(ok.Groups[1].Value) : 0;
        Assert.True(int.Parse(ran.Groups[1].Value) > skipped, $"no Python test ran (all skipped):\n{text}");
    }

    /// <summary>Points the variable at the first of the paths that exists; removes an inherited value otherwise, so the binding reports the paths it tried rather than loading a stale library from the caller's environment.</summary>
    private static void SetLibrary(ProcessStartInfo start, string variable, params string[] paths)
    {
        var found = paths.FirstOrDefault(File.Exists);
        if (found is null)
        {
            start.Environment.Remove(variable);
        }
        else
        {
            start.Environment[variable] = found;
        }
    }

    /// <summary>Why the suite cannot run here, or null when python3 imports torch and numpy.</summary>
    internal static string? MissingPrerequisite()
    {
        if (!File.Exists(Python))
        {
            return $"{Python} is missing (apt-get install python3 python3-torch python3-numpy)";
        }

        var start = new ProcessStartInfo(Python);
        foreach (var argument in new[] { "-c", "import torch, numpy" })
        {
            start.ArgumentList.Add(argument);
        }

        var (code, text) = NativeProcess.Run(start, TimeSpan.FromMinutes(2));
        return code == 0 ? null : $"{Python} cannot import torch and numpy (apt-get install python3-torch python3-numpy): {text.Trim().Split('\n').Last()}";
    }

    [GeneratedRegex(@"^Ran (\d+) tests? in ", RegexOptions.Multiline)]
    private static partial Regex RanLine();

    [GeneratedRegex(@"^OK(?: \((?:skipped=(\d+))?[^)]*\))?$", RegexOptions.Multiline)]
    private static partial Regex OkLine();
}
