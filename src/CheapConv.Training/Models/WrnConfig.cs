using System.Globalization;
using System.Text.RegularExpressions;
using CheapConv.IO;

namespace CheapConv.Models;

/// <summary>
/// A pre-activation WRN-d-k with every conv1/conv2 made of <see cref="Unit"/>: the teacher is S units with basic
/// blocks. Depth must be 6n+4; images of 28×28 are zero-padded to 32×32 (Fashion-MNIST) inside the model.
/// </summary>
/// <param name="Depth">d = 6n+4 (10, 16, 22, 28, 40, …).</param>
/// <param name="Width">k: channels 16, 16k, 32k, 64k.</param>
/// <param name="Unit">The unit replacing each 3×3 conv of the blocks.</param>
/// <param name="BlockType">Basic (two units per block) or bottle (one).</param>
/// <param name="InChannels">Image channels (3 for CIFAR, 1 for Fashion-MNIST).</param>
/// <param name="Classes">Output classes.</param>
/// <param name="ImageSize">Input height and width.</param>
public sealed record WrnConfig(int Depth, int Width, UnitSpec Unit, BlockType BlockType, int InChannels = 3, int Classes = 10, int ImageSize = 32)
{
    /// <summary>The image size that is padded to <see cref="PaddedImageSize"/> (Fashion-MNIST).</summary>
    internal const int FashionMnistSize = 28;

    /// <summary>What 28×28 images are padded to, keeping the 32/16/8 attention maps of CIFAR.</summary>
    internal const int PaddedImageSize = 32;

    /// <summary>The teacher WRN-d-k: S units, basic blocks.</summary>
    public static WrnConfig Teacher(int depth, int width, int inChannels = 3, int classes = 10, int imageSize = 32) =>
        new(depth, width, UnitSpec.Standard, BlockType.Basic, inChannels, classes, imageSize);

    /// <summary>A student: the teacher's shape with <paramref name="unit"/>, in its default block type unless given.</summary>
    public static WrnConfig Student(int depth, int width, UnitSpec unit, BlockType? blockType = null, int inChannels = 3, int classes = 10, int imageSize = 32) =>
        new(depth, width, unit, blockType ?? unit.DefaultBlockType, inChannels, classes, imageSize);

    /// <summary>Parses "wrn-40-2" (case-insensitive) into (depth, width); throws <see cref="FormatException"/> otherwise.</summary>
    public static (int Depth, int Width) ParseArch(string arch)
    {
        var match = Regex.Match(arch ?? "", @"^wrn-(\d+)-(\d+)$", RegexOptions.IgnoreCase | RegexOptions.CultureInvariant);
        if (!match.Success)
        {
            throw new FormatException($"unknown architecture '{UntrustedText.OneLine(arch ?? "")}'; expected wrn-<depth>-<width> with depth 6n+4, e.g. wrn-40-2, wrn-16-1");
        }

        // The digits may be more than an int holds (a hand-edited or corrupt config): a refusal, not an overflow.
        if (!int.TryParse(match.Groups[1].Value, NumberStyles.None, CultureInfo.InvariantCulture, out var depth)
            || !int.TryParse(match.Groups[2].Value, NumberStyles.None, CultureInfo.InvariantCulture, out var width))
        {
            throw new FormatException($"architecture '{UntrustedText.OneLine(arch!)}' has a depth or width too large; expected e.g. wrn-40-2, wrn-16-1");
        }

        return (depth, width);
    }

    /// <summary>The widest k whose 64k channels still fit an int.</summary>
    internal const int MaxWidth = int.MaxValue / 64;

    /// <summary>n, the blocks per group.</summary>
    public int BlocksPerGroup => (Depth - 4) / 6;

    /// <summary>Channels of the stem and the three groups: 16, 16k, 32k, 64k.</summary>
    public int[] Channels => [16, 16 * Width, 32 * Width, 64 * Width];

    /// <summary>The spatial size the stem sees (28 becomes 32).</summary>
    public int NetworkImageSize => ImageSize == FashionMnistSize ? PaddedImageSize : ImageSize;

    /// <summary>"WRN-40-2 G(4) basic".</summary>
    public string Name => $"WRN-{Depth}-{Width} {Unit} {BlockType.ToString().ToLowerInvariant()}";

    /// <summary>Throws <see cref="ArgumentException"/> with what is wrong.</summary>
    public void Validate()
    {
        if (Depth < 10 || (Depth - 4) % 6 != 0)
        {
            throw new ArgumentException($"WRN depth must be 6n+4 with n ≥ 1 (10, 16, 22, 28, 40, …), got {Depth}");
        }

        if (Width < 1 || Width > MaxWidth)
        {
            throw new ArgumentException($"WRN width must be between 1 and {MaxWidth} (its last group has 64×width channels), got {Width}");
        }

        if (InChannels < 1 || Classes < 1 || ImageSize < 1)
        {
            throw new ArgumentException($"in channels, classes and image size must be positive, got {InChannels}, {Classes}, {ImageSize}");
        }
    }
}
