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
/// <param name="Step">The step's place in the log, from 1 (the log is cleared every epoch: the step of the epoch).</param>
/// <param name="Images">The batch size of the step.</param>
internal sealed record StepRecord(int Step, int Images, double Loss, double CrossEntropy, double KnowledgeDistillation, double AttentionTransfer, int Correct,
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
    private readonly Storage _row; // the step being recorded, copied into _rows by Commit
    private readonly Storage _zero;
    private readonly string[] _parameterNames;
    private readonly Tensor[] _parameters;
    private readonly int[] _images;
    private Storage[]? _listed;
    private StorageList? _list;
    private StorageReadback? _readback;
    private float[]? _readbackValues;
    private int _pending = -1; // rows the read-back in flight covers; -1 when none is
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
        _row = backend.Allocate(RowLength);
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
    /// Records a step's row, for <see cref="Commit"/> to add to the log: copies of the one-element loss tensors (KD null
    /// when not computed, AT empty without a teacher), the correct count of <paramref name="logits"/> against
    /// <paramref name="labels"/>, and the gradient check. Call after the backward pass and before the optimiser step (the
    /// gradients are those of this step). Device-side work only, so a captured step can record (a replay records again).
    /// </summary>
    public void Record(Tensor total, Tensor crossEntropy, Tensor? knowledgeDistillation, IReadOnlyList<Tensor> attention,
        Tensor logits, ReadOnlySpan<int> labels)
    {
        if (attention.Count != AttentionGroups)
        {
            throw new ArgumentException($"the step log has {AttentionGroups} AT columns, the step computed {attention.Count} terms");
        }

        _backend.CopyElements(total.Storage, 0, _row, TotalColumn, 1);
        _backend.CopyElements(crossEntropy.Storage, 0, _row, CrossEntropyColumn, 1);
        _backend.CopyElements(knowledgeDistillation?.Storage ?? _zero, 0, _row, KnowledgeDistillationColumn, 1);
        for (var g = 0; g < attention.Count; g++)
        {
            _backend.CopyElements(attention[g].Storage, 0, _row, FirstAttentionColumn + g, 1);
        }

        _backend.CountCorrect(logits.Dim(0), logits.Dim(1), logits.Storage, labels, _row, CorrectColumn);
        if (_parameters.Length > 0)
        {
            _backend.FirstNonFinite(GradientList(), _row, FirstGradientColumn);
        }
    }

    /// <summary>Adds the row <see cref="Record"/> (or a replay of it) wrote as the next step, of <paramref name="images"/> images.</summary>
    public void Commit(int images)
    {
        if (Count == Capacity)
        {
            throw new InvalidOperationException($"the step log is full ({Capacity} steps): clear it at the end of each epoch");
        }

        _images[Count] = images;
        _backend.CopyElements(_row, 0, _rows, (long)Count * RowLength, RowLength);
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

        // Download takes whole storages: read the whole log (a few hundred kilobytes at most) and keep the new rows. A
        // read-back still in flight covers rows read here: it is dropped.
        var values = new float[_rows.Length];
        _backend.Download(_rows, values);
        var records = Decode(values, _read, Count);
        _read = Count;
        _pending = -1;
        return records;
    }

    private StepRecord[] Decode(float[] values, int from, int to)
    {
        var records = new StepRecord[Math.Max(0, to - from)];
        for (var i = 0; i < records.Length; i++)
        {
            records[i] = Decode(from + i + 1, _images[from + i], values.AsSpan((from + i) * RowLength, RowLength));
        }

        return records;
    }

    /// <summary>
    /// Starts copying the rows written so far to the host without waiting (a no-op while an earlier such copy is still to
    /// be taken); <see cref="TryReadNew"/> takes them once they have arrived. For the progress report, which must not stall
    /// a GPU: on the CPU the rows are there at once.
    /// </summary>
    public void BeginRead()
    {
        if (_pending >= 0)
        {
            return;
        }

        _readback ??= _backend.CreateReadback(_rows);
        _readback.Start();
        _pending = Count;
    }

    /// <summary>
    /// The rows the copy <see cref="BeginRead"/> started covers that no read has returned yet, in step order, once the copy
    /// has arrived; null, without waiting, while it has not (or when none was started).
    /// </summary>
    public IReadOnlyList<StepRecord>? TryReadNew()
    {
        if (_pending < 0)
        {
            return null;
        }

        _readbackValues ??= new float[_rows.Length];
        if (!_readback!.TryFinish(_readbackValues))
        {
            return null;
        }

        var records = Decode(_readbackValues, _read, _pending);
        _read = Math.Max(_read, _pending);
        _pending = -1;
        return records;
    }

    /// <summary>Forgets every row (the next step writes row 0) and any read-back not taken.</summary>
    public void Clear() => (Count, _read, _pending) = (0, 0, -1);

    public void Dispose()
    {
        _readback?.Dispose();
        _list?.Dispose();
        _rows.Dispose();
        _row.Dispose();
        _zero.Dispose();
    }

    private StepRecord Decode(int step, int images, ReadOnlySpan<float> row)
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

        return new StepRecord(step, images, row[TotalColumn], row[CrossEntropyColumn], row[KnowledgeDistillationColumn], attention,
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
