using System.Reflection;
using CheapConv.Autograd;
using CheapConv.Backends;
using CheapConv.Cli;
using CheapConv.Devices;
using CheapConv.Ilgpu;
using CheapConv.Training;
using NetArchTest.Rules;
using Xunit;

namespace CheapConv.Tests.Architecture;

/// <summary>
/// The layers of DESIGN.md, read from the compiled assemblies: references point down (CLI → CheapConv.Training →
/// CheapConv ← CheapConv.Interop.ILGPU); the core, what an engine embeds, has no plotting and no console UI; autograd, modules and models talk
/// to <see cref="IBackend"/>, never to a device; the CLI presents and adds no compute of its own.
/// </summary>
/// <remarks>
/// Two views of each rule: the assembly's references (the compiler records only the assemblies a build uses) and,
/// through NetArchTest, every type's dependencies (fields, signatures, method bodies) by namespace or type name —
/// which also catches a namespace moved into the wrong assembly. Type names are strings, so a rule stays valid when
/// the type it forbids is renamed or removed.
/// </remarks>
public sealed class LayerTests
{
    private static readonly Assembly Core = typeof(IBackend).Assembly;
    private static readonly Assembly TrainingAssembly = typeof(Trainer).Assembly;
    private static readonly Assembly Cli = typeof(CommandLine).Assembly;

    /// <summary>The namespaces that live in CheapConv.Training only.</summary>
    private static readonly string[] TrainingNamespaces =
        ["CheapConv.Autograd", "CheapConv.Nn", "CheapConv.Models", "CheapConv.Data", "CheapConv.Training", "CheapConv.Reporting", "CheapConv.Export"];

    [Fact]
    public void Core_DependsOnNeitherTrainingNorCliNorPlottingNorConsoleUi()
    {
        AssertNoReferences(Core, "CheapConv.Training", "CheapConv.Cli", "ScottPlot", "Spectre.Console");
        AssertNoDependencies(Types.InAssembly(Core).ShouldNot(), [.. TrainingNamespaces, "CheapConv.Cli", "ScottPlot", "Spectre.Console"]);
    }

    [Fact]
    public void IlgpuAdapter_BuildsOnTheCoreAlone_WhichKnowsNoIlgpu()
    {
        // An engine embeds the core without ILGPU; the adapter is what an ILGPU program adds, without the trainer.
        AssertNoReferences(Core, "ILGPU");
        AssertNoDependencies(Types.InAssembly(Core).ShouldNot(), ["ILGPU"]);
        var adapter = typeof(CheapConvIlgpu).Assembly;
        AssertNoReferences(adapter, "CheapConv.Training", "CheapConv.Cli");
        Assert.Contains(adapter.GetReferencedAssemblies(), reference => reference.Name == "ILGPU");
    }

    [Fact]
    public void TrainingAssembly_HasNoConsoleUiAndDoesNotDependOnTheCli()
    {
        AssertNoReferences(TrainingAssembly, "CheapConv.Cli", "Spectre.Console");
        AssertNoDependencies(Types.InAssembly(TrainingAssembly).ShouldNot(), ["CheapConv.Cli", "Spectre.Console"]);
    }

    [Fact]
    public void AutogradModulesAndModels_TalkToBackendsNeverToDevices()
    {
        var types = Types.InAssembly(TrainingAssembly).That()
            .ResideInNamespace("CheapConv.Autograd").Or().ResideInNamespace("CheapConv.Nn").Or().ResideInNamespace("CheapConv.Models");
        AssertNoDependencies(types.ShouldNot(), ["CheapConv.Devices", "CheapConv.Kernels", "CheapConv.Backends.GpuBackend", "CheapConv.Interop", "ILGPU"]);
    }

    [Fact]
    public void Cli_HoldsOnlyCommandsAndPresentation()
    {
        // Every type in CheapConv.Cli or CheapConv.Cli.Commands, but for the top-level statements' Program and the
        // compiler's own types ("<>z__ReadOnlyArray`1" for collection expressions: no C# name starts with '<').
        AssertSuccessful(Types.InAssembly(Cli).That().DoNotHaveName("Program").And().DoNotHaveNameStartingWith("<").Should().ResideInNamespace("CheapConv.Cli").GetResult(),
            "CLI types outside CheapConv.Cli");

        // Compute belongs to the library: no backend, storage, device, autograd function or module is defined here.
        foreach (var extension in new[] { typeof(IBackend), typeof(Storage), typeof(Device), typeof(Function), typeof(CheapConv.Nn.Module) })
        {
            var rule = extension.IsInterface
                ? Types.InAssembly(Cli).ShouldNot().ImplementInterface(extension)
                : Types.InAssembly(Cli).ShouldNot().Inherit(extension);
            AssertSuccessful(rule.GetResult(), $"CLI types that are a {extension.Name}");
        }

        // Commands name a device; the library's ComputeDevice opens it and builds its backend.
        AssertNoDependencies(Types.InAssembly(Cli).ShouldNot(), ["CheapConv.Backends.CpuBackend", "CheapConv.Backends.GpuBackend", "CheapConv.Devices.CudaDriver"]);
    }

    private static void AssertNoReferences(Assembly assembly, params string[] forbidden)
    {
        var found = assembly.GetReferencedAssemblies().Select(r => r.Name).Where(name => forbidden.Contains(name)).ToList();
        Assert.True(found.Count == 0, $"{assembly.GetName().Name} references {string.Join(", ", found)}");
    }

    private static void AssertNoDependencies(Conditions shouldNot, string[] forbidden) =>
        AssertSuccessful(shouldNot.HaveDependencyOnAny(forbidden).GetResult(), $"types that depend on {string.Join(" or ", forbidden)}");

    private static void AssertSuccessful(TestResult result, string what) =>
        Assert.True(result.IsSuccessful, $"{what}: {string.Join(", ", result.FailingTypeNames ?? [])}");
}
