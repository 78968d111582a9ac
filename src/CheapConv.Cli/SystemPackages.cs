using System.Diagnostics;

namespace CheapConv.Cli;

/// <summary>
/// The Debian/Ubuntu packages a command needs, through the repository's one list (setup/packages.tsv) and its
/// installer (setup/install.sh): the demo asks it for its group before it starts, so the README's main-job command
/// does its own set-up. The script decides: nothing missing → silent; missing and installable (apt-get, root or
/// password-less sudo, not turned off) → one line, then apt-get; otherwise one exact command to run and exit 1.
/// </summary>
internal static class SystemPackages
{
    /// <summary>Turns installing off, for every command and for the build (read by setup/install.sh).</summary>
    public const string NoInstallVariable = "CHEAPCONV_NO_INSTALL";

    /// <summary>The installer, relative to the repository root.</summary>
    public const string InstallerPath = "setup/install.sh";

    /// <summary>Names another installer (with its packages.tsv beside it): how tests simulate a missing package.</summary>
    public const string InstallerVariable = "CHEAPCONV_INSTALLER";

    /// <summary>
    /// Makes sure the packages of <paramref name="group"/> are there. Returns 0 when they are (installed now or
    /// before), else the installer's exit code after it said what to run. Where the CLI runs outside a checkout
    /// (a published bundle) there is no installer: returns 0 and lets the command's own checks speak.
    /// </summary>
    public static int Ensure(string group, bool allowInstall, TextWriter output)
    {
        var installer = FindInstaller();
        if (installer is null)
        {
            return 0;
        }

        var start = new ProcessStartInfo("bash") { RedirectStandardError = true, UseShellExecute = false };
        start.ArgumentList.Add(installer);
        start.ArgumentList.Add(group);
        if (!allowInstall)
        {
            start.ArgumentList.Add("--no-install");
        }

        using var process = Process.Start(start) ?? throw new InvalidOperationException($"could not start bash {installer}");
        // The installer writes only its one-line notes and errors (apt's output goes to its log).
        var text = process.StandardError.ReadToEnd();
        process.WaitForExit();
        output.Write(text);
        return process.ExitCode;
    }

    /// <summary>setup/install.sh of the checkout this CLI was built in or is run from, or null.</summary>
    internal static string? FindInstaller()
    {
        if (Environment.GetEnvironmentVariable(InstallerVariable) is { Length: > 0 } given)
        {
            return given;
        }

        foreach (var start in new[] { AppContext.BaseDirectory, Directory.GetCurrentDirectory() })
        {
            for (var directory = new DirectoryInfo(start); directory is not null; directory = directory.Parent)
            {
                var candidate = Path.Combine(directory.FullName, InstallerPath);
                if (File.Exists(candidate) && File.Exists(Path.Combine(directory.FullName, "CheapConv.sln")))
                {
                    return candidate;
                }
            }
        }

        return null;
    }
}
