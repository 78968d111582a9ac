using System.Globalization;

namespace CheapConv.Data;

/// <summary>
/// Per-channel normalisation of pixel values scaled to [0, 1]: x = (p/255 − Mean[c]) / Std[c], computed in
/// float32 in that order, as torchvision's ToTensor followed by Normalize.
/// </summary>
/// <param name="Mean">The mean of each channel, on [0, 1] values.</param>
/// <param name="Std">The standard deviation of each channel, on [0, 1] values; positive and finite.</param>
public sealed record Normalization(float[] Mean, float[] Std)
{
    /// <summary>The mean of each channel.</summary>
    public float[] Mean { get; init; } = Mean ?? throw new ArgumentNullException(nameof(Mean));

    /// <summary>The standard deviation of each channel.</summary>
    public float[] Std { get; init; } = Validate(Mean, Std);

    /// <summary>The CIFAR-10 values of REFERENCE.md (those of the paper's code): mean 0.4914/0.4822/0.4465, std 0.2023/0.1994/0.2010.</summary>
    /// <remarks>
    /// The std values are the ones the paper's code used, not the standard deviation over all CIFAR-10 pixels
    /// (about 0.247/0.243/0.261, which <see cref="FromDataset"/> gives); they are kept to reproduce its numbers.
    /// </remarks>
    public static Normalization Cifar10 => new([0.4914f, 0.4822f, 0.4465f], [0.2023f, 0.1994f, 0.2010f]);

    /// <summary>The number of channels.</summary>
    public int Channels => Mean.Length;

    /// <summary>
    /// The mean and population standard deviation of each channel over every pixel of <paramref name="train"/>,
    /// on [0, 1] values. The sums of p and p² are accumulated in integers (exact: no rounding however many
    /// images) and the variance (n·Σp² − (Σp)²)/n² is formed exactly in 128-bit integers before the one
    /// rounding to double; the result is rounded to float.
    /// </summary>
    /// <exception cref="DataException">A channel is constant (its std would be 0).</exception>
    public static Normalization FromDataset(ImageDataset train)
    {
        ArgumentNullException.ThrowIfNull(train);
        var channels = train.Channels;
        var plane = train.Height * train.Width;
        var sums = new long[channels];
        var squares = new long[channels];
        var pixels = train.Pixels.Span;
        for (var image = 0; image < train.Count; image++)
        {
            for (var c = 0; c < channels; c++)
            {
                var values = pixels.Slice((image * channels + c) * plane, plane);
                long sum = 0, square = 0;
                foreach (var p in values)
                {
                    sum += p;
                    square += p * p;
                }

                sums[c] += sum;
                squares[c] += square;
            }
        }

        var mean = new float[channels];
        var std = new float[channels];
        var n = (long)train.Count * plane;
        for (var c = 0; c < channels; c++)
        {
            var varianceTimesN2 = (Int128)n * squares[c] - (Int128)sums[c] * sums[c];
            if (varianceTimesN2 == 0)
            {
                throw new DataException($"{train.Name}: channel {c} has the same value in every pixel; its standard deviation is 0 and cannot normalise");
            }

            mean[c] = (float)((double)sums[c] / n / 255.0);
            std[c] = (float)(Math.Sqrt((double)varianceTimesN2) / n / 255.0);
        }

        return new Normalization(mean, std);
    }

    /// <summary>Throws <see cref="DataException"/> unless this normalisation has <paramref name="channels"/> channels.</summary>
    internal void EnsureFits(int channels, string what)
    {
        if (Channels != channels)
        {
            throw new DataException($"{what}: the normalisation has {Channels} channels ({this}) but the images have {channels}");
        }
    }

    /// <summary>
    /// The normalised value of each byte 0..255 in channel <paramref name="channel"/>, computed as
    /// (p/255f − mean)/std in float32: a lookup table that gives exactly the value of the formula.
    /// </summary>
    internal float[] LookupTable(int channel)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(channel);
        ArgumentOutOfRangeException.ThrowIfGreaterThanOrEqual(channel, Channels);
        var table = new float[256];
        for (var p = 0; p < 256; p++)
        {
            table[p] = Normalize((byte)p, channel);
        }

        return table;
    }

    /// <summary>The normalised value of one byte <paramref name="pixel"/> in channel <paramref name="channel"/>.</summary>
    public float Normalize(byte pixel, int channel) => ((pixel / 255f) - Mean[channel]) / Std[channel];

    /// <inheritdoc/>
    public bool Equals(Normalization? other) =>
        other is not null && Mean.AsSpan().SequenceEqual(other.Mean) && Std.AsSpan().SequenceEqual(other.Std);

    /// <inheritdoc/>
    public override int GetHashCode()
    {
        var hash = new HashCode();
        foreach (var m in Mean)
        {
            hash.Add(m);
        }

        foreach (var s in Std)
        {
            hash.Add(s);
        }

        return hash.ToHashCode();
    }

    /// <summary>"mean 0.4914/0.4822/0.4465, std 0.2023/0.1994/0.2010" (shortest round-trip digits).</summary>
    public override string ToString() =>
        $"mean {string.Join('/', Mean.Select(v => v.ToString("R", CultureInfo.InvariantCulture)))}, " +
        $"std {string.Join('/', Std.Select(v => v.ToString("R", CultureInfo.InvariantCulture)))}";

    private static float[] Validate(float[] mean, float[] std)
    {
        ArgumentNullException.ThrowIfNull(mean);
        ArgumentNullException.ThrowIfNull(std);
        if (mean.Length == 0 || mean.Length != std.Length)
        {
            throw new DataException($"normalisation: {mean.Length} means and {std.Length} standard deviations; give one of each per channel");
        }

        for (var c = 0; c < mean.Length; c++)
        {
            if (!float.IsFinite(mean[c]) || !float.IsFinite(std[c]) || std[c] <= 0)
            {
                throw new DataException($"normalisation: channel {c} has mean {mean[c]} and std {std[c]}; both must be finite and the std positive");
            }
        }

        return std;
    }
}
