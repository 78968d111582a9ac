using CheapConv.Cli;

namespace CheapConv.Tests.Cli;

/// <summary>Runs <c>cheapconv</c> in-process, as <see cref="CommandLine.Run"/> does for the real program.</summary>
internal static class CliRun
{
    /// <summary>The exit code and what the command wrote to its output and error streams.</summary>
    public static (int Code, string Output, string Error) Run(params string[] args)
    {
        using var output = new StringWriter();
        using var error = new StringWriter();
        var code = CommandLine.Run(args, output, error);
        return (code, output.ToString(), error.ToString());
    }
}
