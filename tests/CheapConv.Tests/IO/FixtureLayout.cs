namespace CheapConv.Tests.IO;

/// <summary>
/// What the PyTorch fixtures in tests/fixtures hold (written by tests/fixtures/make_fixtures.py), derived
/// here independently from the model specification (pre-activation WRN-10-1, 1 input channel, 16×16 images,
/// 10 classes, batch 2; units S, G(2), B(2)) so a test catches the script and the specification drifting
/// apart. The model tests compare against these files by the same names.
/// </summary>
public static class FixtureLayout
{
    /// <summary>The teacher alone: train-mode forward, CE, gradients, running statistics after.</summary>
    public const string Teacher = Verification.FixtureCheck.TeacherFile;

    /// <summary>Teacher (eval) distilled into a G(2) student with basic blocks.</summary>
    public const string GroupedStudent = Verification.FixtureCheck.GroupedStudentFile;

    /// <summary>Teacher (eval) distilled into a B(2) student with bottle blocks.</summary>
    public const string BottleneckStudent = Verification.FixtureCheck.BottleneckStudentFile;

    /// <summary>Batch size of every fixture.</summary>
    public const int Batch = 2;

    /// <summary>Number of classes.</summary>
    public const int Classes = 10;

    /// <summary>KD weight α: total = (1−α)·CE + α·KD + β·ΣAT.</summary>
    public const double Alpha = 0.9;

    /// <summary>KD temperature.</summary>
    public const double Temperature = 4;

    /// <summary>AT weight β (3β/L with L = 3 AT points).</summary>
    public const double Beta = 1e3;

    /// <summary>The recorded SGD step: learning rate.</summary>
    public const double LearningRate = 0.1;

    /// <summary>The recorded SGD step: momentum (the first step's buffer is the gradient itself).</summary>
    public const double Momentum = 0.9;

    /// <summary>The recorded SGD step: weight decay, applied to every parameter.</summary>
    public const double WeightDecay = 5e-4;

    /// <summary>The three fixture files.</summary>
    public static IReadOnlyList<string> Files { get; } = [Teacher, GroupedStudent, BottleneckStudent];

    /// <summary>The full path of a file in tests/fixtures.</summary>
    public static string PathOf(string file) => Path.Combine(TestPaths.RepositoryRoot, "tests", "fixtures", file);

    /// <summary>The unit and block of each file's model (the student's, for the distillation files).</summary>
    public static (string Unit, string Block) ModelOf(string file) => file switch
    {
        Teacher => ("S", "basic"),
        GroupedStudent => ("G2", "basic"),
        BottleneckStudent => ("B2", "bottle"),
        _ => throw new ArgumentException($"unknown fixture {file}", nameof(file)),
    };

    /// <summary>Trainable parameters of WRN-10-1 with the given unit and block, by state-dict name.</summary>
    public static IReadOnlyList<(string Name, int[] Shape)> Parameters(string unit, string block) =>
        StateDict(unit, block).Where(e => !e.IsBuffer).Select(e => (e.Name, e.Shape)).ToList();

    /// <summary>BN running statistics of WRN-10-1 with the given unit and block, by state-dict name.</summary>
    public static IReadOnlyList<(string Name, int[] Shape)> Buffers(string unit, string block) =>
        StateDict(unit, block).Where(e => e.IsBuffer).Select(e => (e.Name, e.Shape)).ToList();

