using CheapConv.Models;

namespace CheapConv.Training;

/// <summary>
/// A model's weights and BN statistics in a safetensors file, by state-dict name (<c>conv1.weight</c>,
/// <c>block1.layer.0.bn1.running_mean</c>, …): what a <see cref="Checkpoint"/> holds, and what PyTorch's
/// <c>model.state_dict()</c> written as safetensors holds (without CheapConv's metadata, so the architecture is given
/// by the caller). Every entry of the model must be there with its shape.
/// </summary>
internal static class StateDictFile
{
    /// <summary>
    /// Reads <paramref name="path"/> as a state dict alone (any metadata ignored; an optimiser's momentum buffers, which a
    /// training checkpoint also holds, skipped) and loads it into <paramref name="model"/>; a tensor the model does not
    /// have is refused too, since it means the file is of another architecture. Problems are <see cref="CheckpointException"/>s.
    /// </summary>
    public static void LoadInto(string path, WideResNet model)
    {
        ArgumentNullException.ThrowIfNull(model);
        var tensors = SafetensorsFile.Read(path).Tensors
            .Where(t => !t.Key.StartsWith(Checkpoint.MomentumPrefix, StringComparison.Ordinal))
            .ToDictionary(t => t.Key, t => t.Value, StringComparer.Ordinal);
        Load(path, tensors, model, refuseUnexpected: true);
    }

    /// <summary>
    /// Loads <paramref name="tensors"/> (read from <paramref name="path"/>) into <paramref name="model"/> by name: each of
    /// the model's entries must be present with its shape; with <paramref name="refuseUnexpected"/>, so must every tensor
    /// be one of the model's. The messages name the file and the tensors.
    /// </summary>
    internal static void Load(string path, IReadOnlyDictionary<string, (int[] Shape, float[] Data)> tensors, WideResNet model, bool refuseUnexpected)
    {
        var values = new Dictionary<string, float[]>(StringComparer.Ordinal);
        var missing = new List<string>();
        foreach (var (name, tensor) in model.StateDict())
        {
            if (!tensors.TryGetValue(name, out var stored))
            {
                missing.Add(name);
                continue;
            }

            if (!stored.Shape.SequenceEqual(tensor.Shape))
            {
                throw new CheckpointException($"{path}: tensor {name} has shape [{string.Join(", ", stored.Shape)}], {model.Config.Name} needs [{string.Join(", ", tensor.Shape)}]");
            }

            values[name] = stored.Data;
        }

        if (missing.Count > 0)
        {
            throw new CheckpointException($"{path}: missing tensors {List(missing)} of {model.Config.Name}; the file is incomplete or of another architecture");
        }

        var unexpected = tensors.Keys.Where(name => !values.ContainsKey(name)).Order(StringComparer.Ordinal).ToList();
        if (refuseUnexpected && unexpected.Count > 0)
        {
            throw new CheckpointException($"{path}: tensors {List(unexpected)} are not part of {model.Config.Name}; the file is of another architecture (check --arch, --block and --block-type)");
        }

        model.LoadStateDict(values, strict: false);
    }

    private static string List(IReadOnlyList<string> names) =>
        string.Join(", ", names.Take(8)) + (names.Count > 8 ? $" and {names.Count - 8} more" : "");
}
