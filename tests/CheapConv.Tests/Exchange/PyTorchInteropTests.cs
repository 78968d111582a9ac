using System.Diagnostics;
using System.Globalization;
using System.Text.Json;
using System.Text.RegularExpressions;
using CheapConv.Autograd;
using CheapConv.Backends;
using CheapConv.Data;
using CheapConv.IO;
using CheapConv.Models;
using CheapConv.Tests.Autograd;
using CheapConv.Tests.Bindings;
using CheapConv.Tests.Cli;
using CheapConv.Tests.Emulator;
using CheapConv.Tests.Training;
using CheapConv.Training;
using Xunit;
using Xunit.Abstractions;

namespace CheapConv.Tests.Exchange;

/// <summary>
/// Checkpoints between CheapConv and PyTorch, both ways, through tests/interop/torch_interop.py on the PyTorch definition
/// of the networks (tests/interop/moonshine_torch.py, also the fixtures' model), run by Debian's /usr/bin/python3:
/// our checkpoint.safetensors (weights, BN statistics and momentum) loaded into PyTorch gives our logits; a PyTorch state
/// dict written as safetensors gives PyTorch's logits in CheapConv, and its accuracy through <c>cheapconv eval</c>. Every
/// unit kind, basic and bottle blocks, 28×28 images (so the padding is on both sides); the tolerance is
/// <see cref="InteropModels.Tolerance"/>. Skipped, with the reason, without python3 + torch, unless
/// CHEAPCONV_REQUIRE_TORCH=1 (CI), where that is a failure.
/// </summary>
public sealed partial class PyTorchInteropTests(ITestOutputHelper output) : IDisposable
{
    private static readonly string Script = Path.Combine(TestPaths.RepositoryRoot, "tests", "interop", "torch_interop.py");

    /// <summary>Architecture, block (a spelling both sides read) and block type: the teacher and every unit kind.</summary>
    private static readonly (string Arch, string Block, string BlockType)[] Models =
    [
        ("wrn-16-2", "S", "basic"),
        ("wrn-10-1", "G4", "basic"),
        ("wrn-10-1", "GN4", "bottle"),
        ("wrn-10-1", "DW", "basic"),
        ("wrn-10-1", "B2", "bottle"),
        ("wrn-10-1", "BG2-4", "basic"),
        ("wrn-10-1", "BGDW2", "bottle"),
    ];

    private readonly string _directory = Directory.CreateTempSubdirectory("cheapconv-torch-").FullName;

    public void Dispose() => Directory.Delete(_directory, recursive: true);

    private static WrnConfig Config((string Arch, string Block, string BlockType) model)
    {
        var (depth, width) = WrnConfig.ParseArch(model.Arch);
        return new WrnConfig(depth, width, UnitSpec.Parse(model.Block), model.BlockType == "bottle" ? BlockType.Bottle : BlockType.Basic, 1, 10, 28);
    }

    private static void RequireTorch()
    {
        var missing = PythonBindingTests.MissingPrerequisite();
        if (missing is not null)
        {
            Assert.False(PythonBindingTests.RequireTorch, $"CHEAPCONV_REQUIRE_TORCH=1 but {missing}");
            Skip.If(true, missing);
        }
    }

    /// <summary>One job of torch_interop.py (its options by name); the files live in this test's folder.</summary>
    private Dictionary<string, object> Job(string direction, int index, (string Arch, string Block, string BlockType) model, float[] images, int count)
    {
        var prefix = Path.Combine(_directory, $"{direction}-{index}");
        NpyWriter.Write(prefix + ".images.npy", images, [count, 1, 28, 28]);
        return new()
        {
            ["direction"] = direction, ["arch"] = model.Arch, ["block"] = model.Block, ["block_type"] = model.BlockType,
            ["in_channels"] = 1, ["classes"] = 10, ["image"] = 28, ["seed"] = index,
            ["state"] = prefix + ".safetensors", ["images"] = prefix + ".images.npy", ["logits"] = prefix + ".logits.npy",
        };
    }

    /// <summary>Runs the jobs in one python3 process (torch loads once).</summary>
    private void RunPython(IReadOnlyList<Dictionary<string, object>> jobs)
    {
        var file = Path.Combine(_directory, $"cases-{Guid.NewGuid():N}.json");
        File.WriteAllText(file, JsonSerializer.Serialize(jobs));
        var start = new ProcessStartInfo(PythonBindingTests.Python) { WorkingDirectory = TestPaths.RepositoryRoot };
        foreach (var argument in new[] { Script, "cases", file })
        {
            start.ArgumentList.Add(argument);
        }

        start.Environment["PYTHONDONTWRITEBYTECODE"] = "1";
        var (code, text) = NativeProcess.Run(start, TimeSpan.FromMinutes(5));
        output.WriteLine(text);
        Assert.True(code == 0, $"torch_interop.py exited {code}:\n{text}");
    }

    private static float[] ReadLogits(Dictionary<string, object> job) => NpzReader.ReadFloat32Npy((string)job["logits"]).Data;

