using System.Text.Json;
using System.Text.Json.Nodes;
using CheapConv.Problems;
using CheapConv.Profiling;

namespace CheapConv.Cli.Commands;

/// <summary>The JSON forms of <c>profile</c>'s reports: snake_case keys, integers where the quantity is a count.</summary>
internal static class ProfileJson
{
    private static readonly JsonSerializerOptions Compact = new() { WriteIndented = false };

    /// <summary><c>profile --resources --json</c>: one object per kernel × architecture × build.</summary>
    public static string Resources(StaticReport report)
    {
        ArgumentNullException.ThrowIfNull(report);
        var rows = new JsonArray();
        foreach (var r in report.Rows)
        {
            rows.Add(new JsonObject
            {
                ["kernel"] = r.Kernel,
                ["module"] = r.Module,
                ["arch"] = r.Arch,
                ["build"] = r.Build,
                ["registers"] = r.Registers,
                ["spill_bytes"] = r.SpillBytes,
                ["spill_store_bytes"] = r.SpillStoreBytes,
                ["spill_load_bytes"] = r.SpillLoadBytes,
                ["stack_bytes"] = r.StackBytes,
                ["local_bytes"] = r.LocalBytes,
                ["shared_bytes"] = r.SharedBytes,
                ["cubin_shared_bytes"] = r.CubinSharedBytes,
                ["constant_bytes"] = r.ConstantBytes,
                ["threads_per_block"] = r.Launch.ThreadsPerBlock,
                ["dynamic_shared_bytes"] = r.Launch.DynamicSharedBytes,
                ["launch_source"] = r.Launch.Source,
                ["blocks_per_sm"] = r.Occupancy.BlocksPerSm,
                ["warps_per_sm"] = r.Occupancy.WarpsPerSm,
                ["occupancy"] = r.Occupancy.Fraction,
                ["occupancy_limiter"] = r.Occupancy.Limiter,
                ["occupancy_gpu"] = r.OccupancyGpu,
                ["sass"] = Sass(r.Sass),
            });
        }

        return rows.ToJsonString(Compact);
    }

    /// <summary><c>profile --catalogue --json</c>: one object per problem × pass (with only "unsupported" and the reason for a
    /// pass the forced kernels do not implement).</summary>
    public static string Catalogue(IReadOnlyList<PassProfile> passes, IReadOnlyList<UnsupportedPass> unsupported)
    {
        ArgumentNullException.ThrowIfNull(passes);
        ArgumentNullException.ThrowIfNull(unsupported);
        var rows = new JsonArray();
        foreach (var skipped in unsupported)
        {
            var row = ProblemAndPass(skipped.Problem, skipped.Pass);
            row["unsupported"] = skipped.Reason;
            rows.Add(row);
        }

        foreach (var pass in passes)
        {
            var row = ProblemAndPass(pass.Problem, pass.Pass);
            row["kernels"] = new JsonArray([.. pass.Kernels.Select(k => (JsonNode)k)]);
            row["modelled_us"] = pass.ModelledUs;
            row["roofline_us"] = pass.RooflineUs;
            row["roofline_fraction"] = pass.RooflineFraction;
            row["bound"] = pass.Bound;
            row["sectors_per_request"] = pass.SectorsPerRequest;
            row["bank_conflicts"] = (long)Math.Round(pass.BankConflicts);
            row["main_load"] = pass.Main.Launch.MainLoad is { } load
                ? new JsonObject { ["where"] = load.Where, ["sectors_per_request"] = load.SectorsPerRequest }
                : null;
            row["launches"] = new JsonArray([.. pass.Launches.Select(Launch)]);
            rows.Add(row);
        }

        return rows.ToJsonString(Compact);
    }

