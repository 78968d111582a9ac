using System.Globalization;
using CheapConv.Backends;
using CheapConv.Data;
using CheapConv.Devices;
using CheapConv.Reporting;
using CheapConv.Training;

namespace CheapConv.Cli.Commands;

/// <summary>
/// <c>train</c> (a WRN teacher or any student, alone) and <c>distill</c> (a student from a frozen teacher with
/// (1−α)·CE + α·KD + β·Σ AT): reads the options into a <see cref="RunRequest"/>, which <see cref="RunPlan"/> turns
/// into the run's <see cref="TrainingConfig"/> — the paper's recipe by default — and data, or refuses; then opens the
/// device and runs the <see cref="Trainer"/> with a progress display. <c>--resume RUN_DIR</c> continues a run; options
/// given then must agree with the stored ones (only --epochs may grow). Exit codes: 0 done, 2 bad options/files, 3 device unavailable, 130 interrupted by Ctrl+C (the last
/// completed epoch is checkpointed; --resume continues from it).
/// </summary>
/// <remarks>
/// <para>
/// --graph on|off: capture the training step as a CUDA graph (a recorded list on the emulator) and replay it for every full
/// batch (<see cref="TrainingConfig.Graph"/>); on by default on cuda and emu, refused on the cpu, kept in config.json.
/// </para>
/// <para>
/// --precision fp32|tf32: the convolutions' precision on cuda and emu (<see cref="TrainingConfig.Precision"/>): fp32, the
/// exact kernels, by default; tf32 runs the tensor-core kernels (and their fused epilogues) where they apply. Refused
/// with tf32 on the cpu; kept in config.json (a resumed run may not change it).
/// </para>
/// <para>
/// --deterministic: every random choice of a run already derives from its seed and every op is deterministic, so a
/// run is a pure function of its config.json on one device. What the flag changes is the seed: without it and
/// without --seed, a fresh seed is drawn (and recorded, so the run can still be repeated); with it the seed is 0
/// unless given. The flag is recorded in config.json.
/// </para>
/// </remarks>
internal static class TrainCommand
{
    public const string Usage =
        "train --arch wrn-16-2 [--block S] [--block-type basic|bottle] [--dataset fashion-mnist|mnist|cifar10|cifar100] [--data DIR] [RECIPE] | train --resume RUN_DIR [--epochs N]";

    public const string DistillUsage =
        "distill --teacher RUN_DIR|CKPT --arch wrn-16-2 --block G4 [--block-type basic|bottle] [--alpha 0] [--temperature 4] [--beta 1000] [--dataset D] [--data DIR] [RECIPE] | distill --resume RUN_DIR [--epochs N]";

    public const string RecipeUsage =
        "RECIPE: [--epochs 200] [--batch-size 128] [--lr 0.1] [--momentum 0.9] [--weight-decay 5e-4] [--schedule step|cosine] [--nesterov] [--no-augment] " +
        "[--train-subset N] [--test-subset N] [--seed S] [--deterministic] [--device auto|cpu|emu|cuda[:N]] [--graph on|off (cuda, emu; on by default there)] [--precision fp32|tf32 (cuda, emu; fp32 by default)] [--threads N (cpu)] [--out RUN_DIR]";

    /// <summary>The exit code of a run stopped by Ctrl+C (128 + SIGINT, as shells report it).</summary>
    public const int InterruptedExitCode = 130;

    /// <summary><c>train</c>.</summary>
    public static int Run(Options options, TextWriter output) => Execute(options, output, distill: false, CancellationToken.None);

    /// <summary><c>distill</c>.</summary>
    public static int RunDistill(Options options, TextWriter output) => Execute(options, output, distill: true, CancellationToken.None);

    /// <summary>Either command, stoppable through <paramref name="cancellation"/> as well as Ctrl+C (tests).</summary>
    public static int Execute(Options options, TextWriter output, bool distill, CancellationToken cancellation)
    {
        ArgumentNullException.ThrowIfNull(options);
        var request = ReadOptions(options, distill);
        var threads = OptionalInt(options, "threads");
        options.EnsureAllUsed();

        try
        {
            return Train(Plan(request), threads, output, cancellation);
        }
        catch (Exception e) when (e is DataException or CheckpointException or FormatException or InvalidDataException or FileNotFoundException)
        {
            throw new UsageException(OneLine(e.Message));
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new UsageException(OneLine($"cannot read or write the run's files: {e.Message}"));
        }
    }

