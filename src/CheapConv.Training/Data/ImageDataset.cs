namespace CheapConv.Data;

/// <summary>
/// Raw images as bytes, N×C×H×W with values 0..255 (C planes per image, rows top to bottom), and their labels.
/// Immutable: the arrays are private copies or arrays only this class holds, and only read-only views leave it.
/// </summary>
public sealed class ImageDataset
{
    private readonly byte[] pixels;
    private readonly int[] labels;

    /// <summary>
    /// A dataset from pixels N×C×H×W and N labels (both copied). Throws <see cref="DataException"/> naming
    /// <paramref name="name"/> when the sizes disagree or a label is outside [0, <paramref name="classes"/>).
    /// </summary>
    public ImageDataset(string name, int channels, int height, int width, int classes, ReadOnlySpan<byte> pixels, ReadOnlySpan<int> labels)
        : this(name, channels, height, width, classes, pixels.ToArray(), labels.ToArray(), validateLabels: true)
    {
    }

    /// <summary>Takes ownership of the arrays (the loaders' path: no copy of 47 MB).</summary>
    internal ImageDataset(string name, int channels, int height, int width, int classes, byte[] pixels, int[] labels, bool validateLabels)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(name);
        if (channels < 1 || height < 1 || width < 1 || classes < 1)
        {
            throw new DataException($"{name}: channels, height, width and classes must be positive, got {channels}, {height}, {width}, {classes}");
        }

        if (labels.Length == 0)
        {
            throw new DataException($"{name}: holds no images");
        }

        var imageSize = (long)channels * height * width;
        if (pixels.LongLength != imageSize * labels.Length)
        {
            throw new DataException(
                $"{name}: {pixels.LongLength} pixel bytes for {labels.Length} labels of {channels}×{height}×{width} images; expected {imageSize * labels.Length}");
        }

        if (validateLabels)
        {
            for (var i = 0; i < labels.Length; i++)
            {
                if ((uint)labels[i] >= (uint)classes)
                {
                    throw new DataException($"{name}: image {i} has label {labels[i]}, outside 0..{classes - 1}");
                }
            }
        }

        Name = name;
        Channels = channels;
        Height = height;
        Width = width;
        Classes = classes;
        this.pixels = pixels;
        this.labels = labels;
    }

    /// <summary>What the data is, for messages and summaries, e.g. "fashion-mnist/train".</summary>
    public string Name { get; }

    /// <summary>The number of images.</summary>
    public int Count => labels.Length;

    /// <summary>Planes per image: 1 (grey) or 3 (R, G, B).</summary>
    public int Channels { get; }

    /// <summary>Rows per image.</summary>
    public int Height { get; }

    /// <summary>Columns per image.</summary>
    public int Width { get; }

    /// <summary>The number of classes; every label is in [0, Classes).</summary>
    public int Classes { get; }

    /// <summary>Bytes per image: Channels×Height×Width.</summary>
    public int ImageSize => Channels * Height * Width;

    /// <summary>All pixels, Count×Channels×Height×Width, values 0..255.</summary>
    public ReadOnlyMemory<byte> Pixels => pixels;

    /// <summary>The class of each image.</summary>
    public ReadOnlyMemory<int> Labels => labels;

    /// <summary>The pixels of image <paramref name="index"/>, Channels×Height×Width.</summary>
    public ReadOnlySpan<byte> Image(int index)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(index);
        ArgumentOutOfRangeException.ThrowIfGreaterThanOrEqual(index, Count);
        return pixels.AsSpan(index * ImageSize, ImageSize);
    }

    /// <summary>
    /// The first <paramref name="count"/> images after a shuffle seeded by <paramref name="seed"/> (the
    /// --train-subset option), in that shuffled order. The permutation is SplitMix64 Fisher–Yates
    /// (<see cref="SplitMix64"/>), so the same seed picks the same images on every run and runtime.
    /// </summary>
    /// <exception cref="DataException"><paramref name="count"/> is not in 1..Count.</exception>
    public ImageDataset Subset(int count, int seed)
    {
        if (count < 1 || count > Count)
        {
            throw new DataException($"{Name}: a subset of {count} images was asked for, but it holds {Count}; choose 1..{Count}");
        }

        var order = new SplitMix64(SplitMix64.DeriveSeed(seed, RandomStreams.Subset)).Permutation(Count);
        var size = ImageSize;
        var subsetPixels = new byte[(long)count * size];
        var subsetLabels = new int[count];
        for (var i = 0; i < count; i++)
        {
            pixels.AsSpan(order[i] * size, size).CopyTo(subsetPixels.AsSpan(i * size, size));
            subsetLabels[i] = labels[order[i]];
        }

        return new ImageDataset($"{Name} (subset of {count}, seed {seed})", Channels, Height, Width, Classes, subsetPixels, subsetLabels, validateLabels: false);
    }

    /// <summary>
    /// The first <paramref name="count"/> images in file order (the --test-subset option: a quick evaluation on a fixed
    /// part of the test split, the same images for every run).
    /// </summary>
    /// <exception cref="DataException"><paramref name="count"/> is not in 1..Count.</exception>
    internal ImageDataset First(int count)
    {
        if (count < 1 || count > Count)
        {
            throw new DataException($"{Name}: its first {count} images were asked for, but it holds {Count}; choose 1..{Count}");
        }

        var size = ImageSize;
        return new ImageDataset($"{Name} (first {count})", Channels, Height, Width, Classes, pixels.AsSpan(0, count * size).ToArray(),
            labels.AsSpan(0, count).ToArray(), validateLabels: false);
    }

    /// <inheritdoc/>
    public override string ToString() => $"{Name}: {Count} images {Channels}×{Height}×{Width}, {Classes} classes";
}

/// <summary>The purposes random streams are derived for, so that no two purposes share a sequence.</summary>
internal static class RandomStreams
{
    public const long Subset = 0x5375_6273_6574; // "Subset"
    public const long Shuffle = 0x5368_7566_666C; // "Shuffl"
    public const long Augment = 0x4175_676D_656E; // "Augmen"
}
