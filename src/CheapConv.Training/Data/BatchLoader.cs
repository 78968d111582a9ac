using System.Collections;
using System.Collections.Concurrent;
using System.Runtime.ExceptionServices;

namespace CheapConv.Data;

/// <summary>
/// One epoch of a dataset in batches, prepared on a background thread while the caller trains: the thread
/// starts in the constructor and keeps at most <c>prefetch</c> finished batches queued (plus the one it is
/// working on), so memory stays bounded whatever the consumer's speed.
/// </summary>
/// <remarks>
/// <para>
/// Reproducibility: the order of the epoch is a SplitMix64 Fisher–Yates permutation seeded from (seed, epoch),
/// and the crop offset and flip of the image at position i of the epoch come from a generator seeded from
/// (seed, epoch, i). Nothing depends on timing, threads or the runtime's <see cref="System.Random"/>, so the
/// same seed and epoch give bit-identical batches on every run — what resuming a run relies on — and
/// different epochs give different orders and augmentations.
/// </para>
/// <para>
/// Augmentation follows torchvision's order (see <see cref="AugmentOptions"/>): pad the raw bytes with 0,
/// crop, flip, then normalise each byte with <see cref="Normalization.Normalize"/>. Padded pixels therefore
/// hold the normalised value of black, −mean/std, exactly as RandomCrop(padding=4) before ToTensor/Normalize.
/// </para>
/// <para>
/// An exception in the producer (none is expected from a validated dataset) reaches the consumer, with its
/// original type and stack, after the batches finished before it. <see cref="Dispose"/> cancels the producer,
/// which stops before its next batch, and waits for it. The loader may be enumerated more than once (each
/// enumeration yields the same batches; the first uses the batches prefetched since construction); it is not
/// meant to be enumerated from several threads at once.
/// </para>
/// </remarks>
#pragma warning disable CA1710 // The name is the trainer's API ("BatchLoader", not a "Collection").
public sealed class BatchLoader : IEnumerable<Batch>, IDisposable
#pragma warning restore CA1710
{
    private readonly ImageDataset data;
    private readonly int batchSize;
    private readonly AugmentOptions augment;
    private readonly int seed;
    private readonly int epoch;
    private readonly int prefetch;
    private readonly int[] order;
    private readonly float[][] lookupTables;
    private readonly Action<int>? beforeBatch;
    private readonly bool recycleArrays;
    private readonly List<Producer> producers = [];
    private Producer? prefetched;
    private bool disposed;

    /// <summary>Starts preparing the batches of epoch <paramref name="epoch"/> of <paramref name="data"/>.</summary>
    /// <param name="data">The images.</param>
    /// <param name="batchSize">Images per batch (the last one may hold fewer unless <paramref name="dropLast"/>).</param>
    /// <param name="normalization">Per-channel normalisation; must have the images' channel count.</param>
    /// <param name="shuffle">Whether to visit the images in a seeded random order (else in dataset order).</param>
    /// <param name="augment">Augmentation; <see cref="AugmentOptions.None"/> for evaluation.</param>
    /// <param name="seed">The run's seed.</param>
    /// <param name="epoch">The epoch (0-based): with <paramref name="seed"/>, it fixes order and augmentation.</param>
    /// <param name="dropLast">Whether to leave out a last batch smaller than <paramref name="batchSize"/>.</param>
    /// <param name="prefetch">How many finished batches may wait in the queue.</param>
    public BatchLoader(ImageDataset data, int batchSize, Normalization normalization, bool shuffle, AugmentOptions augment, int seed, int epoch, bool dropLast = false, int prefetch = 2)
        : this(data, batchSize, normalization, shuffle, augment, seed, epoch, dropLast, prefetch, beforeBatch: null, recycleArrays: false)
    {
    }

    /// <summary>
    /// As the public constructor; <paramref name="beforeBatch"/> runs on the producer thread before each batch (tests inject
    /// failures and count progress with it). With <paramref name="recycleArrays"/> an enumeration writes its batches into
    /// <see cref="RecycledBatches"/> sets of arrays in turn, so that after those a training step allocates no batch (at batch
    /// 128 the images of one are a large-object-heap array, which only a gen-2 collection frees): a batch is then valid only
    /// until the next one is asked for, and its arrays have room for a whole batch even when <see cref="Batch.Count"/> is smaller.
    /// </summary>
    internal BatchLoader(
        ImageDataset data, int batchSize, Normalization normalization, bool shuffle, AugmentOptions augment, int seed, int epoch, bool dropLast, int prefetch,
        Action<int>? beforeBatch, bool recycleArrays = false)
    {
        ArgumentNullException.ThrowIfNull(data);
        ArgumentNullException.ThrowIfNull(normalization);
        ArgumentNullException.ThrowIfNull(augment);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(batchSize);
        ArgumentOutOfRangeException.ThrowIfNegative(epoch);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(prefetch);
        normalization.EnsureFits(data.Channels, data.Name);

        BatchCount = dropLast ? data.Count / batchSize : (data.Count + batchSize - 1) / batchSize;
        if (BatchCount == 0)
        {
            throw new DataException($"{data.Name}: {data.Count} images make no full batch of {batchSize}; use a smaller batch size or keep the last partial batch");
        }

        this.data = data;
        this.batchSize = batchSize;
        this.augment = augment;
        this.seed = seed;
        this.epoch = epoch;
        this.prefetch = prefetch;
        this.beforeBatch = beforeBatch;
        this.recycleArrays = recycleArrays;
        ImageCount = dropLast ? BatchCount * batchSize : data.Count;
        order = shuffle
            ? new SplitMix64(SplitMix64.DeriveSeed(seed, epoch, RandomStreams.Shuffle)).Permutation(data.Count)
            : [.. Enumerable.Range(0, data.Count)];
        lookupTables = [.. Enumerable.Range(0, data.Channels).Select(normalization.LookupTable)];
        prefetched = Start();
    }

    /// <summary>The number of batches in the epoch.</summary>
    public int BatchCount { get; }

    /// <summary>The number of images the epoch visits (all, or fewer when the last partial batch is dropped).</summary>
    public int ImageCount { get; }

    /// <summary>
    /// Sets of arrays an enumeration recycles: the consumer's batch, the <c>prefetch</c> batches the queue may hold and the
    /// one being prepared. When the producer starts batch b, it has queued b − 1 into a queue of <c>prefetch</c> places, so
    /// the consumer has taken b − prefetch − 1 at least, and has let go of every batch before the one it holds: the arrays
    /// of b − (prefetch + 2) are free.
    /// </summary>
    internal int RecycledBatches => prefetch + 2;

    /// <summary>The order in which the epoch visits the dataset's images (tests).</summary>
    internal IReadOnlyList<int> Order => order;

    /// <summary>The batches the most recently started producer has prepared so far (tests).</summary>
    internal int PreparedBatches => producers.Count == 0 ? 0 : Volatile.Read(ref producers[^1].Prepared);

    /// <summary>Whether every producer thread has finished (tests).</summary>
    internal bool ProducersFinished => producers.TrueForAll(p => p.Task.IsCompleted);

    /// <summary>The batches of the epoch, in order; see the remarks for threads, errors and disposal.</summary>
    public IEnumerator<Batch> GetEnumerator()
    {
        ObjectDisposedException.ThrowIf(disposed, this);
        var producer = prefetched ?? Start();
        prefetched = null;
        return Consume(producer);
    }

    IEnumerator IEnumerable.GetEnumerator() => GetEnumerator();

    /// <summary>Stops every producer (before its next batch) and waits for it; batches not yet taken are dropped.</summary>
    public void Dispose()
    {
        if (disposed)
        {
            return;
        }

        disposed = true;
        foreach (var producer in producers)
        {
            producer.Stop();
        }
    }

    /// <summary>
    /// Writes the batch's images: each output pixel (y, x) of channel c reads the raw pixel
    /// (y + dy, (flip ? W−1−x : x) + dx), or 0 (black) outside the image, through the channel's lookup table; into the
    /// arrays of <paramref name="recycled"/> when given (a batch of this loader the consumer has let go of), else new ones.
    /// </summary>
    internal Batch Prepare(int batchIndex, Batch? recycled = null)
    {
        var first = batchIndex * batchSize;
        var count = Math.Min(batchSize, data.Count - first);
        var (channels, height, width) = (data.Channels, data.Height, data.Width);
        var imageSize = data.ImageSize;
        var images = recycled?.Images ?? new float[count * imageSize];
        var labels = recycled?.Labels ?? new int[count];
        var pixels = data.Pixels.Span;
        var allLabels = data.Labels.Span;
        var cropping = augment.RandomCrop && augment.Pad > 0;
        for (var k = 0; k < count; k++)
        {
            var position = first + k;
            var index = order[position];
            labels[k] = allLabels[index];
            var (dy, dx, flip) = (0, 0, false);
            if (!augment.IsIdentity)
            {
                // One generator per position: the draw does not depend on which thread or batch prepares it.
                var random = new SplitMix64(SplitMix64.DeriveSeed(seed, epoch, RandomStreams.Augment, position));
                if (cropping)
                {
                    dy = random.NextInt((2 * augment.Pad) + 1) - augment.Pad;
                    dx = random.NextInt((2 * augment.Pad) + 1) - augment.Pad;
                }

                flip = augment.HorizontalFlip && (random.NextUInt64() >> 63) == 1;
            }

            var source = pixels.Slice(index * imageSize, imageSize);
            var target = images.AsSpan(k * imageSize, imageSize);
            for (var c = 0; c < channels; c++)
            {
                var table = lookupTables[c];
                var black = table[0];
                for (var y = 0; y < height; y++)
                {
                    var row = target.Slice(((c * height) + y) * width, width);
                    var sy = y + dy;
                    if ((uint)sy >= (uint)height)
                    {
                        row.Fill(black);
                        continue;
                    }

                    var sourceRow = source.Slice(((c * height) + sy) * width, width);
                    for (var x = 0; x < width; x++)
                    {
                        var sx = (flip ? width - 1 - x : x) + dx;
                        row[x] = (uint)sx < (uint)width ? table[sourceRow[sx]] : black;
                    }
                }
            }
        }

        return new Batch(images, labels, count);
    }

    private Producer Start()
    {
        var producer = new Producer(this);
        producers.Add(producer);
        return producer;
    }

    private static IEnumerator<Batch> Consume(Producer producer)
    {
        try
        {
            foreach (var batch in producer.Queue.GetConsumingEnumerable())
            {
                yield return batch;
            }

            producer.Failure?.Throw();
        }
        finally
        {
            producer.Stop();
        }
    }

    /// <summary>One background pass over the epoch: a long-running task filling a bounded queue.</summary>
    private sealed class Producer : IDisposable
    {
        private readonly CancellationTokenSource cancellation = new();
        private int stopped;

        public int Prepared;

        // The arrays of the batches this enumeration prepared, slot b mod RecycledBatches for batch b, when recycling.
        private readonly Batch?[]? recycled;

        public Producer(BatchLoader loader)
        {
            Queue = new BlockingCollection<Batch>(loader.prefetch);
            recycled = loader.recycleArrays ? new Batch?[loader.RecycledBatches] : null;
            var token = cancellation.Token;

            // A dedicated thread rather than the thread pool, which the CPU backend's parallel loops keep busy.
            Task = Task.Factory.StartNew(() => Run(loader, token), CancellationToken.None, TaskCreationOptions.LongRunning, TaskScheduler.Default);
        }

        public BlockingCollection<Batch> Queue { get; }

        public Task Task { get; }

        public ExceptionDispatchInfo? Failure { get; private set; }

        public void Dispose() => Stop();

        /// <summary>Cancels, waits for the thread to end, then releases the queue; safe to call more than once.</summary>
        public void Stop()
        {
            if (Interlocked.Exchange(ref stopped, 1) == 1)
            {
                return;
            }

            cancellation.Cancel();
            Task.Wait();
            Queue.Dispose();
            cancellation.Dispose();
        }

        private void Run(BatchLoader loader, CancellationToken token)
        {
            try
            {
                for (var b = 0; b < loader.BatchCount; b++)
                {
                    token.ThrowIfCancellationRequested();
                    loader.beforeBatch?.Invoke(b);
                    var batch = loader.Prepare(b, recycled?[b % recycled.Length]);
                    if (recycled is not null)
                    {
                        recycled[b % recycled.Length] ??= batch;
                    }

                    Interlocked.Increment(ref Prepared);
                    Queue.Add(batch, token);
                }
            }
            catch (OperationCanceledException) when (token.IsCancellationRequested)
            {
                // Stopped by Dispose or an abandoned enumeration: nobody is waiting for the rest.
            }
#pragma warning disable CA1031 // Any failure is handed to the consumer, which rethrows it with its type and stack.
            catch (Exception e)
#pragma warning restore CA1031
            {
                Failure = ExceptionDispatchInfo.Capture(e);
            }
            finally
            {
                Queue.CompleteAdding();
            }
        }
    }
}
