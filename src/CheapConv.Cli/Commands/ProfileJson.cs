using System.Text.Json;
using System.Text.Json.Nodes;
using CheapConv.Profiling;

namespace CheapConv.Cli.Commands;

/// <summary>The JSON forms of <c>profile</c>'s reports: snake_case keys, integers where the quantity is a count.</summary>
public static class ProfileJson
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
