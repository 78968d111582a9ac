using CheapConv.Training;
using Xunit;

namespace CheapConv.Tests.Training;

/// <summary>The synthetic data and one uninterrupted run of the crash tests' command, made once.</summary>
public sealed class CrashRecoveryFixture : IDisposable
{
    public CrashRecoveryFixture()
    {
        Data = new SyntheticDataset();
        ReferenceDirectory = Path.Combine(Data.Directory, "uninterrupted");
        var (code, output, error) = CliProcess.Run(Command(ReferenceDirectory));
        Assert.True(code == 0, output + error);
    }

    public SyntheticDataset Data { get; }

    public string ReferenceDirectory { get; }

    /// <summary>3 epochs of 2 batches on the cpu, fixed seed.</summary>
    public string[] Command(string directory) =>
        ["train", "--arch", "wrn-10-1", "--data", Data.Directory, "--epochs", "3", "--batch-size", "50", "--train-subset", "100",
            "--seed", "3", "--device", "cpu", "--out", directory];

    public void Dispose() => Data.Dispose();
}

/// <summary>
/// SIGKILL at any moment is recoverable: the built CLI, a real child process, is stopped at a named point by the test-only
/// pause hook and killed there; <c>train --resume RUN_DIR</c> then finishes with metrics (but for timings) and checkpoint
/// tensors bit-identical to an uninterrupted run.
/// </summary>
public sealed class CrashRecoveryTests(CrashRecoveryFixture fixture) : IClassFixture<CrashRecoveryFixture>
{
    [Theory]
    [InlineData("batch:1:1")] // during epoch 1, before any checkpoint (config.json only)
    [InlineData("saved:best.safetensors#1")] // epoch 1's best written, its checkpoint not yet
    [InlineData("batch:2:1")] // mid-epoch
    [InlineData("saved:checkpoint.safetensors#1")] // right after a checkpoint, before its metrics line
    [InlineData("writing:checkpoint.safetensors#2")] // during a checkpoint write (temporary file written, not renamed)
    [InlineData("writing:best.safetensors#1")] // during the first best write, before any checkpoint
    public void KilledAt_ThenResumed_FinishesLikeAnUninterruptedRun(string point)
    {
        var directory = Path.Combine(fixture.Data.Directory, "killed-" + point.Replace(':', '-').Replace('#', '-'));
        CliProcess.RunAndKillAt(point, fixture.Command(directory));
        Assert.False(File.Exists(Path.Combine(directory, RunFiles.SummaryFile)) && RunFiles.ReadSummary(directory).Epochs == 3, "killed after the end");

        ResumeAndCompare(directory);
    }

    [Theory]
    [InlineData("1")]
    [InlineData("3")]
    public void ThreadCount_ChangesNothing_EvenWhenAResumeUsesAnother(string threads)
    {
        // The reference ran on the default thread count (one per core); this run on --threads N, killed mid-epoch and
        // resumed on --threads 2: the same metrics and tensors bit for bit.
        var directory = Path.Combine(fixture.Data.Directory, "threads-" + threads);
        CliProcess.RunAndKillAt("batch:2:1", [.. fixture.Command(directory), "--threads", threads]);
        var (code, output, error) = CliProcess.Run("train", "--resume", directory, "--data", fixture.Data.Directory, "--threads", "2");
        Assert.True(code == 0, output + error);
        Assert.Contains("C# backend, 2 threads", output);
        AssertSameRun(fixture.ReferenceDirectory, directory);
    }

    [Fact]
    public void Threads_OnAnotherDevice_IsAUsageError()
    {
        var (code, _, error) = CliProcess.Run([.. fixture.Command(Path.Combine(fixture.Data.Directory, "emu-threads"))[..^4], "--device", "emu", "--threads", "2", "--out",
            Path.Combine(fixture.Data.Directory, "emu-threads")]);
        Assert.Equal(2, code);
        Assert.Contains("--threads applies to the cpu device", error);
    }

