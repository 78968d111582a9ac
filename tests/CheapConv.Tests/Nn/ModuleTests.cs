using CheapConv.Autograd;
using CheapConv.Backends;
using CheapConv.Nn;
using Xunit;

namespace CheapConv.Tests.Nn;

/// <summary>Module bookkeeping: names, parameters vs buffers, modes, state-dict load/export.</summary>
public class ModuleTests
{
    private sealed class TwoLayers : Module
    {
        public TwoLayers(IBackend backend)
        {
            Conv = RegisterModule("conv", new Conv2d(backend, 2, 4, 3, new Random(1), padding: 1, groups: 2));
            Body = RegisterModule("body", new Sequential(new BatchNorm2d(backend, 4), new ReLU(), new ZeroPad2d(1)));
        }

        public Conv2d Conv { get; }

        public Sequential Body { get; }

        protected override Tensor ForwardCore(Tensor x) => Body.Forward(Conv.Forward(x));
    }

    [Fact]
    public void StateDict_PyTorchNamesAndOrder_ParametersAndBuffersApart()
    {
        var model = new TwoLayers(new CpuBackend());
        Assert.Equal(["conv.weight", "body.0.weight", "body.0.bias", "body.0.running_mean", "body.0.running_var"], model.StateDict().Select(e => e.Name));
        Assert.Equal(["conv.weight", "body.0.weight", "body.0.bias"], model.NamedParameters().Select(p => p.Name));
        Assert.Equal(["body.0.running_mean", "body.0.running_var"], model.NamedBuffers().Select(b => b.Name));
        Assert.All(model.Parameters(), p => Assert.Equal(TensorKind.Parameter, p.Kind));
        Assert.All(model.NamedBuffers(), b => Assert.False(b.Tensor.RequiresGrad));
        Assert.Equal(4 * 1 * 9 + 4 + 4, model.ParameterCount());
        Assert.Equal(model.ParameterCount() + 8, model.StateCount());
    }

    [Fact]
    public void TrainEval_SetsTheModeOfEveryDescendant()
    {
        var model = new TwoLayers(new CpuBackend());
        Assert.All(model.NamedModules(), m => Assert.True(m.Module.Training));
        model.Eval();
        Assert.All(model.NamedModules(), m => Assert.False(m.Module.Training));
        model.Train();
        Assert.All(model.NamedModules(), m => Assert.True(m.Module.Training));
    }

    [Fact]
    public void LoadStateDict_ThenExport_RoundTripsEveryValue()
    {
        IBackend backend = new CpuBackend();
        var model = new TwoLayers(backend);
        var random = new Random(3);
        var values = model.StateDict().ToDictionary(e => e.Name, e => Enumerable.Range(0, (int)e.Tensor.Length).Select(_ => random.NextSingle()).ToArray());
        model.LoadStateDict(values);
        var exported = model.ExportStateDict();
        Assert.Equal(values.Keys.Order(), exported.Keys.Order());
        Assert.All(values, entry => Assert.Equal(entry.Value, exported[entry.Key]));
    }

    [Fact]
    public void LoadStateDict_MissingAndUnexpectedNames_AreListed()
    {
        var model = new TwoLayers(new CpuBackend());
        var values = model.ExportStateDict();
        values.Remove("body.0.running_var");
        values["body.0.num_batches_tracked"] = [0f];
        var error = Assert.Throws<ArgumentException>(() => model.LoadStateDict(values));
        Assert.Contains("missing [body.0.running_var]", error.Message);
        Assert.Contains("unexpected [body.0.num_batches_tracked]", error.Message);
        model.LoadStateDict(values, strict: false); // non-strict loads what matches
    }

    [Fact]
    public void LoadStateDict_WrongLength_NamesTheEntryAndShape()
    {
        var model = new TwoLayers(new CpuBackend());
        var values = model.ExportStateDict();
        values["conv.weight"] = new float[5];
        var error = Assert.Throws<ArgumentException>(() => model.LoadStateDict(values));
        Assert.Contains("conv.weight has 5 values", error.Message);
        Assert.Contains("4x1x3x3", error.Message);
    }

    [Fact]
    public void Conv2d_GroupsNotDividingChannels_Throws() =>
        Assert.Contains("must divide both", Assert.Throws<ArgumentException>(() => new Conv2d(new CpuBackend(), 6, 4, 3, new Random(1), groups: 4)).Message);

    [Fact]
    public void LayerTrace_RecordsLeavesWithShapesParamsAndMacs()
    {
        var model = new TwoLayers(new ShapeOnlyBackend());
        using var scope = TensorScope.Begin();
        using var trace = LayerTrace.Begin(model);
        model.Forward(Tensor.Empty(model.Conv.Weight.Backend, 2, 2, 5, 7));
        Assert.Equal(["conv", "body.0", "body.1", "body.2"], trace.Layers.Select(l => l.Name));
        Assert.Equal("Conv2d 3x3 g2", trace.Layers[0].Type);
        Assert.Equal(4L * 5 * 7 * 1 * 9, trace.Layers[0].Macs); // per image: K·P·Q·(C/g)·R·S
        Assert.Equal([2, 4, 7, 9], trace.Layers[3].OutputShape);
        Assert.Equal(16, trace.Layers[1].StateEntries);
    }
}
