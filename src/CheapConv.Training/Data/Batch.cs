namespace CheapConv.Data;

/// <summary>
/// One batch: <paramref name="Count"/> normalised (and possibly augmented) images, NCHW float32, and their labels.
/// The arrays are the batch's own, so they may be kept, unless the loader recycles them (the trainer's and the evaluator's
/// loaders do): then they are valid until the next batch is asked for, and may be longer than <paramref name="Count"/> images.
/// </summary>
/// <param name="Images">Count×C×H×W values.</param>
/// <param name="Labels">Count labels.</param>
/// <param name="Count">Images in the batch: the batch size, or fewer for the last batch of an epoch.</param>
public sealed record Batch(float[] Images, int[] Labels, int Count);
