using System.Globalization;
using CheapConv.Devices;

namespace CheapConv.Cli;

/// <summary>
/// The <c>--name value</c> options of one command. Every option a command reads must be declared when it is
/// read; <see cref="EnsureAllUsed"/> then rejects unknown or misspelt options instead of ignoring them.
/// </summary>
internal sealed class Options
{
    private readonly Dictionary<string, string?> _values = new(StringComparer.Ordinal);
    private readonly HashSet<string> _used = new(StringComparer.Ordinal);

    public Options(IEnumerable<string> args)
    {
        var list = args.ToList();
        for (var i = 0; i < list.Count; i++)
        {
            var arg = list[i];
            if (!arg.StartsWith("--", StringComparison.Ordinal) || arg.Length == 2)
            {
                throw new UsageException($"unexpected argument '{arg}': options look like --name value");
            }

            var name = arg[2..];
            string? value = null;
            var equals = name.IndexOf('=');
            if (equals >= 0)
            {
                value = name[(equals + 1)..];
                name = name[..equals];
            }
            else if (i + 1 < list.Count && !list[i + 1].StartsWith("--", StringComparison.Ordinal))
            {
                value = list[++i];
            }

            if (!_values.TryAdd(name, value))
            {
                throw new UsageException($"option --{name} is given twice");
            }
        }
    }

    public bool Flag(string name)
    {
        _used.Add(name);
        if (!_values.TryGetValue(name, out var value))
        {
            return false;
        }

        return value is null ? true : throw new UsageException($"option --{name} takes no value, got '{value}'");
    }

    public string? String(string name)
    {
        _used.Add(name);
        if (!_values.TryGetValue(name, out var value))
        {
            return null;
        }

        return value ?? throw new UsageException($"option --{name} needs a value");
    }

    public string String(string name, string fallback) => String(name) ?? fallback;

    public int Int(string name, int? fallback = null)
    {
        var text = String(name);
        if (text is null)
        {
            return fallback ?? throw new UsageException($"option --{name} is required");
        }

        return int.TryParse(text, NumberStyles.Integer, CultureInfo.InvariantCulture, out var value)
            ? value
            : throw new UsageException($"option --{name} needs an integer, got '{text}'");
    }

    public string Choice(string name, string fallback, params string[] allowed)
    {
        var value = String(name, fallback);
        return allowed.Contains(value)
            ? value
            : throw new UsageException($"option --{name} must be one of {string.Join(", ", allowed)}, got '{value}'");
    }

    /// <summary>--device, one of <paramref name="kinds"/> (cuda also as cuda:N); <paramref name="fallback"/> when not given.</summary>
    public DeviceRequest Device(DeviceRequest fallback, params string[] kinds) => OptionalDevice(kinds) ?? fallback;

    /// <summary>--device, one of <paramref name="kinds"/> (cuda also as cuda:N); null when not given.</summary>
    public DeviceRequest? OptionalDevice(params string[] kinds)
    {
        var value = String("device");
        return value is null ? null
            : DeviceRequest.TryParse(value, out var request) && kinds.Contains(request.Kind) ? request
            : throw new UsageException($"option --device must be one of {string.Join(", ", kinds.Select(k => k == "cuda" ? "cuda[:N]" : k))}, got '{value}'");
    }

    public void EnsureAllUsed()
    {
        var unknown = _values.Keys.Where(k => !_used.Contains(k)).ToList();
        if (unknown.Count > 0)
        {
            throw new UsageException($"unknown option{(unknown.Count > 1 ? "s" : "")} {string.Join(", ", unknown.Select(u => "--" + u))}; valid: {string.Join(" ", _used.Order().Select(u => "--" + u))}");
        }
    }
}
