using CheapConv.Data;
using Xunit;

namespace CheapConv.Tests.Data;

/// <summary>
/// BatchLoader: batch shapes, exact normalisation, the epoch order, augmentation recovered image by image
/// (every output must be exactly one shifted/mirrored copy of its source with black borders), determinism per
/// (seed, epoch), and the background producer's bound, error propagation and shutdown.
/// </summary>
public sealed class BatchLoaderTests
{
    // Different statistics per channel, chosen so −mean/std (the black border) is exact: −2 and −0.5.
    private static readonly Normalization TwoChannels = new([0.5f, 0.25f], [0.25f, 0.5f]);

    /// <summary>Images C×H×W (H ≠ W to catch transposed indices) with seeded random bytes 1..255, so black (0) only appears as padding.</summary>
    private static ImageDataset RandomImages(int count, int channels = 2, int height = 6, int width = 8, int seed = 11)
    {
        var random = new SplitMix64((ulong)seed);
        var pixels = new byte[count * channels * height * width];
        for (var i = 0; i < pixels.Length; i++)
        {
            pixels[i] = (byte)(1 + random.NextInt(255));
        }

        return new ImageDataset("random", channels, height, width, 10, pixels, [.. Enumerable.Range(0, count).Select(i => i % 10)]);
    }

    /// <summary>The definition, written independently of the loader: out(c, y, x) = norm(raw(c, y+dy, (flip ? W−1−x : x)+dx)), black outside.</summary>
    private static float[] Expected(ImageDataset data, int index, Normalization normalization, int dy, int dx, bool flip)
    {
        var (channels, height, width) = (data.Channels, data.Height, data.Width);
        var raw = data.Image(index);
        var expected = new float[data.ImageSize];
        for (var c = 0; c < channels; c++)
        {
            for (var y = 0; y < height; y++)
            {
                for (var x = 0; x < width; x++)
                {
                    var sy = y + dy;
                    var sx = (flip ? width - 1 - x : x) + dx;
                    var inside = sy >= 0 && sy < height && sx >= 0 && sx < width;
                    var p = inside ? raw[(((c * height) + sy) * width) + sx] : 0;
                    expected[(((c * height) + y) * width) + x] = ((p / 255f) - normalization.Mean[c]) / normalization.Std[c];
                }
            }
        }

        return expected;
    }

    private static List<(int Dy, int Dx, bool Flip)> Decode(ImageDataset data, int index, Normalization normalization, ReadOnlySpan<float> output, int pad)
    {
        var matches = new List<(int, int, bool)>();
        for (var dy = -pad; dy <= pad; dy++)
        {
            for (var dx = -pad; dx <= pad; dx++)
            {
                foreach (var flip in new[] { false, true })
                {
                    if (output.SequenceEqual(Expected(data, index, normalization, dy, dx, flip)))
                    {
                        matches.Add((dy, dx, flip));
                    }
                }
            }
        }

        return matches;
    }

    private static List<Batch> All(BatchLoader loader) => [.. loader];

    [Theory]
    [InlineData(false, new[] { 4, 4, 2 })]
    [InlineData(true, new[] { 4, 4 })]
    public void Enumerate_NoShuffleNoAugment_BatchesAreTheNormalisedImagesExactly(bool dropLast, int[] counts)
    {
        var data = RandomImages(10);
        using var loader = new BatchLoader(data, 4, TwoChannels, shuffle: false, AugmentOptions.None, seed: 1, epoch: 0, dropLast);

        var batches = All(loader);

        Assert.Equal(counts.Length, loader.BatchCount);
        Assert.Equal(counts.Sum(), loader.ImageCount);
        Assert.Equal(counts, batches.Select(b => b.Count));
        var index = 0;
        foreach (var batch in batches)
        {
            Assert.Equal(batch.Count * data.ImageSize, batch.Images.Length);
            Assert.Equal(batch.Count, batch.Labels.Length);
            for (var k = 0; k < batch.Count; k++, index++)
            {
                Assert.Equal(data.Labels.Span[index], batch.Labels[k]);
                Assert.Equal(Expected(data, index, TwoChannels, 0, 0, false), batch.Images.AsSpan(k * data.ImageSize, data.ImageSize).ToArray());
            }
        }
    }

