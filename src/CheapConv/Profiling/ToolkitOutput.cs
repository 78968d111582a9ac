using System.Globalization;
using System.Text.RegularExpressions;

namespace CheapConv.Profiling;

/// <summary>One kernel as <c>ptxas -v</c> reports it.</summary>
/// <param name="SharedBytes">Static shared memory ("N bytes smem").</param>
/// <param name="LocalBytes">Local memory outside the stack ("N bytes lmem"; 0 when not printed).</param>
/// <param name="StackFrameBytes">Per-thread stack frame: local arrays and spill slots.</param>
internal sealed record PtxasKernel(string Kernel, string Arch, int Registers, int SharedBytes, int LocalBytes, int StackFrameBytes,
    int SpillStoreBytes, int SpillLoadBytes);

/// <summary>One kernel of one architecture as <c>cuobjdump -res-usage</c> reports it.</summary>
/// <param name="SharedBytes">The cubin's shared section (on sm_90 it includes a 1 KB reserved window when the kernel uses shared memory).</param>
internal sealed record CubinResources(string Kernel, string Arch, int Registers, int StackBytes, int SharedBytes, int LocalBytes, int ConstantBytes);

/// <summary>
/// The instruction mix of one kernel's SASS: static counts (instructions in the code, not executed ones) of the
/// opcodes that tell a kernel's character. Loads and stores are split by width: a 32-bit access per thread
/// (<c>LDG.E</c>), 64-bit (<c>.64</c>) and 128-bit (<c>.128</c>, what float4 loads become).
/// </summary>
/// <param name="Total">Every instruction but NOP.</param>
/// <param name="Ffma">FFMA (fp32 fused multiply-add).</param>
/// <param name="FpOther">FADD, FMUL, FMNMX and FSETP: the other fp32 arithmetic.</param>
/// <param name="Hmma">HMMA (tensor-core MMA).</param>
/// <param name="Ldg">Global loads of at most 32 bits per thread.</param>
/// <param name="Ldg64">64-bit global loads.</param>
/// <param name="Ldg128">128-bit global loads.</param>
/// <param name="Stg">Global stores of at most 32 bits per thread.</param>
/// <param name="Lds">Shared loads (LDS, LDSM).</param>
/// <param name="Sts">Shared stores.</param>
/// <param name="Shfl">Warp shuffles.</param>
/// <param name="Branches">BRA, BRX, JMP, JMX, CALL, RET.</param>
/// <param name="Atomics">ATOM, ATOMG, ATOMS, RED.</param>
/// <param name="Barriers">BAR (__syncthreads).</param>
/// <param name="LocalStoreBytes">Bytes per thread the STL instructions store (4, 8 or 16 each): local memory, spills or local arrays.</param>
/// <param name="LocalLoadBytes">Bytes per thread the LDL instructions load.</param>
internal sealed record SassMix(int Total, int Ffma, int FpOther, int Hmma, int Ldg, int Ldg64, int Ldg128, int Stg, int Stg64, int Stg128,
    int Lds, int Sts, int Shfl, int Branches, int Atomics, int Barriers, int LocalStoreBytes, int LocalLoadBytes)
{
    /// <summary>The mix of a list of opcodes with their modifiers ("LDG.E.128.CONSTANT", "FFMA", ...).</summary>
    public static SassMix Of(IEnumerable<string> opcodes)
    {
        int total = 0, ffma = 0, fp = 0, hmma = 0, ldg = 0, ldg64 = 0, ldg128 = 0, stg = 0, stg64 = 0, stg128 = 0;
        int lds = 0, sts = 0, shfl = 0, branches = 0, atomics = 0, barriers = 0, localStores = 0, localLoads = 0;
        foreach (var opcode in opcodes)
        {
            var parts = opcode.Split('.');
            var width = parts.Contains("128") ? 128 : parts.Contains("64") ? 64 : 32;
            switch (parts[0])
            {
                case "NOP":
                    continue;
                case "FFMA": ffma++; break;
                case "FADD" or "FMUL" or "FMNMX" or "FSETP": fp++; break;
                case "HMMA": hmma++; break;
                case "LDG": _ = width == 128 ? ldg128++ : width == 64 ? ldg64++ : ldg++; break;
                case "STG": _ = width == 128 ? stg128++ : width == 64 ? stg64++ : stg++; break;
                case "LDS" or "LDSM": lds++; break;
                case "STS": sts++; break;
                case "SHFL": shfl++; break;
                case "BRA" or "BRX" or "JMP" or "JMX" or "CALL" or "RET": branches++; break;
                case "ATOM" or "ATOMG" or "ATOMS" or "RED": atomics++; break;
                case "BAR": barriers++; break;
                case "STL": localStores += width / 8; break;
                case "LDL": localLoads += width / 8; break;
            }

            total++;
        }

        return new SassMix(total, ffma, fp, hmma, ldg, ldg64, ldg128, stg, stg64, stg128, lds, sts, shfl, branches, atomics, barriers, localStores, localLoads);
    }
}