    // The fields that name a catalogue row: the problem and the pass.
    private static JsonObject ProblemAndPass(ConvProblem p, string pass) => new()
    {
        ["n"] = p.N,
        ["c"] = p.C,
        ["h"] = p.H,
        ["w"] = p.W,
        ["k"] = p.K,
        ["r"] = p.R,
        ["s"] = p.S,
        ["stride"] = p.StrideH,
        ["pad"] = p.PadH,
        ["groups"] = p.Groups,
        ["pass"] = pass,
    };

    /// <summary><c>profile --step --json</c>: the totals and one object per kernel.</summary>
    public static string Step(StepProfile step, ProfileSettings settings)
    {
        ArgumentNullException.ThrowIfNull(step);
        ArgumentNullException.ThrowIfNull(settings);
        var kernels = new JsonArray();
        foreach (var k in step.Kernels)
        {
            kernels.Add(new JsonObject
            {
                ["kernel"] = k.Kernel,
                ["count"] = k.Count,
                ["modelled_us"] = k.ModelledUs,
                ["roofline_us"] = k.RooflineUs,
                ["roofline_fraction"] = k.RooflineFraction,
                ["bound"] = k.Bound,
            });
        }

        return new JsonObject
        {
            ["description"] = step.Description,
            ["gpu"] = settings.Gpu.Key,
            ["sample_blocks"] = settings.SampleBlocks,
            ["occupancy_source"] = settings.Occupancies.Source,
            ["launches"] = step.Launches.Count,
            ["host_syncs"] = step.HostWaits.Count,
            ["host_waits"] = new JsonArray([.. step.HostWaits.GroupBy(w => w).Select(g => (JsonNode)new JsonObject { ["op"] = g.Key, ["count"] = g.Count() })]),
            ["modelled_us"] = step.ModelledUs,
            ["roofline_us"] = step.RooflineUs,
            ["roofline_fraction"] = step.RooflineUs / step.ModelledUs,
            ["launch_cost_us"] = step.LaunchCostUs,
            ["kernels"] = kernels,
        }.ToJsonString(Compact);
    }

    private static JsonNode Launch(ModelledLaunch l) => new JsonObject
    {
        ["kernel"] = l.Launch.Kernel,
        ["grid_blocks"] = l.Launch.GridBlocks,
        ["blocks_sampled"] = l.Launch.BlocksSampled,
        ["blocks_per_sm"] = l.Work.BlocksPerSm,
        ["modelled_us"] = l.Estimate.ModelledUs,
        ["roofline_us"] = l.Estimate.RooflineUs,
        ["bound"] = l.Estimate.Bound,
        ["dram_us"] = l.Estimate.DramUs,
        ["l2_us"] = l.Estimate.L2Us,
        ["shared_us"] = l.Estimate.SharedUs,
        ["arithmetic_us"] = l.Estimate.ArithmeticUs,
        ["issue_efficiency"] = l.Estimate.IssueEfficiency,
        ["dram_bytes"] = l.Work.DramBytes,
        ["l2_sectors"] = l.Work.L2Sectors,
        ["shared_wavefronts"] = l.Work.SharedWavefronts,
        ["sectors_per_request"] = l.Launch.SectorsPerLoadRequest,
    };

    private static JsonObject Sass(SassMix s) => new()
    {
        ["total"] = s.Total,
        ["ffma"] = s.Ffma,
        ["fp_other"] = s.FpOther,
        ["hmma"] = s.Hmma,
        ["ldg"] = s.Ldg,
        ["ldg64"] = s.Ldg64,
        ["ldg128"] = s.Ldg128,
        ["stg"] = s.Stg,
        ["stg64"] = s.Stg64,
        ["stg128"] = s.Stg128,
        ["lds"] = s.Lds,
        ["sts"] = s.Sts,
        ["shfl"] = s.Shfl,
        ["branches"] = s.Branches,
        ["atomics"] = s.Atomics,
        ["barriers"] = s.Barriers,
        ["local_store_bytes"] = s.LocalStoreBytes,
        ["local_load_bytes"] = s.LocalLoadBytes,
    };
}
