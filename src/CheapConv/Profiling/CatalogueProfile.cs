using CheapConv.Backends;
using CheapConv.Problems;

namespace CheapConv.Profiling;

/// <summary>
/// Every problem × pass of a shape catalogue run on the profiling emulator and modelled: the <c>profile --catalogue</c>
/// report. Each pass is one op of the backend (<see cref="IBackend.Conv2dForward"/> and its two backward passes: the
/// backend picks the direct or GEMM kernels as it does in training) profiled on its own.
/// </summary>
internal static class CatalogueProfile
{
    /// <summary>The three passes, as the report names them.</summary>
    public static IReadOnlyList<string> Passes { get; } = ["forward", "backward_data", "backward_weight"];

    /// <summary>
    /// Profiles every pass of every problem; <paramref name="progress"/> sees each pass as it is done. A pass the run's
    /// kernels do not implement (a forced <see cref="Interop.KernelAlgorithm"/>) goes into <paramref name="unsupported"/>
    /// with the library's reason when one is given, and throws otherwise.
    /// </summary>
    public static IReadOnlyList<PassProfile> Run(ProfiledRun run, IEnumerable<ConvProblem> problems, Action<PassProfile>? progress = null,
        ICollection<UnsupportedPass>? unsupported = null)
    {
        ArgumentNullException.ThrowIfNull(run);
        ArgumentNullException.ThrowIfNull(problems);
        var results = new List<PassProfile>();
        var backend = run.Backend;
        foreach (var problem in problems)
        {
            // The values do not change the traffic; a constant keeps the emulator's arithmetic on ordinary floats.
            using var x = Constant(backend, problem.InputElements);
            using var w = Constant(backend, problem.WeightElements);
            using var dy = Constant(backend, problem.OutputElements);
            using var y = backend.Allocate(problem.OutputElements);
            using var dx = backend.Allocate(problem.InputElements);
            using var dw = backend.Allocate(problem.WeightElements);
            Action[] passes =
            [
                () => backend.Conv2dForward(problem, x, w, y),
                () => backend.Conv2dBackwardData(problem, dy, w, dx),
                () => backend.Conv2dBackwardWeight(problem, x, dy, dw),
            ];
            for (var pass = 0; pass < passes.Length; pass++)
            {
                IReadOnlyList<ModelledLaunch> launches;
                try
                {
                    (launches, _) = run.Profile(passes[pass]);
                }
                catch (Interop.CheapConvException e) when (e.Status == Interop.CheapConvStatus.NotSupported && unsupported is not null)
                {
                    unsupported.Add(new UnsupportedPass(problem, Passes[pass], e.Detail.Length > 0 ? e.Detail : e.Message));
                    continue;
                }

                var tensorCores = launches.Any(l => l.Work.TensorCores);
                var result = new PassProfile(problem, Passes[pass], launches,
                    ProfileModel.PassRooflineUs(run.Settings.Gpu, problem, Passes[pass], tensorCores));
                results.Add(result);
                progress?.Invoke(result);
            }
        }

        return results;
    }

    private static Storage Constant(IBackend backend, long length)
    {
        var values = new float[length];
        Array.Fill(values, 0.5f);
        return backend.Upload(values);
    }
}

/// <summary>A pass of a catalogue that the profiled kernels do not implement, with the library's reason.</summary>
internal sealed record UnsupportedPass(ConvProblem Problem, string Pass, string Reason);