    [Fact]
    public void Enumerate_Shuffled_VisitsEveryImageOnceWithItsLabel()
    {
        var data = RandomImages(23);
        using var loader = new BatchLoader(data, 5, TwoChannels, shuffle: true, AugmentOptions.None, seed: 4, epoch: 2);

        var batches = All(loader);

        var order = loader.Order;
        Assert.Equal(Enumerable.Range(0, 23), order.Order());
        Assert.NotEqual(Enumerable.Range(0, 23), order);
        var position = 0;
        foreach (var batch in batches)
        {
            for (var k = 0; k < batch.Count; k++, position++)
            {
                Assert.Equal(data.Labels.Span[order[position]], batch.Labels[k]);
                Assert.Equal(Expected(data, order[position], TwoChannels, 0, 0, false), batch.Images.AsSpan(k * data.ImageSize, data.ImageSize).ToArray());
            }
        }

        Assert.Equal(23, position);
    }

    [Fact]
    public void Enumerate_CropAndFlip_EveryImageIsExactlyOneShiftedOrMirroredCopyWithBlackBorders()
    {
        const int pad = 4;
        const int count = 1800;
        var data = RandomImages(count);
        using var loader = new BatchLoader(data, 128, TwoChannels, shuffle: false, new AugmentOptions(pad), seed: 9, epoch: 0);

        var dyCounts = new int[(2 * pad) + 1];
        var dxCounts = new int[(2 * pad) + 1];
        var flips = 0;
        var index = 0;
        foreach (var batch in loader)
        {
            for (var k = 0; k < batch.Count; k++, index++)
            {
                var matches = Decode(data, index, TwoChannels, batch.Images.AsSpan(k * data.ImageSize, data.ImageSize), pad);
                var (dy, dx, flip) = Assert.Single(matches);
                dyCounts[dy + pad]++;
                dxCounts[dx + pad]++;
                flips += flip ? 1 : 0;
            }
        }

        // Each offset is Binomial(1800, 1/9): mean 200, sd 13.3; flips Binomial(1800, 1/2): mean 900, sd 21.2.
        // 5 sd either side: a correct uniform draw falls outside with probability < 1e-6 (and the seed is fixed).
        Assert.All(dyCounts, n => Assert.InRange(n, 200 - 67, 200 + 67));
        Assert.All(dxCounts, n => Assert.InRange(n, 200 - 67, 200 + 67));
        Assert.InRange(flips, 900 - 106, 900 + 106);
    }

    [Fact]
    public void Enumerate_CropAndFlip_BorderIsNormalisedBlackPerChannel()
    {
        // Shift by 4 in a 6-row image leaves at most 2 image rows: some pixels are always border.
        var data = RandomImages(64);
        using var loader = new BatchLoader(data, 64, TwoChannels, shuffle: true, new AugmentOptions(4), seed: 2, epoch: 5);

        var batch = Assert.Single(loader);

        var plane = data.Height * data.Width;
        var borders = new[] { 0, 0 };
        for (var k = 0; k < batch.Count; k++)
        {
            for (var c = 0; c < 2; c++)
            {
                var values = batch.Images.AsSpan((((k * 2) + c) * plane), plane);
                var black = c == 0 ? -2f : -0.5f; // (0 − mean)/std, exact for these statistics
                foreach (var v in values)
                {
                    borders[c] += v == black ? 1 : 0;
                }
            }
        }

        // Raw pixels are 1..255, so black can only come from padding; the offsets are random, so it appears.
        Assert.All(borders, n => Assert.True(n > 0));
    }

    [Fact]
    public void Enumerate_FlipOnly_EachImageIsItselfOrItsMirror()
    {
        var data = RandomImages(200);
        var options = new AugmentOptions(Pad: 4, RandomCrop: false, HorizontalFlip: true);
        using var loader = new BatchLoader(data, 50, TwoChannels, shuffle: false, options, seed: 3, epoch: 0);

        var mirrored = 0;
        var index = 0;
        foreach (var batch in loader)
        {
            for (var k = 0; k < batch.Count; k++, index++)
            {
                var (dy, dx, flip) = Assert.Single(Decode(data, index, TwoChannels, batch.Images.AsSpan(k * data.ImageSize, data.ImageSize), 4));
                Assert.Equal((0, 0), (dy, dx));
                mirrored += flip ? 1 : 0;
            }
        }

        // Binomial(200, 1/2): sd 7.1; 5 sd.
        Assert.InRange(mirrored, 100 - 36, 100 + 36);
    }

