using System.Diagnostics;

namespace CheapConv.Profiling;

/// <summary>The CUDA toolkit's ptxas or cuobjdump is not installed: the static report cannot be made here.</summary>
internal sealed class ToolkitUnavailableException(string message) : Exception(message);

/// <summary>A toolkit program ran but failed (its exit code and output in the message).</summary>
internal sealed class ToolkitException(string message) : Exception(message);

/// <summary>
/// The two programs of the CUDA toolkit the static report runs: <c>ptxas</c> (assembles PTX to SASS; <c>-v</c> prints
/// registers, spills, shared, local and stack per kernel) and <c>cuobjdump</c> (<c>-res-usage</c> and <c>-sass</c> of a
/// cubin or fatbin). Looked for on PATH, then in $CUDA_HOME/bin and /usr/local/cuda/bin. No GPU is needed.
/// </summary>
internal sealed class CudaToolkit
{
    /// <summary>What to install where the programs are missing.</summary>
    public const string InstallHint =
        "install Debian's CUDA toolkit: apt-get install nvidia-cuda-toolkit (in Debian's non-free component; .ci/run shows how to enable it)";

    private CudaToolkit(string ptxas, string cuobjdump)
    {
        Ptxas = ptxas;
        Cuobjdump = cuobjdump;
    }

    /// <summary>Where to look instead of PATH, $CUDA_HOME/bin and /usr/local/cuda/bin, within one test's async flow.</summary>
    internal static AsyncLocal<IReadOnlyList<string>?> SearchPathForTests { get; } = new();

    /// <summary>Full path of ptxas.</summary>
    public string Ptxas { get; }

    /// <summary>Full path of cuobjdump.</summary>
    public string Cuobjdump { get; }

    /// <summary>Finds ptxas and cuobjdump, or throws <see cref="ToolkitUnavailableException"/> naming what is missing and the package.</summary>
    public static CudaToolkit Find()
    {
        var ptxas = Locate("ptxas");
        var cuobjdump = Locate("cuobjdump");
        var missing = new[] { ("ptxas", ptxas), ("cuobjdump", cuobjdump) }.Where(t => t.Item2 is null).Select(t => t.Item1).ToList();
        if (missing.Count > 0)
        {
            throw new ToolkitUnavailableException(
                $"{string.Join(" and ", missing)} not found (looked on PATH, in $CUDA_HOME/bin and /usr/local/cuda/bin): {InstallHint}");
        }

        return new CudaToolkit(ptxas!, cuobjdump!);
    }

    /// <summary>Whether both programs are installed.</summary>
    public static bool IsAvailable() => Locate("ptxas") is not null && Locate("cuobjdump") is not null;

    /// <summary><c>ptxas -arch=ARCH -v -o CUBIN PTX</c>: its resource report (stderr and stdout together).</summary>
    public string AssembleVerbose(string ptxPath, string arch, string cubinPath) =>
        Run(Ptxas, ["-arch=" + arch, "-v", "-o", cubinPath, ptxPath]);

    /// <summary><c>cuobjdump -res-usage FILE</c> (a cubin or a fatbin).</summary>
    public string ResourceUsage(string path) => Run(Cuobjdump, ["-res-usage", path]);

    /// <summary><c>cuobjdump -sass FILE</c> (a cubin or a fatbin).</summary>
    public string Sass(string path) => Run(Cuobjdump, ["-sass", path]);

    private static string? Locate(string program)
    {
        if (SearchPathForTests.Value is { } overridden)
        {
            return overridden.Select(d => Path.Combine(d, program)).FirstOrDefault(File.Exists);
        }

        var directories = (Environment.GetEnvironmentVariable("PATH") ?? "").Split(Path.PathSeparator, StringSplitOptions.RemoveEmptyEntries).ToList();
        if (Environment.GetEnvironmentVariable("CUDA_HOME") is { Length: > 0 } home)
        {
            directories.Add(Path.Combine(home, "bin"));
        }

        directories.Add("/usr/local/cuda/bin");
        return directories.Select(d => Path.Combine(d, program)).FirstOrDefault(File.Exists);
    }

    private static string Run(string program, IReadOnlyList<string> arguments)
    {
        var start = new ProcessStartInfo(program)
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        foreach (var argument in arguments)
        {
            start.ArgumentList.Add(argument);
        }

        using var process = Process.Start(start) ?? throw new ToolkitException($"{program} could not be started");
        // Both streams at once: a program that fills one pipe while we wait on the other would block forever.
        var error = process.StandardError.ReadToEndAsync();
        var output = process.StandardOutput.ReadToEnd();
        process.WaitForExit();
        var text = output + error.Result;
        return process.ExitCode == 0
            ? text
            : throw new ToolkitException($"{Path.GetFileName(program)} {string.Join(' ', arguments)} failed with exit code {process.ExitCode}: {text.Trim()}");
    }
}