    /// <summary>Every array a fixture file must hold, with its shape (all float32 but the int64 labels).</summary>
    public static IReadOnlyList<(string Name, int[] Shape)> ExpectedArrays(string file)
    {
        var arrays = new List<(string, int[])> { ("x", [Batch, 1, 16, 16]), ("labels", [Batch]) };
        var (unit, block) = ModelOf(file);
        if (file == Teacher)
        {
            arrays.AddRange(Prefixed("param.", Parameters(unit, block)));
            arrays.AddRange(Prefixed("buffer.", Buffers(unit, block)));
            arrays.AddRange(Outputs("out."));
            arrays.Add(("loss.ce", []));
            arrays.AddRange(Prefixed("grad.", Parameters(unit, block)));
            arrays.AddRange(Prefixed("buffer_after.", Buffers(unit, block)));
            return arrays;
        }

        arrays.AddRange(Prefixed("teacher.param.", Parameters("S", "basic")));
        arrays.AddRange(Prefixed("teacher.buffer.", Buffers("S", "basic")));
        arrays.AddRange(Prefixed("student.param.", Parameters(unit, block)));
        arrays.AddRange(Prefixed("student.buffer.", Buffers(unit, block)));
        arrays.AddRange(Outputs("teacher.out."));
        arrays.AddRange(Outputs("student.out."));
        arrays.AddRange(new[] { "ce", "kd", "at1", "at2", "at3", "total" }.Select(l => ($"loss.{l}", Array.Empty<int>())));
        arrays.AddRange(Prefixed("student.grad.", Parameters(unit, block)));
        arrays.AddRange(Prefixed("student.buffer_after.", Buffers(unit, block)));
        arrays.AddRange(Prefixed("student.param_after_sgd.", Parameters(unit, block)));
        return arrays;
    }

    private static IEnumerable<(string, int[])> Prefixed(string prefix, IEnumerable<(string Name, int[] Shape)> entries) =>
        entries.Select(e => (prefix + e.Name, e.Shape));

    private static IEnumerable<(string, int[])> Outputs(string prefix) =>
    [
        (prefix + "logits", [Batch, Classes]),
        (prefix + "group1", [Batch, 16, 16, 16]),
        (prefix + "group2", [Batch, 32, 8, 8]),
        (prefix + "group3", [Batch, 64, 4, 4]),
    ];

    private static List<(string Name, int[] Shape, bool IsBuffer)> StateDict(string unit, string block)
    {
        var entries = new List<(string, int[], bool)>();
        void Conv(string name, int output, int inputPerGroup, int kernel) => entries.Add((name + ".weight", [output, inputPerGroup, kernel, kernel], false));
        void Norm(string name, int channels)
        {
            entries.Add((name + ".weight", [channels], false));
            entries.Add((name + ".bias", [channels], false));
            entries.Add((name + ".running_mean", [channels], true));
            entries.Add((name + ".running_var", [channels], true));
        }

        void Unit(string name, int input, int output)
        {
            switch (unit)
            {
                case "S":
                    Conv(name, output, input, 3);
                    break;
                case "G2":
                    Conv(name + ".grouped", input, input / 2, 3);
                    Norm(name + ".bn", input);
                    Conv(name + ".pointwise", output, input, 1);
                    break;
                case "B2":
                    var mid = output / 2;
                    Conv(name + ".reduce", mid, input, 1);
                    Norm(name + ".bn1", mid);
                    Conv(name + ".conv", mid, mid, 3);
                    Norm(name + ".bn2", mid);
                    Conv(name + ".expand", output, mid, 1);
                    break;
                default:
                    throw new ArgumentException($"no fixture uses unit {unit}", nameof(unit));
            }
        }

        Conv("conv1", 16, 1, 3);
        int[] channels = [16, 16, 32, 64];
        for (var group = 1; group <= 3; group++)
        {
            // WRN-10-1: one block per group, so block 0 is also the last.
            var (input, output) = (channels[group - 1], channels[group]);
            var prefix = $"block{group}.layer.0.";
            Norm(prefix + "bn1", input);
            Unit(prefix + "conv1", input, output);
            if (block == "basic")
            {
                Norm(prefix + "bn2", output);
                Unit(prefix + "conv2", output, output);
            }

            if (input != output)
            {
                Conv(prefix + "shortcut", output, input, 1);
            }
        }

        Norm("bn1", 64);
        entries.Add(("fc.weight", [Classes, 64], false));
        entries.Add(("fc.bias", [Classes], false));
        return entries;
    }
}
