namespace CheapConv.Data;

/// <summary>
/// SplitMix64 (Steele, Lea and Flood 2014; the seeding generator of xoshiro): a 64-bit counter advanced by the
/// golden-ratio increment and passed through a fixed mixing function. It is used instead of
/// <see cref="System.Random"/> because the sequence of a seeded System.Random is not guaranteed across .NET
/// versions, while this one is pure integer arithmetic defined here: the shuffle order and augmentation of
/// (seed, epoch) are the same on every run, machine and runtime, which resuming a run relies on.
/// Not thread-safe; not for cryptography.
/// </summary>
internal sealed class SplitMix64(ulong seed)
{
    private const ulong GoldenGamma = 0x9E3779B97F4A7C15UL;

    private ulong state = seed;

    /// <summary>The generator's state: a generator created from it continues the same sequence.</summary>
    public ulong State => state;

    /// <summary>The next 64 uniformly distributed bits.</summary>
    public ulong NextUInt64()
    {
        state += GoldenGamma;
        return Mix(state);
    }

    /// <summary>
    /// A uniform integer in [0, <paramref name="bound"/>), without modulo bias: Lemire's multiply-shift with
    /// rejection (2019), so every value has exactly the same probability.
    /// </summary>
    public ulong NextBounded(ulong bound)
    {
        ArgumentOutOfRangeException.ThrowIfZero(bound);
        var high = Math.BigMul(NextUInt64(), bound, out var low);
        if (low < bound)
        {
            // 2^64 mod bound: the low words below it belong to an incomplete final interval and are redrawn.
            var threshold = (0 - bound) % bound;
            while (low < threshold)
            {
                high = Math.BigMul(NextUInt64(), bound, out low);
            }
        }

        return high;
    }

    /// <summary>A uniform integer in [0, <paramref name="bound"/>) for a positive int bound.</summary>
    public int NextInt(int bound)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(bound);
        return (int)NextBounded((ulong)bound);
    }

    /// <summary>Shuffles <paramref name="items"/> in place (Fisher–Yates, from the last element down).</summary>
    public void Shuffle<T>(Span<T> items)
    {
        for (var i = items.Length - 1; i > 0; i--)
        {
            var j = NextInt(i + 1);
            (items[i], items[j]) = (items[j], items[i]);
        }
    }

    /// <summary>The permutation 0..<paramref name="count"/>−1 shuffled by this generator.</summary>
    public int[] Permutation(int count)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(count);
        var order = new int[count];
        for (var i = 0; i < count; i++)
        {
            order[i] = i;
        }

        Shuffle(order.AsSpan());
        return order;
    }

    /// <summary>
    /// A seed for an independent stream named by the given parts (for instance seed, epoch, purpose, sample):
    /// each part is folded in through the mixing function, so nearby inputs give unrelated seeds.
    /// </summary>
    public static ulong DeriveSeed(params ReadOnlySpan<long> parts)
    {
        var hash = GoldenGamma;
        foreach (var part in parts)
        {
            hash = Mix(hash ^ Mix(unchecked((ulong)part + GoldenGamma)));
        }

        return hash;
    }

    /// <summary>SplitMix64's finaliser (Stafford's variant 13): a bijection of 64-bit words with full avalanche.</summary>
    public static ulong Mix(ulong z)
    {
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9UL;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBUL;
        return z ^ (z >> 31);
    }
}
