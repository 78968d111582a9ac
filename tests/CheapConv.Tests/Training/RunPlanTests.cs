using CheapConv.Devices;
using CheapConv.Training;
using Xunit;

namespace CheapConv.Tests.Training;

/// <summary>
/// The library's decision for a train/distill request, without the CLI: a new run with the paper's recipe, a resumed
/// run with its stored options, or a refusal (an <see cref="ArgumentException"/> that says why).
/// </summary>
public sealed class RunPlanTests(TrainingFixture fixture) : IClassFixture<TrainingFixture>
{
    private RunRequest NewRun(string folder) => new()
    {
        Arch = "wrn-10-1",
        Data = fixture.Data.Directory,
        Deterministic = true,
        Device = DeviceRequest.Cpu,
        Out = Path.Combine(fixture.Data.Directory, folder),
    };

    private RunRequest Resume => new() { Resume = fixture.TeacherDirectory, Data = fixture.Data.Directory };

    [Fact]
    public void Create_NewRun_TakesThePaperRecipe()
    {
        var plan = RunPlan.Create(NewRun("fresh"));

        Assert.False(plan.Resume);
        Assert.Equal(Path.Combine(fixture.Data.Directory, "fresh"), plan.RunDirectory);
        var c = plan.Config;
        Assert.Equal((200, 128, 0.1, 0.9, 5e-4, "step", 0, "cpu", "fashion-mnist"),
            (c.Epochs, c.BatchSize, c.LearningRate, c.Momentum, c.WeightDecay, c.Schedule, c.Seed, c.Device, c.Dataset));
        Assert.Equal(("wrn-10-1", "S", 1, 12, 10), (c.Model.Arch, c.Model.Block, c.Model.InChannels, c.Model.Image, c.Model.Classes));
    }

    [Fact]
    public void Create_NewRunIntoARun_IsRefused()
    {
        var error = Assert.Throws<ArgumentException>(() => RunPlan.Create(NewRun("x") with { Out = fixture.TeacherDirectory }));
        Assert.Equal($"{fixture.TeacherDirectory} already holds a run; continue it with --resume {fixture.TeacherDirectory} or choose another --out", error.Message);
    }

    [Fact]
    public void Create_NewRunIntoAFile_IsRefused()
    {
        var file = Path.Combine(fixture.Data.NewFolder("file-out"), "run");
        File.WriteAllText(file, "");
        var error = Assert.Throws<ArgumentException>(() => RunPlan.Create(NewRun("x") with { Out = file }));
        Assert.Equal($"--out {file} is a file, not a directory", error.Message);
    }

    [Fact]
    public void Create_Resume_KeepsTheStoredOptionsAndLetsTheEpochsGrow()
    {
        var stored = TrainingConfig.Read(fixture.TeacherDirectory);
        var plan = RunPlan.Create(Resume with { Epochs = 10 });

        Assert.True(plan.Resume);
        Assert.Equal(fixture.TeacherDirectory, plan.RunDirectory);
        Assert.Equal((stored with { Epochs = 10 }).ToJson(), plan.Config.ToJson());
    }

    [Fact]
    public void Create_ResumeOnAnotherGpu_IsRefusedWithTheConflict()
    {
        var error = Assert.Throws<ArgumentException>(() => RunPlan.Create(Resume with { Device = DeviceRequest.Cuda(1) }));
        Assert.Contains("device: \"cpu\" → \"cuda:1\"", error.Message);
        Assert.StartsWith($"--resume {fixture.TeacherDirectory}: the run was started with other options", error.Message);
    }

    [Fact]
    public void Create_NewRun_CapturesTheStepByDefaultOnTheEmulatorOnly()
    {
        Assert.False(RunPlan.Create(NewRun("graph-cpu")).Config.Graph);
        Assert.True(RunPlan.Create(NewRun("graph-emu") with { Device = DeviceRequest.Emulator }).Config.Graph);
        Assert.False(RunPlan.Create(NewRun("graph-emu-off") with { Device = DeviceRequest.Emulator, Graph = false }).Config.Graph);
    }

    [Fact]
    public void Create_GraphOnTheCpu_IsRefused()
    {
        var error = Assert.Throws<ArgumentException>(() => RunPlan.Create(NewRun("graph-on-cpu") with { Graph = true }));
        Assert.StartsWith("--graph on needs a GPU device (cuda or emu)", error.Message);
    }

    [Fact]
    public void Create_Resume_KeepsTheStoredGraphOption_OrTakesAnother_WithoutAConflict()
    {
        var stored = TrainingConfig.Read(fixture.TeacherDirectory);
        Assert.Equal(stored.Graph, RunPlan.Create(Resume).Config.Graph);
        Assert.False(RunPlan.Create(Resume with { Graph = false }).Config.Graph);
        // A replayed step computes the bits of an eager one: switching the graph is not a change of what the run computes.
        var onTheEmulator = stored with { Device = "emu", Graph = true };
        Assert.Empty(TrainingConfig.ResumeConflicts(onTheEmulator, onTheEmulator with { Graph = false }));
        Assert.Empty(TrainingConfig.ResumeConflicts(onTheEmulator with { Graph = null }, onTheEmulator));
    }

    [Fact]
    public void Create_ResumeIntoAnotherOut_IsRefused()
    {
        var error = Assert.Throws<ArgumentException>(() => RunPlan.Create(Resume with { Out = fixture.Data.NewFolder("elsewhere") }));
        Assert.Equal("--out and --resume name different directories; a resumed run writes where it started", error.Message);
    }
}