/// <summary>Readers of what ptxas and cuobjdump print.</summary>
internal static partial class ToolkitOutput
{
    /// <summary>The entry functions of a <c>ptxas -v</c> report.</summary>
    public static IReadOnlyList<PtxasKernel> ParsePtxas(string text)
    {
        var kernels = new List<PtxasKernel>();
        string? kernel = null, arch = null;
        int stack = 0, spillStores = 0, spillLoads = 0;
        foreach (var line in Lines(text))
        {
            if (EntryPattern().Match(line) is { Success: true } entry)
            {
                (kernel, arch, stack, spillStores, spillLoads) = (entry.Groups[1].Value, entry.Groups[2].Value, 0, 0, 0);
            }
            else if (kernel is not null && FramePattern().Match(line) is { Success: true } frame)
            {
                (stack, spillStores, spillLoads) = (Int(frame.Groups[1]), Int(frame.Groups[2]), Int(frame.Groups[3]));
            }
            else if (kernel is not null && UsedPattern().Match(line) is { Success: true } used)
            {
                kernels.Add(new PtxasKernel(kernel, arch!, Int(used.Groups[1]), Amount(line, "smem"), Amount(line, "lmem"), stack, spillStores, spillLoads));
                kernel = null;
            }
        }

        return kernels;
    }

    /// <summary>Every function of every architecture in a <c>cuobjdump -res-usage</c> listing (ELF sections only). A cubin's
    /// listing names no architecture: <paramref name="arch"/> is then the one it was assembled for.</summary>
    public static IReadOnlyList<CubinResources> ParseResourceUsage(string text, string? arch = null)
    {
        var result = new List<CubinResources>();
        string? kernel = null;
        foreach (var line in Lines(text))
        {
            if (ArchPattern().Match(line) is { Success: true } a)
            {
                arch = a.Groups[1].Value;
            }
            else if (FunctionPattern().Match(line) is { Success: true } f)
            {
                kernel = f.Groups[1].Value;
            }
            else if (kernel is not null && arch is not null && line.TrimStart().StartsWith("REG:", StringComparison.Ordinal))
            {
                result.Add(new CubinResources(kernel, arch, Field(line, "REG"), Field(line, "STACK"), Field(line, "SHARED"), Field(line, "LOCAL"), Field(line, @"CONSTANT\[0\]")));
                kernel = null;
            }
        }

        return result;
    }

    /// <summary>The opcodes (with modifiers, without predicate and operands) of every function of every architecture in a <c>cuobjdump -sass</c> listing.</summary>
    public static IReadOnlyDictionary<(string Kernel, string Arch), IReadOnlyList<string>> ParseSass(string text)
    {
        var result = new Dictionary<(string, string), IReadOnlyList<string>>();
        string? arch = null;
        List<string>? current = null;
        foreach (var line in Lines(text))
        {
            if (CodeForPattern().Match(line) is { Success: true } code)
            {
                arch = code.Groups[1].Value;
                current = null;
            }
            else if (arch is not null && SassFunctionPattern().Match(line) is { Success: true } f)
            {
                current = [];
                result[(f.Groups[1].Value, arch)] = current;
            }
            else if (current is not null && InstructionPattern().Match(line) is { Success: true } instruction)
            {
                current.Add(instruction.Groups[1].Value);
            }
        }

        return result;
    }

    private static IEnumerable<string> Lines(string text) => text.Split('\n').Select(l => l.TrimEnd('\r'));

    private static int Int(Group group) => int.Parse(group.Value, NumberStyles.None, CultureInfo.InvariantCulture);

    // "N bytes smem" / "N bytes lmem" in a ptxas "Used ..." line; 0 when absent.
    private static int Amount(string line, string unit) =>
        Regex.Match(line, @"(\d+) bytes " + unit) is { Success: true } m ? Int(m.Groups[1]) : 0;

    // "REG:32" in a cuobjdump -res-usage line.
    private static int Field(string line, string name) =>
        Regex.Match(line, @"\b" + name + @":(\d+)") is { Success: true } m ? Int(m.Groups[1])
        : throw new FormatException($"cuobjdump -res-usage line without {name}: {line.Trim()}");

    [GeneratedRegex(@"Compiling entry function '([^']+)' for '(sm_\d+)'")]
    private static partial Regex EntryPattern();

    [GeneratedRegex(@"(\d+) bytes stack frame, (\d+) bytes spill stores, (\d+) bytes spill loads")]
    private static partial Regex FramePattern();

    [GeneratedRegex(@"ptxas info\s*: Used (\d+) registers")]
    private static partial Regex UsedPattern();

    [GeneratedRegex(@"^arch = (sm_\d+)")]
    private static partial Regex ArchPattern();

    [GeneratedRegex(@"^\s*Function (\S+):\s*$")]
    private static partial Regex FunctionPattern();

    [GeneratedRegex(@"^\s*code for (sm_\d+)")]
    private static partial Regex CodeForPattern();

    [GeneratedRegex(@"^\s*Function : (\S+)")]
    private static partial Regex SassFunctionPattern();

    // "        /*0460*/                   @!P0 LDL.64 R7, [R7] ;   /* 0x... */"
    [GeneratedRegex(@"^\s*/\*[0-9a-f]{4,}\*/\s+(?:@!?U?P\w+\s+)?([A-Z][A-Z0-9_.]*)")]
    private static partial Regex InstructionPattern();
}
