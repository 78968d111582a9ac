using CheapConv.Autograd;
using CheapConv.Backends;
using CheapConv.Models;

namespace CheapConv.Training;

/// <summary>What one step recorded, as read back from a <see cref="StepLog"/>: the losses (per-image averages as the loss
/// functions define them), the correct count, and the first non-finite term of the step, if any.</summary>
/// <param name="Loss">The total loss the step descended.</param>
/// <param name="KnowledgeDistillation">The KD term; 0 when α = 0 (not computed) or without a teacher.</param>
/// <param name="AttentionTransfer">Σ of the AT terms (each before its β); 0 when there are none.</param>
/// <param name="Correct">Images of the batch the student's logits (before the update) classify correctly.</param>
/// <param name="Diverged">The first loss term or gradient of the step holding a NaN or an infinity — in the order the
/// terms are computed (CE, KD, each AT group, the total, then each parameter's gradient in state-dict order) — with that
/// value; null when everything was finite.</param>
/// <param name="Images">The batch size of the step.</param>
internal sealed record StepRecord(int Images, double Loss, double CrossEntropy, double KnowledgeDistillation, double AttentionTransfer, int Correct,
    (string Term, double Value)? Diverged);

/// <summary>
/// The results of a run of training steps, kept on the device until read: one row per step holding the loss terms, the
/// correct count and, per parameter, the first non-finite element of its gradient (0 when finite). A step writes its row
/// with device-side copies and one check launch (<see cref="TrainingStep"/>), so it never waits for the device; the
/// trainer reads the rows back in one download every few steps and at the end of an epoch, and judges them there.
/// </summary>
/// <remarks>
/// Row layout: [total, CE, KD, AT group 1 … AT group g, correct, gradient check of parameter 1 … p]. Parameters without a
/// gradient in a step (none, in a WRN) are checked through a shared one-element zero storage, so every row has the same
/// layout. The gradient storages of a model stay the same from step to step (a parameter keeps its gradient buffer), so
/// the list the check launch walks is built once; it is rebuilt, with an upload, only if one changes.
/// </remarks>
internal sealed class StepLog : IDisposable
{
    private const int TotalColumn = 0;
    private const int CrossEntropyColumn = 1;
    private const int KnowledgeDistillationColumn = 2;
    private const int FirstAttentionColumn = 3;

    private readonly IBackend _backend;
    private readonly Storage _rows;
    private readonly Storage _zero;
    private readonly string[] _parameterNames;
    private readonly Tensor[] _parameters;
    private readonly int[] _images;
    private Storage[]? _listed;
    private StorageList? _list;
    private int _read;

    /// <summary>A log of up to <paramref name="capacity"/> steps of <paramref name="model"/> with <paramref name="attentionGroups"/> AT terms.</summary>
    public StepLog(IBackend backend, WideResNet model, int attentionGroups, int capacity)
    {
        ArgumentNullException.ThrowIfNull(backend);
        ArgumentNullException.ThrowIfNull(model);
        ArgumentOutOfRangeException.ThrowIfNegative(attentionGroups);
        ArgumentOutOfRangeException.ThrowIfLessThan(capacity, 1);
        _backend = backend;
        AttentionGroups = attentionGroups;
        var parameters = model.NamedParameters().ToArray();
        _parameterNames = [.. parameters.Select(p => p.Name)];
        _parameters = [.. parameters.Select(p => p.Tensor)];
        Capacity = capacity;
        _images = new int[capacity];
        _rows = backend.Allocate((long)capacity * RowLength);
        _zero = backend.Allocate(1);
        backend.Fill(_zero, 0f);
    }

    /// <summary>AT terms per row.</summary>
    public int AttentionGroups { get; }

    /// <summary>Floats per row.</summary>
    public int RowLength => FirstGradientColumn + _parameters.Length;

    /// <summary>Rows the log can hold.</summary>
    public int Capacity { get; }

    /// <summary>Rows written since the last <see cref="Clear"/>.</summary>
    public int Count { get; private set; }

    /// <summary>Rows written but not yet returned by <see cref="ReadNew"/>.</summary>
    public int Unread => Count - _read;

    private int CorrectColumn => FirstAttentionColumn + AttentionGroups;

    private int FirstGradientColumn => CorrectColumn + 1;