    [SkippableFact]
    public void OurCheckpoint_InPyTorch_GivesOurLogits()
    {
        RequireTorch();
        var jobs = new List<Dictionary<string, object>>();
        var expected = new List<(WideResNet Model, float[] Logits)>();
        for (var i = 0; i < Models.Length; i++)
        {
            var config = Config(Models[i]);
            var images = InteropModels.Images(config, 3, seed: 20 + i);
            var model = InteropModels.Create(config, seed: 10 + i, images, 3);
            var job = Job("to-torch", i, Models[i], images, 3);
            // A training checkpoint, as the run directory's checkpoint.safetensors: momentum buffers beside the weights.
            using var sgd = new Sgd(model.Parameters(), 0.1f, 0.9f);
            foreach (var parameter in model.Parameters())
            {
                sgd.ImportMomentum(parameter, TensorAssert.Random(parameter.Length, i));
            }

            var run = TrainingTests.Config(Models[i].Block, 1) with { Model = ModelConfig.From(config), Normalization = new([0.286f], [0.353f]) };
            Checkpoint.Save((string)job["state"], run, new TrainingState(1, 0.5, 1, null), model, sgd);
            jobs.Add(job);
            expected.Add((model, InteropModels.Logits(model, images, 3)));
        }

        RunPython(jobs);
        for (var i = 0; i < jobs.Count; i++)
        {
            var (model, logits) = expected[i];
            var error = InteropModels.RelativeError(logits, ReadLogits(jobs[i]));
            output.WriteLine($"{model.Config.Name}: PyTorch's logits differ by {error:0.00e+00} of the largest (tolerance {InteropModels.Tolerance(model):0.00e+00})");
            Assert.True(error <= InteropModels.Tolerance(model), $"{model.Config.Name}: PyTorch's logits differ by {error:0.00e+00} of the largest");
        }
    }

    [SkippableFact]
    public void PyTorchStateDict_InCheapConv_GivesPyTorchsLogits()
    {
        RequireTorch();
        var jobs = Models.Select((m, i) => Job("from-torch", i, m, InteropModels.Images(Config(m), 3, seed: 40 + i), 3)).ToList();
        RunPython(jobs);
        for (var i = 0; i < jobs.Count; i++)
        {
            var model = new WideResNet(Config(Models[i]), new CpuBackend());
            StateDictFile.LoadInto((string)jobs[i]["state"], model);
            model.Eval();
            var images = NpzReader.ReadFloat32Npy((string)jobs[i]["images"]).Data;
            var error = InteropModels.RelativeError(ReadLogits(jobs[i]), InteropModels.Logits(model, images, 3));
            output.WriteLine($"{model.Config.Name}: our logits differ from PyTorch's by {error:0.00e+00} of the largest (tolerance {InteropModels.Tolerance(model):0.00e+00})");
            Assert.True(error <= InteropModels.Tolerance(model), $"{model.Config.Name}: our logits differ from PyTorch's by {error:0.00e+00} of the largest");
        }
    }

    [SkippableFact]
    public void PyTorchStateDict_EvalCommand_GivesPyTorchsAccuracy()
    {
        RequireTorch();
        using var data = new SyntheticDataset(trainCount: 64, testCount: 40, side: 28);
        var (train, test) = DatasetLoader.Load(DatasetKind.FashionMnist, data.Directory);
        // The test images exactly as eval feeds them: normalised with what a new run on the dataset would use.
        var stored = Trainer.DefaultNormalization("fashion-mnist", train);
        using var loader = new BatchLoader(test, test.Count, new Normalization([.. stored.Mean], [.. stored.Std]), shuffle: false, AugmentOptions.None, seed: 0, epoch: 0);
        var batch = Assert.Single(loader);
        var model = ("wrn-10-1", "G4", "basic");
        var job = Job("from-torch", 99, model, batch.Images[..(test.Count * 28 * 28)], test.Count);
        RunPython([job]);

        var (code, text, error) = CliRun.Run("eval", "--ckpt", (string)job["state"], "--arch", "wrn-10-1", "--block", "G4", "--data", data.Directory, "--device", "cpu");
        Assert.True(code == 0, error);
        var ours = int.Parse(Correct().Match(text).Groups[1].Value, CultureInfo.InvariantCulture);

        // PyTorch's count; an image whose two largest logits are closer than the comparison's tolerance may go either way.
        var logits = ReadLogits(job);
        var tolerance = InteropModels.Tolerance(new WideResNet(Config(model), new ShapeOnlyBackend())) * logits.Max(v => Math.Abs(v));
        int theirs = 0, undecided = 0;
        for (var n = 0; n < test.Count; n++)
        {
            var row = logits.AsSpan(n * 10, 10).ToArray();
            var top = Array.IndexOf(row, row.Max());
            theirs += top == test.Labels.Span[n] ? 1 : 0;
            undecided += row.Where((v, k) => k != top && row[top] - v <= 2 * tolerance).Any() ? 1 : 0;
        }

        output.WriteLine($"{text}PyTorch: {theirs}/{test.Count} correct, {undecided} within the tolerance of a tie");
        Assert.InRange(ours, theirs - undecided, theirs + undecided);
    }

    [GeneratedRegex(@"accuracy [\d.]+% \((\d+)/\d+\)")]
    private static partial Regex Correct();
}
