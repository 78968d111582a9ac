using CheapConv.Autograd;
using CheapConv.Backends;
using CheapConv.Models;
using CheapConv.Training;
using CheapConv.Problems;
using CheapConv.Verification;
using Xunit;

namespace CheapConv.Tests.Backends;

/// <summary>
/// <c>new CpuBackend(threads)</c> (the CLI's --threads) really bounds the CPU backend: every op runs on at most that many
/// threads at once — counted by a scheduler that would give each parallel body its own thread — and the results are bit
/// for bit the same with 1, 2 and 3 threads: conv, norm, losses, GEMM and a whole distillation training step.
/// </summary>
public sealed class CpuThreadBoundTests
{
    private static readonly int[] ThreadCounts = [1, 2, 3];

    /// <summary>Every op family once, on shapes large enough that each parallel loop splits (vectors above 2^16 elements).</summary>
    private static List<float[]> AllOps(IBackend cpu)
    {
        var results = new List<float[]>();
        foreach (var (problem, pointwise) in new[]
        {
            (ConvProblem.Create(8, 16, 12, 12, 32, 3, 3, 1, 1, 1), false), // dense im2col + GEMM, several images
            (ConvProblem.Create(1, 32, 16, 16, 32, 3, 3, 1, 1, 1), false), // one image: the GEMM is split inside
            (ConvProblem.Create(4, 16, 10, 10, 16, 3, 3, 2, 1, 16), false), // depthwise (direct)
            (ConvProblem.Create(4, 16, 10, 10, 32, 3, 3, 1, 1, 4), false), // grouped
            (ConvProblem.Create(4, 32, 8, 8, 24, 1, 1, 1, 0, 1), true), // pointwise
        })
        {
            var outputs = CpuFastConvTests.RunFast(cpu, problem, ConvInputs.Random(problem, seed: 5), pointwise);
            results.AddRange([outputs.Y, outputs.Dx, outputs.Dw]);
        }

        results.AddRange(Norm(cpu));
        results.AddRange(Losses(cpu));
        results.AddRange(Gemm(cpu));
        results.AddRange(Vectors(cpu));
        return results;
    }

    private static float[] Values(int length, int seed)
    {
        var random = new Random(seed);
        return [.. Enumerable.Range(0, length).Select(_ => (float)(random.NextDouble() * 2 - 1))];
    }

    private static float[] Read(IBackend cpu, Storage storage)
    {
        var values = new float[storage.Length];
        cpu.Download(storage, values);
        return values;
    }

    private static IEnumerable<float[]> Norm(IBackend cpu)
    {
        const int n = 8, c = 32, h = 12, w = 12;
        using var x = cpu.Upload(Values(n * c * h * w, 1));
        using var dy = cpu.Upload(Values(n * c * h * w, 2));
        using var gamma = cpu.Upload(Values(c, 3));
        using var beta = cpu.Upload(Values(c, 4));
        using var mean = cpu.Upload(new float[c]);
        using var variance = cpu.Upload(Enumerable.Repeat(1f, c).ToArray());
        using var y = cpu.Allocate(n * c * h * w);
        using var saveMean = cpu.Allocate(c);
        using var saveInvStd = cpu.Allocate(c);
        using var dx = cpu.Allocate(n * c * h * w);
        using var dgamma = cpu.Allocate(c);
        using var dbeta = cpu.Allocate(c);
        cpu.BatchNormTrainForward(n, c, h, w, x, gamma, beta, mean, variance, 0.1f, 1e-5f, y, saveMean, saveInvStd);
        cpu.BatchNormBackward(n, c, h, w, x, dy, gamma, saveMean, saveInvStd, dx, dgamma, dbeta);
        var train = new[] { Read(cpu, y), Read(cpu, mean), Read(cpu, variance), Read(cpu, dx), Read(cpu, dgamma), Read(cpu, dbeta) };
        cpu.BatchNormEvalForward(n, c, h, w, x, gamma, beta, mean, variance, 1e-5f, y);
        return [.. train, Read(cpu, y)];
    }

