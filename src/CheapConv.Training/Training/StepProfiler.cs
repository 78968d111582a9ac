using CheapConv.Autograd;
using CheapConv.Models;
using CheapConv.Profiling;

namespace CheapConv.Training;

/// <summary>
/// Every launch of one real training step (no teacher) or distillation step (teacher → student with KD and AT, α = 0.9,
/// T = 4, β = 1e3), run by <see cref="TrainingStep"/> — the trainer's own step — on the profiling emulator and modelled:
/// the <c>profile --step</c> report. A first step runs before the profiled one and is discarded (the optimizer creates
/// its momentum buffers in it), so the profile is of a steady-state step.
/// </summary>
internal static class StepProfiler
{
    /// <summary>The KD + AT weights the distillation step uses: KD on (α = 0.9, T = 4) and AT (β = 1e3), as the paper's KD+AT rows.</summary>
    public static DistillationOptions DistillationLoss { get; } = new(Alpha: 0.9f, Temperature: 4f, Beta: 1e3f);

    /// <summary>Profiles one step of <paramref name="student"/> (distilled from <paramref name="teacher"/> when given) at <paramref name="batch"/> images.</summary>
    public static StepProfile Run(ProfiledRun run, WrnConfig student, WrnConfig? teacher, int batch)
    {
        ArgumentNullException.ThrowIfNull(run);
        ArgumentNullException.ThrowIfNull(student);
        ArgumentOutOfRangeException.ThrowIfLessThan(batch, 2);
        var backend = run.Backend;
        var teacherModel = teacher is null ? null : new WideResNet(teacher, backend, seed: 1);
        teacherModel?.Eval();
        var model = new WideResNet(student, backend, seed: 2);
        model.Train();
        using var optimizer = new Sgd(model.Parameters(), learningRate: 0.1f, momentum: 0.9f, weightDecay: 5e-4f);
        var loss = teacher is null ? null : DistillationLoss;
        int[] shape = [batch, student.InChannels, student.ImageSize, student.ImageSize];
        var random = new Random(1);
        var images = new float[batch * student.InChannels * student.ImageSize * student.ImageSize];
        for (var i = 0; i < images.Length; i++)
        {
            images[i] = (float)(random.NextDouble() * 2 - 1);
        }

        var labels = Enumerable.Range(0, batch).Select(_ => random.Next(student.Classes)).ToArray();
        // Sampled launches leave partial outputs, so the losses and gradients are meaningless: the steps record them as a
        // training step does (the same launches) and nobody reads them. The trainer's reads of the log come between
        // steps, every few steps, and are not part of a step.
        using var log = new StepLog(backend, model, TrainingStep.AttentionGroups(loss), capacity: 2);
        void Step() => TrainingStep.Run(model, teacherModel, optimizer, loss, backend, shape, images, labels, log);

        run.Profile(Step, sampleBlocks: 1); // warm-up (one block per launch: quick): momentum and scratch buffers come into being
        var (launches, hostWaits) = run.Profile(Step);
        var description = teacher is null
            ? $"train step: {student.Name}, batch {batch}, cross-entropy"
            : $"distill step: {teacher.Name} → {student.Name}, batch {batch}, KD (α = {loss!.Alpha}, T = {loss.Temperature}) + AT (β = {loss.Beta})";
        return new StepProfile(description, launches, hostWaits, ProfileModel.ByKernel(launches));
    }
}
