using System.Reflection;
using System.Runtime.InteropServices;
using CheapConv.Interop;
using CheapConv.Problems;
using CheapConv.Tests.Emulator;
using Xunit;

namespace CheapConv.Tests.Interop;

/// <summary>
/// The C# twins of cheapconv.h's structs against the C compiler's layout of the header: every size, every field's
/// offset, field for field in order, and the enum values that travel as ints. The facts come from abi_layout.c,
/// which the test project compiles (as C99) against native/include on every build.
/// </summary>
public class AbiLayoutTests
{
    private static readonly Dictionary<string, Type> Twins = new()
    {
        ["cc_conv_problem"] = typeof(ConvProblem),
        ["cc_options"] = typeof(KernelOptions),
        ["cc_linear_problem"] = typeof(LinearProblem),
        ["cc_batchnorm_problem"] = typeof(BatchNormProblem),
        ["cc_elementwise_problem"] = typeof(ElementwiseProblem),
        ["cc_pool_problem"] = typeof(PoolProblem),
        ["cc_conv_epilogue"] = typeof(ConvEpilogue),
        ["cc_conv_input_bn"] = typeof(ConvInputBn),
        ["cc_tensor_ref"] = typeof(TensorRef),
        ["cc_loss_problem"] = typeof(LossProblem),
        ["cc_sgd_problem"] = typeof(SgdProblem),
    };

    private static readonly Lazy<Dictionary<string, long>> Facts = new(ReadFacts);

    public static TheoryData<string> Structs => new(Twins.Keys);

    [Theory]
    [MemberData(nameof(Structs))]
    public void Struct_HasTheHeadersSizeAndFieldOffsets(string name)
    {
        var type = Twins[name];
        Assert.True(Facts.Value.ContainsKey(name), $"abi_layout does not print {name}");
        Assert.Equal(Facts.Value[name], Marshal.SizeOf(type));
        Assert.Equal(Facts.Value[name], (int)typeof(System.Runtime.CompilerServices.Unsafe).GetMethod("SizeOf")!.MakeGenericMethod(type).Invoke(null, null)!);

        var cFields = Facts.Value.Keys.Where(key => key.StartsWith(name + ".", StringComparison.Ordinal)).ToList();
        var csFields = type.GetFields(BindingFlags.Instance | BindingFlags.Public | BindingFlags.NonPublic)
            .OrderBy(field => Marshal.OffsetOf(type, field.Name))
            .ToList();
        Assert.Equal(cFields.Count, csFields.Count);
        for (var i = 0; i < cFields.Count; i++)
        {
            var cName = cFields[i][(name.Length + 1)..];
            Assert.Equal(Normalize(cName), Normalize(csFields[i].Name));
            Assert.Equal(Facts.Value[cFields[i]], (long)Marshal.OffsetOf(type, csFields[i].Name));
        }
    }

    [Fact]
    public void Enums_HaveTheHeadersValues()
    {
        Assert.Equal((long)KernelAlgorithm.Gemm, Facts.Value["enum.CC_ALGO_GEMM"]);
        Assert.Equal((long)KernelAlgorithm.ImplicitGemm, Facts.Value["enum.CC_ALGO_IMPLICIT_GEMM"]);
        Assert.Equal((long)KernelPrecision.Fp32, Facts.Value["enum.CC_PRECISION_FP32"]);
        Assert.Equal((long)KernelAlgorithm.Tiled, Facts.Value["enum.CC_ALGO_TILED"]);
        Assert.Equal((long)ConvPass.BackwardWeight, Facts.Value["enum.CC_CONV_BACKWARD_WEIGHT"]);
        Assert.Equal((long)ConvPass.Backward, Facts.Value["enum.CC_CONV_BACKWARD"]);
        Assert.Equal((long)CheapConvBackend.Emulator, Facts.Value["enum.CC_BACKEND_EMULATOR"]);
        Assert.Equal((long)CheapConvStatus.Internal, Facts.Value["enum.CC_ERROR_INTERNAL"]);
        Assert.Equal(CheapConvNative.CurrentContext, Facts.Value["enum.CC_CURRENT_CONTEXT"]);
        Assert.Equal(CheapConvNative.AbiMajorVersion, Facts.Value["enum.CC_VERSION_MAJOR"]);
        Assert.Equal(CheapConvNative.SplitCounterBytes, Facts.Value["enum.CC_SPLIT_COUNTER_BYTES"]);
    }

    [Fact]
    public void Normalize_MatchesCNamesToCSharpFields()
    {
        // The comparison above must be able to fail: a different field name is a different name.
        Assert.Equal("infeatures", Normalize("in_features"));
        Assert.Equal("infeatures", Normalize("<InFeatures>k__BackingField"));
        Assert.NotEqual(Normalize("pad_top"), Normalize("<PadBottom>k__BackingField"));
    }

    // "in_features" and "<InFeatures>k__BackingField" (a positional record's field) are the same field; cc_options'
    // "algo" is spelled out in C#.
    private static string Normalize(string name)
    {
        var bare = name.Replace("k__BackingField", "", StringComparison.Ordinal).Trim('<', '>').Replace("_", "", StringComparison.Ordinal)
            .ToLowerInvariant();
        return bare == "algorithm" ? "algo" : bare;
    }

    private static Dictionary<string, long> ReadFacts()
    {
        var program = Path.Combine(AppContext.BaseDirectory, "abi_layout");
        var (code, output) = NativeProcess.Run(program);
        Assert.True(code == 0, output);
        return output.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)
            .Select(line => line.Split(' '))
            .ToDictionary(parts => parts[0], parts => long.Parse(parts[1], System.Globalization.CultureInfo.InvariantCulture));
    }
}
