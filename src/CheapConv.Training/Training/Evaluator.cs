using CheapConv.Autograd;
using CheapConv.Data;
using CheapConv.Models;

namespace CheapConv.Training;

/// <summary>Test-set cross-entropy and accuracy.</summary>
/// <param name="Loss">Mean cross-entropy per image.</param>
/// <param name="Accuracy">Correct / Count, in [0, 1].</param>
/// <param name="Correct">Images whose largest logit (first on ties) is at the label.</param>
/// <param name="Count">Images evaluated.</param>
public sealed record EvaluationResult(double Loss, double Accuracy, int Correct, int Count);

/// <summary>Runs a model over a dataset in eval mode without recording gradients.</summary>
public static class Evaluator
{
    /// <summary>The batch size of evaluation (no backward pass, so larger than training's).</summary>
    public const int DefaultBatchSize = 256;

    /// <summary>
    /// Evaluates <paramref name="model"/> on <paramref name="data"/> (in dataset order, no augmentation) and puts it
    /// back in the mode it was in. The loss is the mean over images (each batch's mean weighted by its size).
    /// </summary>
    public static EvaluationResult Run(WideResNet model, ImageDataset data, Normalization normalization, int batchSize = DefaultBatchSize, CancellationToken cancellation = default)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(data);
        var backend = model.Fc.Weight.Backend;
        var config = model.Config;
        if (data.Channels != config.InChannels || data.Height != config.ImageSize || data.Width != config.ImageSize || data.Classes != config.Classes)
        {
            throw new ArgumentException(
                $"{data.Name} has {data.Channels}×{data.Height}×{data.Width} images and {data.Classes} classes; {config.Name} takes {config.InChannels}×{config.ImageSize}×{config.ImageSize} and {config.Classes}");
        }

        var wasTraining = model.Training;
        model.Eval();
        try
        {
            double lossSum = 0;
            var correct = 0;
            // Each batch is done with before the next is asked for (its upload copies it): the loader recycles its arrays.
            using var loader = new BatchLoader(data, batchSize, normalization, shuffle: false, AugmentOptions.None, seed: 0, epoch: 0, dropLast: false, prefetch: 2,
                beforeBatch: null, recycleArrays: true);
            using var noGrad = GradientMode.NoGrad();
            foreach (var batch in loader)
            {
                cancellation.ThrowIfCancellationRequested();
                using var scope = TensorScope.Begin();
                var images = Tensor.FromHost(backend, [batch.Count, data.Channels, data.Height, data.Width], batch.Images.AsSpan(0, batch.Count * data.ImageSize));
                var logits = model.ForwardWithGroups(images).Logits;
                var labels = batch.Labels.AsSpan(0, batch.Count);
                lossSum += (double)Ops.CrossEntropy(logits, labels).Item() * batch.Count;
                correct += backend.CountCorrect(batch.Count, config.Classes, logits.Storage, labels);
            }

            return new EvaluationResult(lossSum / data.Count, (double)correct / data.Count, correct, data.Count);
        }
        finally
        {
            model.Train(wasTraining);
        }
    }
}