    /// <summary>
    /// Records the next step's row: copies of the one-element loss tensors (KD null when not computed, AT empty without
    /// a teacher), the correct count of <paramref name="logits"/> against <paramref name="labels"/>, and the gradient
    /// check. Call after the backward pass and before the optimiser step (the gradients are those of this step).
    /// </summary>
    public void Record(Tensor total, Tensor crossEntropy, Tensor? knowledgeDistillation, IReadOnlyList<Tensor> attention,
        Tensor logits, ReadOnlySpan<int> labels)
    {
        if (Count == Capacity)
        {
            throw new InvalidOperationException($"the step log is full ({Capacity} steps): clear it at the end of each epoch");
        }

        if (attention.Count != AttentionGroups)
        {
            throw new ArgumentException($"the step log has {AttentionGroups} AT columns, the step computed {attention.Count} terms");
        }

        var row = (long)Count * RowLength;
        _backend.CopyElements(total.Storage, 0, _rows, row + TotalColumn, 1);
        _backend.CopyElements(crossEntropy.Storage, 0, _rows, row + CrossEntropyColumn, 1);
        _backend.CopyElements(knowledgeDistillation?.Storage ?? _zero, 0, _rows, row + KnowledgeDistillationColumn, 1);
        for (var g = 0; g < attention.Count; g++)
        {
            _backend.CopyElements(attention[g].Storage, 0, _rows, row + FirstAttentionColumn + g, 1);
        }

        _images[Count] = logits.Dim(0);
        _backend.CountCorrect(logits.Dim(0), logits.Dim(1), logits.Storage, labels, _rows, row + CorrectColumn);
        if (_parameters.Length > 0)
        {
            _backend.FirstNonFinite(GradientList(), _rows, row + FirstGradientColumn);
        }

        Count++;
    }

    /// <summary>
    /// The rows written since the previous read, in step order: one download (one host wait on a GPU) for all of them.
    /// </summary>
    public IReadOnlyList<StepRecord> ReadNew()
    {
        var count = Unread;
        if (count == 0)
        {
            return [];
        }

        // Download takes whole storages: read the whole log (a few hundred kilobytes at most) and keep the new rows.
        var values = new float[_rows.Length];
        _backend.Download(_rows, values);
        var records = new StepRecord[count];
        for (var i = 0; i < count; i++)
        {
            records[i] = Decode(_images[_read + i], values.AsSpan((_read + i) * RowLength, RowLength));
        }

        _read = Count;
        return records;
    }

    /// <summary>Forgets every row (the next step writes row 0).</summary>
    public void Clear() => (Count, _read) = (0, 0);

    public void Dispose()
    {
        _list?.Dispose();
        _rows.Dispose();
        _zero.Dispose();
    }

    private StepRecord Decode(int images, ReadOnlySpan<float> row)
    {
        (string, double)? diverged = null;
        void Check(string term, float value)
        {
            if (diverged is null && !float.IsFinite(value))
            {
                diverged = (term, value);
            }
        }

        Check("the CE loss", row[CrossEntropyColumn]);
        Check("the KD loss", row[KnowledgeDistillationColumn]);
        var attention = 0.0;
        for (var g = 0; g < AttentionGroups; g++)
        {
            Check($"the AT loss of group {g + 1}", row[FirstAttentionColumn + g]);
            attention += row[FirstAttentionColumn + g];
        }

        Check("the total loss", row[TotalColumn]);
        for (var p = 0; p < _parameters.Length; p++)
        {
            Check($"the gradient of {_parameterNames[p]}", row[FirstGradientColumn + p]);
        }

        return new StepRecord(images, row[TotalColumn], row[CrossEntropyColumn], row[KnowledgeDistillationColumn], attention,
            (int)row[CorrectColumn], diverged);
    }

    /// <summary>The list of this step's gradient storages, rebuilt only when one of them is not the one listed before
    /// (compared in place: a step that finds the same storages allocates nothing).</summary>
    private StorageList GradientList()
    {
        if (_list is null || _listed is null || !ListsCurrentGradients(_listed))
        {
            var current = _parameters.Select(p => p.Gradient ?? _zero).ToArray();
            _list?.Dispose();
            _list = _backend.CreateList(current);
            _listed = current;
        }

        return _list;
    }

    private bool ListsCurrentGradients(Storage[] listed)
    {
        for (var p = 0; p < _parameters.Length; p++)
        {
            if (!ReferenceEquals(listed[p], _parameters[p].Gradient ?? _zero))
            {
                return false;
            }
        }

        return true;
    }
}
