namespace CheapConv.Data;

/// <summary>
/// Training augmentation as in REFERENCE.md (the paper's code, torchvision's RandomCrop(size, padding=4)
/// then RandomHorizontalFlip()): the raw image is zero-padded by <paramref name="Pad"/> pixels on each side —
/// zero bytes, black, before normalisation, so the border reads −mean/std afterwards — and an H×W window at a
/// uniformly random offset in [0, 2·Pad]² is cut from it (a shift of −Pad..Pad in each direction); then the
/// result is mirrored left–right with probability 1/2.
/// </summary>
/// <param name="Pad">Zero padding before the random crop, in pixels (non-negative).</param>
/// <param name="RandomCrop">Whether to pad and crop at a random offset.</param>
/// <param name="HorizontalFlip">Whether to mirror with probability 1/2.</param>
public sealed record AugmentOptions(int Pad = 4, bool RandomCrop = true, bool HorizontalFlip = true)
{
    /// <summary>The padding, checked to be non-negative.</summary>
    public int Pad { get; init; } = Pad >= 0 ? Pad : throw new ArgumentOutOfRangeException(nameof(Pad), Pad, "padding must be non-negative");

    /// <summary>No augmentation: batches are the normalised images exactly (evaluation, tests).</summary>
    public static AugmentOptions None { get; } = new(0, RandomCrop: false, HorizontalFlip: false);

    /// <summary>Whether images pass through unchanged.</summary>
    public bool IsIdentity => !HorizontalFlip && (!RandomCrop || Pad == 0);

    /// <inheritdoc/>
    public override string ToString() =>
        IsIdentity ? "none" : string.Join(" + ", new[] { RandomCrop && Pad > 0 ? $"pad {Pad} + random crop" : null, HorizontalFlip ? "horizontal flip" : null }.OfType<string>());
}