    [Fact]
    public void TornLastMetricsLine_IsDroppedAndRestoredOnResume()
    {
        var directory = Path.Combine(fixture.Data.Directory, "torn");
        CliProcess.RunAndKillAt("batch:3:1", fixture.Command(directory));
        var metrics = Path.Combine(directory, RunFiles.MetricsFile);
        var lines = File.ReadAllLines(metrics);
        Assert.Equal(2, lines.Length);
        // A crash (power cut) during the append of epoch 2's line: half of it, no newline.
        File.WriteAllText(metrics, lines[0] + "\n" + lines[1][..(lines[1].Length / 2)]);
        Assert.Equal([1], RunFiles.ReadMetrics(directory).Select(m => m.Epoch));

        ResumeAndCompare(directory);
    }

    [Fact]
    public void TornMetricsLine_InTheMiddle_IsStillAnError()
    {
        var directory = fixture.Data.NewFolder("torn-middle");
        File.WriteAllText(Path.Combine(directory, RunFiles.MetricsFile), "{\"epoch\":1,\"lea\n{\"epoch\":2}\n");
        var error = Assert.Throws<InvalidDataException>(() => RunFiles.ReadMetrics(directory));
        Assert.Contains("metrics.jsonl:1", error.Message);
    }

    [Fact]
    public void NewRunCommand_IntoARunKilledBeforeItsFirstCheckpoint_SaysResumeWhichWorks()
    {
        var directory = Path.Combine(fixture.Data.Directory, "again");
        CliProcess.RunAndKillAt("batch:1:2", fixture.Command(directory));
        var (code, _, error) = CliProcess.Run(fixture.Command(directory));
        Assert.Equal(2, code);
        Assert.Contains($"continue it with --resume {directory}", error);
        ResumeAndCompare(directory);
    }

    [Fact]
    public void CorruptedTensorData_IsRefusedOnResumeByItsChecksum()
    {
        var directory = Path.Combine(fixture.Data.Directory, "bitflip");
        CliProcess.RunAndKillAt("batch:2:1", fixture.Command(directory));
        var checkpoint = Path.Combine(directory, RunFiles.CheckpointFile);
        var bytes = File.ReadAllBytes(checkpoint);
        bytes[^5] ^= 0x01; // one bit of the last tensor: the shapes and offsets still agree
        File.WriteAllBytes(checkpoint, bytes);
        var (code, _, error) = CliProcess.Run("train", "--resume", directory, "--data", fixture.Data.Directory);
        Assert.Equal(2, code);
        Assert.Contains("does not match its SHA-256 checksum", error);
        Assert.Single(error.TrimEnd().Split('\n'));
    }

    /// <summary>train --resume DIR, which must finish like the uninterrupted run.</summary>
    private void ResumeAndCompare(string directory)
    {
        var (code, output, error) = CliProcess.Run("train", "--resume", directory, "--data", fixture.Data.Directory);
        Assert.True(code == 0, output + error);
        AssertSameRun(fixture.ReferenceDirectory, directory);
    }

    private static void AssertSameRun(string expectedDirectory, string actualDirectory)
    {
        static EpochMetrics WithoutTimes(EpochMetrics m) => m with { ImagesPerSecond = 0, Seconds = 0 };
        Assert.Equal(RunFiles.ReadMetrics(expectedDirectory).Select(WithoutTimes), RunFiles.ReadMetrics(actualDirectory).Select(WithoutTimes));
        foreach (var file in new[] { RunFiles.CheckpointFile, RunFiles.BestCheckpointFile })
        {
            var expected = SafetensorsFile.Read(Path.Combine(expectedDirectory, file));
            var actual = SafetensorsFile.Read(Path.Combine(actualDirectory, file));
            Assert.Equal(expected.Tensors.Keys.Order(), actual.Tensors.Keys.Order());
            foreach (var (name, (shape, data)) in expected.Tensors)
            {
                Assert.Equal(shape, actual.Tensors[name].Shape);
                // Bit for bit (a NaN-safe, -0-safe comparison).
                Assert.True(data.Select(BitConverter.SingleToInt32Bits).SequenceEqual(actual.Tensors[name].Data.Select(BitConverter.SingleToInt32Bits)), $"{file}: {name} differs");
            }

            foreach (var key in new[] { "epoch", "best_accuracy", "best_epoch", SafetensorsFile.ChecksumKey })
            {
                Assert.Equal(expected.Metadata[key], actual.Metadata[key]);
            }
        }

        Assert.Empty(Directory.GetFiles(actualDirectory, "*.tmp"));
    }
}
