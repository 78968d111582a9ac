using CheapConv.Autograd;
using CheapConv.Backends;
using CheapConv.Models;
using CheapConv.Tests.Emulator;
using CheapConv.Training;
using Xunit;

namespace CheapConv.Tests.Training;

/// <summary>
/// A training step never makes the host wait for the device (issue 10): on the emulator, which counts the waits a GPU
/// would make, a plain and a distillation step after the first run in the strict scope, where any wait fails; the step
/// log they write reads back the same losses, counts and checks as the CPU backend's.
/// </summary>
public class StepHostWaitTests(EmulatorFixture emulator) : IClassFixture<EmulatorFixture>
{
    private const int Batch = 8;

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void StepsAfterTheFirst_MakeNoHostWait_AndLogWhatTheCpuLogs(bool distill)
    {
        var onDevice = RunSteps(new GpuBackend(emulator.Device), distill, strictAfterFirst: true);
        var onCpu = RunSteps(new CpuBackend(), distill, strictAfterFirst: false);

        Assert.Equal(onCpu.Count, onDevice.Count);
        for (var i = 0; i < onCpu.Count; i++)
        {
            Assert.Null(onDevice[i].Diverged);
            Assert.Equal(onCpu[i].Images, onDevice[i].Images);
            Assert.Equal(onCpu[i].Correct, onDevice[i].Correct);
            // The device and the CPU sum in different orders: the losses agree to float rounding of sums of a few
            // thousand terms (relative 1e-4 is far above 2^-24 × terms and far below any real difference).
            Assert.Equal(onCpu[i].CrossEntropy, onDevice[i].CrossEntropy, 1e-4 * Math.Abs(onCpu[i].CrossEntropy));
            Assert.Equal(onCpu[i].Loss, onDevice[i].Loss, 1e-4 * Math.Abs(onCpu[i].Loss));
            Assert.Equal(onCpu[i].AttentionTransfer, onDevice[i].AttentionTransfer, 1e-4 * Math.Abs(onCpu[i].AttentionTransfer) + 1e-9);
        }
    }

    [Fact]
    public void AStepThatGoesNonFinite_IsLoggedWithTheFirstTermThatDid()
    {
        var backend = new CpuBackend();
        var (student, _) = Models(backend, distill: false);
        var weights = student.ExportStateDict();
        weights["fc.weight"][0] = float.PositiveInfinity; // ∞·x in the logits: every gradient upstream of fc turns NaN
        student.LoadStateDict(weights, strict: true);
        using var optimizer = new Sgd(student.Parameters(), 0.1f, 0.9f, 5e-4f);
        using var log = new StepLog(backend, student, 0, capacity: 1);
        var (images, labels) = Batch_(0);
        TrainingStep.Run(student, null, optimizer, null, backend, [Batch, 1, 12, 12], images, labels, log);

        var record = Assert.Single(log.ReadNew());
        Assert.NotNull(record.Diverged);
        Assert.Equal("the CE loss", record.Diverged.Value.Term); // the loss is checked before any gradient
        Assert.Empty(log.ReadNew()); // read once
    }

    [Fact]
    public void ReadNew_BeforeTheLogIsFull_ReturnsEachRowOnce_InStepOrder()
    {
        // The trainer reads every few steps, long before the log (sized for an epoch) is full.
        var backend = new CpuBackend();
        var (student, _) = Models(backend, distill: false);
        using var optimizer = new Sgd(student.Parameters(), 0.1f, 0.9f, 5e-4f);
        using var log = new StepLog(backend, student, 0, capacity: 5);
        var reads = new List<IReadOnlyList<StepRecord>>();
        for (var step = 0; step < 3; step++)
        {
            var (images, labels) = Batch_(step);
            TrainingStep.Run(student, null, optimizer, null, backend, [Batch, 1, 12, 12], images, labels, log);
            if (step != 0)
            {
                reads.Add(log.ReadNew());
            }
        }

        Assert.Equal([2, 1], reads.Select(r => r.Count));
        Assert.All(reads.SelectMany(r => r), r => Assert.True(r.Images == Batch && r.Loss > 0 && r.Diverged is null));
        Assert.NotEqual(reads[0][0].Loss, reads[0][1].Loss); // two different steps, not one row twice
        log.Clear();
        Assert.Equal((0, 0), (log.Count, log.Unread));
    }

