namespace CheapConv.Cli;

/// <summary>The user asked for something that cannot be done as asked: printed as one line, exit code 2.</summary>
internal sealed class UsageException(string message) : Exception(message);
