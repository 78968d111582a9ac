using CheapConv.Autograd;
using CheapConv.Backends;
using CheapConv.Models;
using CheapConv.Training;
using Xunit;
using Xunit.Abstractions;

namespace CheapConv.Tests.Training;

/// <summary>
/// The allocation tests count every byte the process allocates (<see cref="GC.GetTotalAllocatedBytes"/>: the CPU backend's
/// parallel loops allocate on pool threads), so they run alone: no other test's allocations land in their count.
/// </summary>
[CollectionDefinition(Name, DisableParallelization = true)]
public sealed class AllocationMeasurementCollection
{
    public const string Name = "allocation measurements";
}

/// <summary>
/// A steady-state training or distillation step on the CPU backend allocates almost nothing on the managed heap (issue 13,
/// item 1): its storages come from the step's <see cref="TensorScope"/> cache and every scratch buffer of the ops is kept
/// from one call to the next, so after warm-up the garbage collector has nothing large to collect, decommit and recommit.
/// </summary>
[Collection(AllocationMeasurementCollection.Name)]
public sealed class StepAllocationTests(ITestOutputHelper output)
{
    private const int Image = 12;
    private const int WarmUpSteps = 3;
    private const int MeasuredSteps = 3;

    /// <summary>
    /// What a steady-state step may still allocate does not depend on the data: the autograd graph (a Tensor, its shape
    /// array and a Function per recorded op, the backward pass's visit order) and the bookkeeping of each Parallel.For
    /// (its tasks, replicas and the body's closure, about 1.5 KB per loop, a few loops per op). Nothing else grows with the
    /// batch but a few pointers (the backward-weight chunk list, 8 bytes per 8 images) and the tasks a parallel loop
    /// re-queues when a time slice ends, which a longer step on a loaded machine does more often (up to 17 KB more per step
    /// measured at batch 64 on two busy cores). One activation of the first group, 16 channels of 12 × 12 per image, is
    /// 9 KB per image: 442 KB more at batch 64 than at 16, far above this bound.
    /// </summary>
    private const long GrowthBound = 64 * 1024;

    /// <summary>
    /// The graph and loop bookkeeping of a WRN-10-1 step (20 to 30 recorded ops in the student, as many in the teacher, and
    /// their backward passes; 115 to 270 KB measured at batches 16 and 64): the closure per image and GEMM that the
    /// convolutions used to allocate (465 KB per distilled G(4) step at batch 16, growing with the batch) or a few
    /// activation-sized arrays go over it.
    /// </summary>
    private const long StepBound = 400 * 1024;

    [Theory]
    [InlineData("S", false)]
    [InlineData("G4", false)]
    [InlineData("G4", true)]
    [InlineData("DW", true)]
    public void SteadyStateStep_AllocatesNothingThatGrowsWithTheBatch_AndCollectsNoGen2(string block, bool distill)
    {
        var student = WrnConfig.Student(10, 1, UnitSpec.Parse(block), inChannels: 1, classes: 10, imageSize: Image);
        var teacher = distill ? WrnConfig.Teacher(10, 1, inChannels: 1, classes: 10, imageSize: Image) : null;

        var (small, smallGen2) = MeasureSteps(new CpuBackend(threads: 2), student, teacher, batch: 16);
        var (large, largeGen2) = MeasureSteps(new CpuBackend(threads: 2), student, teacher, batch: 64);

        output.WriteLine($"{student.Name}{(distill ? " distilled" : "")}: {small} bytes per step at batch 16, {large} at batch 64");
        Assert.Equal((0, 0), (smallGen2, largeGen2));
        Assert.True(large - small < GrowthBound, $"a step at batch 64 allocated {large - small} bytes more than one at batch 16 ({large} against {small})");
        Assert.True(Math.Max(small, large) < StepBound, $"a steady-state step allocated {Math.Max(small, large)} bytes");
    }

    /// <summary>
    /// Runs <see cref="WarmUpSteps"/> steps, then <see cref="MeasuredSteps"/> more: the bytes the process allocated per
    /// measured step and the gen-2 collections during them.
    /// </summary>
    internal static (long BytesPerStep, int Gen2Collections) MeasureSteps(IBackend backend, WrnConfig studentConfig, WrnConfig? teacherConfig, int batch)
    {
        var teacher = teacherConfig is null ? null : new WideResNet(teacherConfig, backend, seed: 1);
        teacher?.Eval();
        var student = new WideResNet(studentConfig, backend, seed: 2);
        student.Train();
        var loss = teacher is null ? null : new DistillationOptions(Alpha: 0.9f, Temperature: 4f, Beta: 1e3f);
        using var optimizer = new Sgd(student.Parameters(), learningRate: 0.1f, momentum: 0.9f, weightDecay: 5e-4f);
        using var log = new StepLog(backend, student, TrainingStep.AttentionGroups(loss), capacity: WarmUpSteps + MeasuredSteps);
        int[] shape = [batch, studentConfig.InChannels, studentConfig.ImageSize, studentConfig.ImageSize];
        var random = new Random(7);
        var images = new float[batch * studentConfig.InChannels * studentConfig.ImageSize * studentConfig.ImageSize];
        for (var i = 0; i < images.Length; i++)
        {
            images[i] = (float)((random.NextDouble() * 2) - 1);
        }

        int[] labels = [.. Enumerable.Range(0, batch).Select(i => i % studentConfig.Classes)];
        void Step() => TrainingStep.Run(student, teacher, optimizer, loss, backend, shape, images, labels, log);

        for (var i = 0; i < WarmUpSteps; i++)
        {
            Step();
        }

        // Start the measured steps with an empty heap, so a gen-2 collection during them is one they caused.
        GC.Collect();
        GC.WaitForPendingFinalizers();
        GC.Collect();
        var gen2Before = GC.CollectionCount(2);
        var bytesBefore = GC.GetTotalAllocatedBytes(precise: true);
        for (var i = 0; i < MeasuredSteps; i++)
        {
            Step();
        }

        var bytesAfter = GC.GetTotalAllocatedBytes(precise: true);
        var gen2After = GC.CollectionCount(2);
        var records = log.ReadNew();
        Assert.All(records, record => Assert.Null(record.Diverged));
        return ((bytesAfter - bytesBefore) / MeasuredSteps, gen2After - gen2Before);
    }
}