    [Fact]
    public void BeginRead_InsideAStrictStep_DoesNotWait_AndTryReadNewTakesTheRowsOnce()
    {
        var backend = new GpuBackend(emulator.Device);
        var (student, _) = Models(backend, distill: false);
        using var optimizer = new Sgd(student.Parameters(), 0.1f, 0.9f, 5e-4f);
        using var log = new StepLog(backend, student, 0, capacity: 4);
        Assert.Null(log.TryReadNew()); // nothing started
        for (var step = 0; step < 3; step++)
        {
            var (images, labels) = Batch_(step);
            TrainingStep.Run(student, null, optimizer, null, backend, [Batch, 1, 12, 12], images, labels, log);
        }

        GC.Collect();
        GC.WaitForPendingFinalizers();
        IReadOnlyList<StepRecord>? rows;
        using (emulator.Device.HostWaits.Forbid("a progress read"))
        {
            log.BeginRead();
            rows = log.TryReadNew(); // the emulator's copy has arrived when it was started
        }

        Assert.Equal([1, 2, 3], rows!.Select(r => r.Step));
        Assert.Null(log.TryReadNew()); // taken once
        Assert.Empty(log.ReadNew());   // and not read again by the synchronous read
    }

    private static List<StepRecord> RunSteps(IBackend backend, bool distill, bool strictAfterFirst)
    {
        // Buffers other tests left to the garbage collector are freed by finalizers, and a free with work queued is a
        // host wait on this device too: finalize them now, so the strict scope judges the step alone.
        GC.Collect();
        GC.WaitForPendingFinalizers();
        var (student, teacher) = Models(backend, distill);
        var loss = distill ? new DistillationOptions(0.9f, 4f, 1e3f) : null;
        using var optimizer = new Sgd(student.Parameters(), 0.1f, 0.9f, 5e-4f);
        using var log = new StepLog(backend, student, TrainingStep.AttentionGroups(loss), capacity: 3);
        for (var step = 0; step < 3; step++)
        {
            var (images, labels) = Batch_(step);
            // The first step allocates what later steps reuse (momentum, the scratch cache, the gradient list's upload).
            using var strict = strictAfterFirst && step > 0 && backend is GpuBackend gpu ? gpu.Device.HostWaits.Forbid($"training step {step + 1}") : null;
            TrainingStep.Run(student, teacher, optimizer, loss, backend, [Batch, 1, 12, 12], images, labels, log);
        }

        return [.. log.ReadNew()];
    }

    private static (WideResNet Student, WideResNet? Teacher) Models(IBackend backend, bool distill)
    {
        var student = new WideResNet(new ModelConfig("wrn-10-1", "G2", "basic", 1, 10, 12).ToWrnConfig(), backend, seed: 3);
        student.Train();
        if (!distill)
        {
            return (student, null);
        }

        var teacher = new WideResNet(new ModelConfig("wrn-10-1", "S", "basic", 1, 10, 12).ToWrnConfig(), backend, seed: 4);
        teacher.Eval();
        return (student, teacher);
    }

    private static (float[] Images, int[] Labels) Batch_(int step)
    {
        var random = new Random(10 + step);
        var images = new float[Batch * 144];
        for (var i = 0; i < images.Length; i++)
        {
            images[i] = (float)(random.NextDouble() * 2 - 1);
        }

        return (images, [.. Enumerable.Range(0, Batch).Select(i => (i + step) % 10)]);
    }
}