    private static IEnumerable<float[]> Losses(IBackend cpu)
    {
        const int n = 64, classes = 10, c = 16, h = 8, w = 8;
        int[] labels = [.. Enumerable.Range(0, n).Select(i => i % classes)];
        using var logits = cpu.Upload(Values(n * classes, 6));
        using var teacher = cpu.Upload(Values(n * classes, 7));
        using var loss = cpu.Allocate(1);
        using var probabilities = cpu.Allocate(n * classes);
        using var dloss = cpu.Upload([1f]);
        using var dlogits = cpu.Allocate(n * classes);
        cpu.CrossEntropyForward(n, classes, logits, labels, loss, probabilities);
        cpu.CrossEntropyBackward(n, classes, probabilities, labels, dloss, dlogits);
        List<float[]> results = [Read(cpu, loss), Read(cpu, dlogits)];

        using var studentSoft = cpu.Allocate(n * classes);
        using var teacherSoft = cpu.Allocate(n * classes);
        cpu.KdForward(n, classes, 4f, logits, teacher, loss, studentSoft, teacherSoft);
        cpu.KdBackward(n, classes, 4f, studentSoft, teacherSoft, dloss, dlogits);
        results.AddRange([Read(cpu, loss), Read(cpu, dlogits)]);

        using var student = cpu.Upload(Values(n * c * h * w, 8));
        using var teacherActivations = cpu.Upload(Values(n * c * h * w, 9));
        using var studentMap = cpu.Allocate(n * h * w);
        using var teacherMap = cpu.Allocate(n * h * w);
        using var studentNorm = cpu.Allocate(n);
        using var dstudent = cpu.Allocate(n * c * h * w);
        cpu.AtForward(n, c, h, w, student, teacherActivations, loss, studentMap, teacherMap, studentNorm);
        cpu.AtBackward(n, c, h, w, student, studentMap, teacherMap, studentNorm, dloss, dstudent);
        results.AddRange([Read(cpu, loss), Read(cpu, dstudent)]);
        return results;
    }

    private static IEnumerable<float[]> Gemm(IBackend cpu)
    {
        const int n = 64, inFeatures = 256, outFeatures = 96;
        using var x = cpu.Upload(Values(n * inFeatures, 10));
        using var weights = cpu.Upload(Values(outFeatures * inFeatures, 11));
        using var bias = cpu.Upload(Values(outFeatures, 12));
        using var dy = cpu.Upload(Values(n * outFeatures, 13));
        using var y = cpu.Allocate(n * outFeatures);
        using var dx = cpu.Allocate(n * inFeatures);
        using var dw = cpu.Allocate(outFeatures * inFeatures);
        cpu.LinearForward(n, inFeatures, outFeatures, x, weights, bias, y);
        cpu.LinearBackwardData(n, inFeatures, outFeatures, dy, weights, dx);
        cpu.LinearBackwardWeight(n, inFeatures, outFeatures, x, dy, dw);
        return [Read(cpu, y), Read(cpu, dx), Read(cpu, dw)];
    }

    private static IEnumerable<float[]> Vectors(IBackend cpu)
    {
        const int length = 300_000;
        using var a = cpu.Upload(Values(length, 14));
        using var b = cpu.Upload(Values(length, 15));
        using var y = cpu.Allocate(length);
        using var momentum = cpu.Upload(new float[length]);
        cpu.Add(length, a, b, y);
        cpu.ReluForward(length, y, y);
        cpu.Axpy(0.5f, a, y);
        cpu.Scale(y, 1.5f);
        cpu.SgdStep(length, a, b, momentum, 0.1f, 0.9f, 5e-4f, nesterov: false);
        return [Read(cpu, y), Read(cpu, a), Read(cpu, momentum)];
    }

    /// <summary>One distillation step of a depthwise-separable student from a dense teacher (KD and AT), on the given backend.</summary>
    private static List<float[]> TrainingStep(IBackend cpu)
    {
        var student = new WideResNet(new ModelConfig("wrn-10-1", "DW", "basic", 1, 10, 12).ToWrnConfig(), cpu, seed: 3);
        var teacher = new WideResNet(new ModelConfig("wrn-10-1", "S", "basic", 1, 10, 12).ToWrnConfig(), cpu, seed: 4);
        teacher.Eval();
        using var optimizer = new Sgd(student.Parameters(), 0.1f, 0.9f, 5e-4f);
        const int n = 16;
        int[] labels = [.. Enumerable.Range(0, n).Select(i => i % 10)];
        for (var step = 0; step < 2; step++)
        {
            using var scope = TensorScope.Begin();
            var images = Tensor.FromHost(cpu, [n, 1, 12, 12], Values(n * 144, 20 + step));
            WrnOutput taught;
            using (GradientMode.NoGrad())
            {
                taught = teacher.ForwardWithGroups(images);
            }

            var output = student.ForwardWithGroups(images);
            var loss = DistillationLoss.Compute(output.Logits, taught.Logits, labels, output.Groups, taught.Groups, new DistillationOptions(0.9f, 4f, 1e3f));
            optimizer.ZeroGrad();
            loss.Total.Backward();
            optimizer.Step();
        }

        return [.. student.ExportStateDict().OrderBy(e => e.Key, StringComparer.Ordinal).Select(e => e.Value),
            .. student.Parameters().Select(p => optimizer.ExportMomentum(p)!)];
    }