    [Fact]
    public void Enumerate_CropOnly_NeverMirrorsAndCoversAllShifts()
    {
        var data = RandomImages(400);
        var options = new AugmentOptions(Pad: 2, RandomCrop: true, HorizontalFlip: false);
        using var loader = new BatchLoader(data, 400, TwoChannels, shuffle: false, options, seed: 3, epoch: 0);

        var batch = Assert.Single(loader);

        var shifts = new HashSet<(int, int)>();
        for (var k = 0; k < batch.Count; k++)
        {
            var (dy, dx, flip) = Assert.Single(Decode(data, k, TwoChannels, batch.Images.AsSpan(k * data.ImageSize, data.ImageSize), 2));
            Assert.False(flip);
            shifts.Add((dy, dx));
        }

        // 25 equally likely shifts in 400 draws: P(some shift missing) < 25·(24/25)^400 ≈ 2e-6.
        Assert.Equal(25, shifts.Count);
    }

    [Fact]
    public void Enumerate_SameSeedAndEpoch_BitIdenticalBatches_OtherEpochOrSeedDiffers()
    {
        var data = RandomImages(100);
        float[][] Run(int seed, int epoch)
        {
            using var loader = new BatchLoader(data, 32, TwoChannels, shuffle: true, new AugmentOptions(), seed, epoch, dropLast: false, prefetch: 3);
            return [.. loader.Select(b => b.Images)];
        }

        var first = Run(7, 3);
        var again = Run(7, 3);
        var nextEpoch = Run(7, 4);
        var otherSeed = Run(8, 3);

        Assert.Equal(first.Length, again.Length);
        for (var b = 0; b < first.Length; b++)
        {
            // Bit patterns, so even a −0/+0 or NaN difference would show.
            Assert.Equal(first[b].Select(BitConverter.SingleToInt32Bits), again[b].Select(BitConverter.SingleToInt32Bits));
        }

        Assert.NotEqual(first[0], nextEpoch[0]);
        Assert.NotEqual(first[0], otherSeed[0]);
    }

    [Fact]
    public void RecyclingLoader_GivesTheSameBatches_InAFixedSetOfArrays_EvenToASlowConsumer()
    {
        var data = RandomImages(70);
        var options = new AugmentOptions();
        using var plain = new BatchLoader(data, 8, TwoChannels, shuffle: true, options, seed: 5, epoch: 1);
        var expected = All(plain);
        using var recycling = new BatchLoader(data, 8, TwoChannels, shuffle: true, options, seed: 5, epoch: 1, dropLast: false, prefetch: 2,
            beforeBatch: null, recycleArrays: true);

        var arrays = new HashSet<float[]>(ReferenceEqualityComparer.Instance);
        var b = 0;
        foreach (var batch in recycling)
        {
            // A slow consumer: the producer fills every place of the queue meanwhile, and must not touch this batch.
            Thread.Sleep(20);
            Assert.Equal(expected[b].Count, batch.Count);
            Assert.Equal(expected[b].Labels, batch.Labels.AsSpan(0, batch.Count).ToArray());
            Assert.Equal(expected[b].Images, batch.Images.AsSpan(0, batch.Count * data.ImageSize).ToArray());
            arrays.Add(batch.Images);
            b++;
        }

        Assert.Equal(expected.Count, b);
        Assert.Equal(recycling.RecycledBatches, arrays.Count); // 9 batches in 4 sets of arrays
    }

    [Fact]
    public void Order_DependsOnlyOnSeedAndEpoch()
    {
        var data = RandomImages(50);
        using var a = new BatchLoader(data, 10, TwoChannels, shuffle: true, AugmentOptions.None, seed: 1, epoch: 0);
        using var b = new BatchLoader(data, 25, TwoChannels, shuffle: true, AugmentOptions.None, seed: 1, epoch: 0, prefetch: 1);
        using var c = new BatchLoader(data, 10, TwoChannels, shuffle: true, AugmentOptions.None, seed: 1, epoch: 1);

        Assert.Equal(a.Order, b.Order);
        Assert.NotEqual(a.Order, c.Order);
    }

    [Fact]
    public void GetEnumerator_Twice_YieldsTheSameBatches()
    {
        var data = RandomImages(30);
        using var loader = new BatchLoader(data, 8, TwoChannels, shuffle: true, new AugmentOptions(), seed: 5, epoch: 1);

        var first = All(loader);
        var second = All(loader);

        Assert.Equal(first.Select(b => b.Images), second.Select(b => b.Images));
        Assert.Equal(first.Select(b => b.Labels), second.Select(b => b.Labels));
    }

