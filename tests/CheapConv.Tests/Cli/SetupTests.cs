using System.Diagnostics;
using System.Text.RegularExpressions;
using CheapConv.Cli;
using CheapConv.Cli.Commands;
using Xunit;

namespace CheapConv.Tests.Cli;

/// <summary>
/// The README's promise of two commands, each doing its own set-up: the commands it shows are the ones CI and the
/// demo's set-up use, its package list is setup/packages.tsv, and setup/install.sh does what the README says when a
/// package is missing (tested with a copy of the installer beside a list naming a package that is never there).
/// </summary>
public sealed partial class SetupTests : IDisposable
{
    private const string MissingPackage = "cheapconv-test-never-installed";
    private readonly string _scratch = Directory.CreateTempSubdirectory("cheapconv-setup-").FullName;

    public void Dispose() => Directory.Delete(_scratch, recursive: true);

    private static string Root => TestPaths.RepositoryRoot;

    [Fact]
    public void Readme_TestCommand_IsWhatCiRuns()
    {
        var readme = ShellBlockAfter("Run the tests");
        var ciCommands = File.ReadAllLines(Path.Combine(Root, ".ci", "run"))
            .Select(line => line.Trim()).Where(line => line.Length > 0 && !line.StartsWith('#')).ToList();
        Assert.Equal("dotnet test CheapConv.sln -c Release", readme);
        Assert.Equal(readme, ciCommands[^1]);
        Assert.Contains("setup/install.sh build test demo", ciCommands);
    }

    [Fact]
    public void Readme_MainJobCommand_IsTheOneTheDemoTellsUsersToRun() =>
        Assert.Equal(DemoCommand.ReadmeCommand, ShellBlockAfter("Run the main job"));

    [Fact]
    public void Readme_PackageTable_IsPackagesTsv()
    {
        var readme = File.ReadAllText(Path.Combine(Root, "README.md"));
        var inReadme = PackageRow().Matches(readme).Select(m => m.Groups[1].Value).Order().ToList();
        var inList = PackagesTsv().Select(p => p.Package).Order().ToList();
        Assert.Equal(inList, inReadme);
    }

    [Fact]
    public void Installer_NothingMissing_SaysNothing()
    {
        var installer = InstallerWith(present: "true");
        var (code, text) = Run(installer, ["build", "test", "demo"]);
        Assert.Equal(0, code);
        Assert.Equal("", text);
    }

    [Theory]
    [InlineData("--no-install", null)]
    [InlineData(null, "1")]
    public void Installer_MissingWithInstallingOff_PrintsTheOneCommandAndFails(string? flag, string? environment)
    {
        var installer = InstallerWith(present: "false");
        var (code, text) = Run(installer, flag is null ? ["demo"] : ["demo", flag], environment);
        Assert.Equal(1, code);
        Assert.Contains($"apt-get install {MissingPackage}", text);
        Assert.Contains("installing is turned off", text);
    }

    [Fact]
    public void Installer_OtherGroupMissing_IsNotAsked()
    {
        var (code, text) = Run(InstallerWith(present: "false"), ["build", "--no-install"]);
        Assert.Equal(0, code);
        Assert.Equal("", text);
    }

    [Fact]
    public void Demo_WithItsPackageMissing_StopsWithTheCommandToRunAndHowToGoOn()
    {
        var installer = InstallerWith(present: "false");
        var previous = Environment.GetEnvironmentVariable(SystemPackages.InstallerVariable);
        Environment.SetEnvironmentVariable(SystemPackages.InstallerVariable, installer);
        try
        {
            using var output = new StringWriter();
            using var error = new StringWriter();
            var code = CommandLine.Run(["demo", "--no-install", "--out", Path.Combine(_scratch, "runs")], output, error);
            Assert.Equal(1, code);
            Assert.Contains($"apt-get install {MissingPackage}", output.ToString());
            Assert.Contains($"then run it again: {DemoCommand.ReadmeCommand}", output.ToString());
            Assert.False(Directory.Exists(Path.Combine(_scratch, "runs")), "the demo started although its data is missing");
        }
        finally
        {
            Environment.SetEnvironmentVariable(SystemPackages.InstallerVariable, previous);
        }
    }

    // A copy of setup/install.sh beside a packages.tsv with one demo package whose presence check is `present`.
    private string InstallerWith(string present)
    {
        var directory = Directory.CreateDirectory(Path.Combine(_scratch, present)).FullName;
        File.Copy(Path.Combine(Root, "setup", "install.sh"), Path.Combine(directory, "install.sh"));
        File.WriteAllText(Path.Combine(directory, "packages.tsv"),
            $"# package\tgroup\tsource\tpresent\twhy\n{MissingPackage}\tdemo\tmain\t{present}\ta test package\n");
        return Path.Combine(directory, "install.sh");
    }

    private static (int Code, string Text) Run(string installer, string[] args, string? noInstall = null)
    {
        var start = new ProcessStartInfo("bash") { RedirectStandardError = true, RedirectStandardOutput = true };
        start.ArgumentList.Add(installer);
        foreach (var arg in args)
        {
            start.ArgumentList.Add(arg);
        }

        start.Environment[SystemPackages.NoInstallVariable] = noInstall ?? "";
        using var process = Process.Start(start)!;
        var text = process.StandardError.ReadToEnd() + process.StandardOutput.ReadToEnd();
        process.WaitForExit();
        return (process.ExitCode, text);
    }

    // The first ```sh block after the README line starting with `lead`, as one command.
    private static string ShellBlockAfter(string lead)
    {
        var lines = File.ReadAllLines(Path.Combine(Root, "README.md"));
        var at = Array.FindIndex(lines, line => line.StartsWith(lead, StringComparison.Ordinal));
        Assert.True(at >= 0, $"README has no line starting with '{lead}'");
        var open = Array.FindIndex(lines, at, line => line == "```sh");
        return lines[open + 1].Trim();
    }

    private static IEnumerable<(string Package, string Group)> PackagesTsv() =>
        File.ReadAllLines(Path.Combine(Root, "setup", "packages.tsv"))
            .Where(line => line.Length > 0 && !line.StartsWith('#'))
            .Select(line => line.Split('\t'))
            .Select(fields => (fields[0], fields[1]));

    [GeneratedRegex(@"^\| `([^`]+)` \| the (?:build|tests|demo)", RegexOptions.Multiline)]
    private static partial Regex PackageRow();
}
