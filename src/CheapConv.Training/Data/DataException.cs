namespace CheapConv.Data;

/// <summary>
/// Any problem with a dataset: a missing, truncated or malformed file, a label out of range, an impossible
/// subset or a normalisation that does not fit the images. The message is one line that names the file (or
/// dataset) and what is wrong and, for missing files, where to put them or what to install; the command line
/// prints it without a stack trace. Control characters quoted from a file are escaped (<see cref="IO.UntrustedText"/>).
/// </summary>
public sealed class DataException(string message) : Exception(IO.UntrustedText.OneLine(message));