    [Fact]
    public void Producer_NeverRunsMoreThanPrefetchAheadOfTheConsumer()
    {
        const int prefetch = 2;
        var consumed = 0;
        var maxAhead = int.MinValue;
        var data = RandomImages(60);
        using var loader = new BatchLoader(
            data, 1, TwoChannels, shuffle: true, new AugmentOptions(), seed: 1, epoch: 0, dropLast: false, prefetch,
            beforeBatch: b =>
            {
                // Before batch b, batches 0..b−1 went into a queue of `prefetch`; one more may be taken but not yet counted.
                var ahead = b - Volatile.Read(ref consumed);
                if (ahead > maxAhead)
                {
                    maxAhead = ahead;
                }
            });

        foreach (var unused in loader)
        {
            Interlocked.Increment(ref consumed);
        }

        Assert.Equal(60, consumed);
        Assert.InRange(maxAhead, 0, prefetch + 1);
    }

    [Fact]
    public async Task Dispose_MidEpoch_StopsTheBlockedProducer()
    {
        const int prefetch = 2;
        var data = RandomImages(500);
        var loader = new BatchLoader(data, 1, TwoChannels, shuffle: true, new AugmentOptions(), seed: 1, epoch: 0, dropLast: false, prefetch);
        var batches = loader.GetEnumerator();
        Assert.True(batches.MoveNext());

        // The producer fills the queue (batches 1..prefetch) and blocks on the next one it prepared.
        // The timeouts only guard against a hang; nothing is measured.
        Assert.True(SpinWait.SpinUntil(() => loader.PreparedBatches == prefetch + 2, TimeSpan.FromSeconds(60)));
        Assert.False(loader.ProducersFinished);

        var disposal = Task.Run(loader.Dispose);
        Assert.True(await Task.WhenAny(disposal, Task.Delay(TimeSpan.FromSeconds(60))) == disposal, "Dispose did not return: the producer ignored cancellation");
        batches.Dispose();

        Assert.True(loader.ProducersFinished);
        Assert.Equal(prefetch + 2, loader.PreparedBatches);
        Assert.Throws<ObjectDisposedException>(() => loader.GetEnumerator());
    }

    [Fact]
    public void Enumerate_BreakOutOfLoop_StopsTheProducer()
    {
        var data = RandomImages(500);
        using var loader = new BatchLoader(data, 1, TwoChannels, shuffle: false, AugmentOptions.None, seed: 1, epoch: 0);

        foreach (var unused in loader)
        {
            break;
        }

        Assert.True(loader.ProducersFinished);
        Assert.True(loader.PreparedBatches < loader.BatchCount);
    }

    [Fact]
    public void Enumerate_ProducerThrows_ConsumerGetsEarlierBatchesThenTheSameException()
    {
        var data = RandomImages(40);
        using var loader = new BatchLoader(
            data, 4, TwoChannels, shuffle: false, AugmentOptions.None, seed: 1, epoch: 0, dropLast: false, prefetch: 2,
            beforeBatch: b =>
            {
                if (b == 3)
                {
                    throw new InvalidOperationException("batch 3 failed");
                }
            });

        var received = 0;
        var error = Assert.Throws<InvalidOperationException>(() =>
        {
            foreach (var unused in loader)
            {
                received++;
            }
        });

        Assert.Equal("batch 3 failed", error.Message);
        Assert.Equal(3, received);
        Assert.True(loader.ProducersFinished);
    }

    [Fact]
    public void Constructor_NormalisationOfOtherChannelCount_Throws()
    {
        var data = RandomImages(4, channels: 1);

        var error = Assert.Throws<DataException>(() => new BatchLoader(data, 2, Normalization.Cifar10, shuffle: false, AugmentOptions.None, seed: 0, epoch: 0));

        Assert.StartsWith("random: the normalisation has 3 channels (mean 0.4914/0.4822/0.4465", error.Message, StringComparison.Ordinal);
        Assert.EndsWith("but the images have 1", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Constructor_DropLastWithFewerImagesThanABatch_Throws()
    {
        var data = RandomImages(5);

        var error = Assert.Throws<DataException>(() => new BatchLoader(data, 8, TwoChannels, shuffle: false, AugmentOptions.None, seed: 0, epoch: 0, dropLast: true));

        Assert.Equal("random: 5 images make no full batch of 8; use a smaller batch size or keep the last partial batch", error.Message);
    }
}