    private static RunRequest ReadOptions(Options o, bool distill)
    {
        var schedule = o.String("schedule");
        if (schedule is not null and not ("step" or "cosine"))
        {
            throw new UsageException($"option --schedule must be one of step, cosine, got '{schedule}'");
        }

        var device = o.OptionalDevice([.. DeviceRequest.Kinds]);
        var blockType = o.String("block-type")?.ToLowerInvariant();
        if (blockType is not null and not ("basic" or "bottle"))
        {
            throw new UsageException($"option --block-type must be one of basic, bottle, got '{blockType}'");
        }

        var graph = o.String("graph") switch
        {
            null => (bool?)null,
            "on" => true,
            "off" => false,
            var other => throw new UsageException($"option --graph must be one of on, off, got '{other}'"),
        };

        return new RunRequest
        {
            Distill = distill,
            Resume = o.String("resume"),
            Arch = o.String("arch"),
            Block = o.String("block"),
            BlockType = blockType,
            Dataset = o.String("dataset"),
            Data = o.String("data"),
            Epochs = OptionalInt(o, "epochs"),
            BatchSize = OptionalInt(o, "batch-size"),
            LearningRate = OptionalDouble(o, "lr"),
            Momentum = OptionalDouble(o, "momentum"),
            WeightDecay = OptionalDouble(o, "weight-decay"),
            Schedule = schedule,
            Nesterov = o.Flag("nesterov"),
            NoAugment = o.Flag("no-augment"),
            TrainSubset = OptionalInt(o, "train-subset"),
            TestSubset = OptionalInt(o, "test-subset"),
            Seed = OptionalInt(o, "seed"),
            Deterministic = o.Flag("deterministic"),
            Device = device,
            Graph = graph,
            Precision = o.String("precision") switch
            {
                null => null,
                var p when p is "fp32" or "tf32" => p,
                var other => throw new UsageException($"option --precision must be one of fp32, tf32, got '{other}'"),
            },
            Out = o.String("out"),
            Teacher = distill ? o.String("teacher") : null,
            Alpha = distill ? OptionalDouble(o, "alpha") : null,
            Temperature = distill ? OptionalDouble(o, "temperature") : null,
            Beta = distill ? OptionalDouble(o, "beta") : null,
        };
    }

    private static RunPlan Plan(RunRequest request)
    {
        try
        {
            return RunPlan.Create(request);
        }
        catch (ArgumentException e)
        {
            // The plan's refusals: options that do not fit together, the data or the run directory.
            throw new UsageException(OneLine(e.Message));
        }
    }

    private static int Train(RunPlan plan, int? threads, TextWriter output, CancellationToken cancellation)
    {
        using var device = ComputeDevice.Open(DeviceRequest.Parse(plan.Config.Device), plan.Config.ConvPrecision);
        IBackend backend;
        string deviceName;
        try
        {
            // --threads bounds the C# backend (results do not depend on it, so it is not part of the run's configuration).
            (backend, deviceName) = CpuThreads.Apply(device, threads);
        }
        catch (ArgumentException e)
        {
            throw new UsageException(e.Message);
        }

        using var interrupt = CancellationTokenSource.CreateLinkedTokenSource(cancellation);
        ConsoleCancelEventHandler onCancel = (_, e) =>
        {
            // The first Ctrl+C stops after the current batch (the last epoch stays checkpointed); a second one kills.
            if (!interrupt.IsCancellationRequested)
            {
                e.Cancel = true;
                interrupt.Cancel();
            }
        };
        Console.CancelKeyPress += onCancel;
        var started = false;
        try
        {
            var outcome = ProgressRenderer.Run(output, observer => Trainer.Run(new TrainingRunOptions
            {
                Config = plan.Config,
                RunDirectory = plan.RunDirectory,
                Backend = backend,
                Device = deviceName,
                Train = plan.Train,
                Test = plan.Test,
                Resume = plan.Resume,
                Observer = new StartWatch(observer, () => started = true),
                // loss.png and accuracy.png, redrawn from metrics.jsonl after every epoch.
                AfterEpoch = directory => TrainingCharts.Write(directory),
            }, interrupt.Token));
            ProgressRenderer.WriteSummary(output, outcome.Summary, plan.RunDirectory, outcome.Completed);
            if (!outcome.Completed)
            {
                output.WriteLine($"interrupted: epoch {outcome.Summary.Epochs} is the last one checkpointed; continue with: cheapconv {(plan.Config.Distillation is null ? "train" : "distill")} --resume {plan.RunDirectory}");
                return InterruptedExitCode;
            }

            return 0;
        }
        catch (ArgumentException e) when (!started)
        {
            // The trainer's own checks of options and data, before anything was trained.
            throw new UsageException(OneLine(e.Message));
        }
        finally
        {
            Console.CancelKeyPress -= onCancel;
        }
    }

    internal static int? OptionalInt(Options options, string name)
    {
        var text = options.String(name);
        return text is null ? null
            : int.TryParse(text, NumberStyles.Integer, CultureInfo.InvariantCulture, out var value) ? value
            : throw new UsageException($"option --{name} needs an integer, got '{text}'");
    }

    internal static double? OptionalDouble(Options options, string name)
    {
        var text = options.String(name);
        return text is null ? null
            : double.TryParse(text, NumberStyles.Float, CultureInfo.InvariantCulture, out var value) && double.IsFinite(value) ? value
            : throw new UsageException($"option --{name} needs a number, got '{text}'");
    }

    internal static string OneLine(string message) => message.ReplaceLineEndings(" ");

    /// <summary>Passes everything on and notes when training has started (errors before it are the user's options).</summary>
    private sealed class StartWatch(ITrainingObserver inner, Action onStart) : ITrainingObserver
    {
        public void RunStarting(TrainingStart start)
        {
            onStart();
            inner.RunStarting(start);
        }

        public void EpochStarting(int epoch, int batches, double learningRate) => inner.EpochStarting(epoch, batches, learningRate);

        public void BatchCompleted(BatchProgress progress) => inner.BatchCompleted(progress);

        public void EpochCompleted(EpochMetrics metrics, bool isBest, TimeSpan runRemaining) => inner.EpochCompleted(metrics, isBest, runRemaining);

        public void Warning(string message) => inner.Warning(message);
    }
}
