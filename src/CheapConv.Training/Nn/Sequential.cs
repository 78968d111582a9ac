using CheapConv.Autograd;

namespace CheapConv.Nn;

/// <summary>Children named "0", "1", … run in order.</summary>
public sealed class Sequential : Module
{
    /// <summary>A chain of <paramref name="layers"/>.</summary>
    public Sequential(params IEnumerable<Module> layers)
    {
        var index = 0;
        foreach (var layer in layers)
        {
            RegisterModule((index++).ToString(System.Globalization.CultureInfo.InvariantCulture), layer);
        }
    }

    /// <summary>The i-th layer.</summary>
    public Module this[int index] => Children[index].Module;

    /// <summary>Number of layers.</summary>
    public int Count => Children.Count;

    /// <inheritdoc/>
    protected override Tensor ForwardCore(Tensor x)
    {
        // By index: a foreach over the IReadOnlyList would allocate an enumerator on every forward pass.
        for (var i = 0; i < Children.Count; i++)
        {
            x = Children[i].Module.Forward(x);
        }

        return x;
    }
}