    private static void AssertBitIdentical(List<float[]> expected, List<float[]> actual, string what)
    {
        Assert.Equal(expected.Count, actual.Count);
        for (var i = 0; i < expected.Count; i++)
        {
            var first = Enumerable.Range(0, expected[i].Length).FirstOrDefault(j => BitConverter.SingleToInt32Bits(expected[i][j]) != BitConverter.SingleToInt32Bits(actual[i][j]), -1);
            Assert.True(expected[i].Length == actual[i].Length && first < 0,
                $"{what}: result {i} differs at element {first}: {(first >= 0 ? expected[i][first] : 0)} vs {(first >= 0 ? actual[i][first] : 0)}");
        }
    }

    [Fact]
    public void EveryOpFamily_WithOneTwoAndThreeThreads_IsBitIdentical()
    {
        var reference = AllOps(new CpuBackend(1));
        foreach (var threads in ThreadCounts.Skip(1))
        {
            AssertBitIdentical(reference, AllOps(new CpuBackend(threads)), $"{threads} threads");
        }
    }

    [Fact]
    public void DistillationTrainingStep_WithOneTwoAndThreeThreads_IsBitIdentical()
    {
        var reference = TrainingStep(new CpuBackend(1));
        foreach (var threads in ThreadCounts.Skip(1))
        {
            AssertBitIdentical(reference, TrainingStep(new CpuBackend(threads)), $"training step on {threads} threads");
        }
    }

    [Theory]
    [InlineData(1)]
    [InlineData(2)]
    [InlineData(3)]
    public void EveryOp_RunsOnAtMostTheBackendsThreads(int threads)
    {
        var probe = new ConcurrencyProbe();
        probe.Run(() =>
        {
            AllOps(new CpuBackend(threads, probe));
            TrainingStep(new CpuBackend(threads, probe));
        });
        Assert.True(probe.MaxConcurrent <= threads, $"{probe.MaxConcurrent} threads ran the backend's bodies at once, bound {threads}");
        // The probe sees the backend's parallelism where it is allowed (so the bound above is not met by a probe that sees
        // nothing): it ran at least one body, and with more than one thread allowed the loops hand it work for other
        // threads. With one thread allowed, a loop may still run on a second thread, one at a time: the loop's first task
        // is queued to the probe (which starts a thread for it) and then waited for, and under load that thread can start
        // it before the waiting caller runs it inline — so only the bound on concurrency is asserted there. (How many
        // threads overlap depends on the machine's load, so that is not asserted from below.)
        Assert.True(probe.MaxConcurrent >= 1, "the probe saw no body of the backend run");
        Assert.True(threads == 1 || probe.ThreadsUsed > 1, $"the probe ran tasks on {probe.ThreadsUsed} threads with {threads} allowed");
    }

    [Fact]
    public void Constructor_WithNoThreads_IsRefused() => Assert.Throws<ArgumentOutOfRangeException>(() => new CpuBackend(0));

    /// <summary>
    /// A scheduler with no bound of its own, given to the backend for its parallel loops: every task it is given starts on
    /// a new thread at once, so only the backend's ParallelOptions can limit how many bodies run together. It counts the threads executing its tasks at once
    /// (a task run inline on a thread already counted does not count twice).
    /// </summary>
    private sealed class ConcurrencyProbe : TaskScheduler
    {
        [ThreadStatic]
        private static int _depth;

        private readonly System.Collections.Concurrent.ConcurrentDictionary<Task, byte> _executing = new();
        private readonly System.Collections.Concurrent.ConcurrentDictionary<int, byte> _threads = new();
        private int _max;

        public int MaxConcurrent => Volatile.Read(ref _max);

        /// <summary>How many threads ran the probe's tasks, in all.</summary>
        public int ThreadsUsed => _threads.Count;

        public void Run(Action action) =>
            Task.Factory.StartNew(action, CancellationToken.None, TaskCreationOptions.None, this).GetAwaiter().GetResult();

        protected override void QueueTask(Task task) => new Thread(() => Execute(task)) { IsBackground = true }.Start();

        protected override bool TryExecuteTaskInline(Task task, bool taskWasPreviouslyQueued) => Execute(task);

        protected override IEnumerable<Task> GetScheduledTasks() => [];

        private bool Execute(Task task)
        {
            if (_depth++ == 0)
            {
                // Count the outer tasks still running, not the threads still inside this wrapper: a task of the previous
                // loop is already complete (the loop returned because it was) but its thread may not have left here yet.
                _executing.TryAdd(task, 0);
                _threads.TryAdd(Environment.CurrentManagedThreadId, 0);
                var now = _executing.Keys.Count(t => !t.IsCompleted);
                int seen;
                while (now > (seen = Volatile.Read(ref _max)) && Interlocked.CompareExchange(ref _max, now, seen) != seen)
                {
                }
            }

            try
            {
                return TryExecuteTask(task);
            }
            finally
            {
                if (--_depth == 0)
                {
                    _executing.TryRemove(task, out _);
                }
            }
        }
    }
}
