using CheapConv.Devices;
using CheapConv.Kernels;

namespace CheapConv.Backends;

// The Loss family on a device (native/kernels/losses.cu and optim.cu). Each loss is two launches: a
// row-parallel (or sample-parallel) kernel writes one partial per sample into a scratch buffer, and
// cc_loss_reduce adds the partials in a fixed order into the 1-element loss, so the loss is deterministic
// without atomics. The labels (host spans) are copied into a device buffer this backend owns and reuses;
// the scratch buffers are owned the same way. That state makes GpuBackend not thread-safe: use one backend
// per thread (as one CUDA stream per thread).
public sealed unsafe partial class GpuBackend
{
    /// <summary>Threads per block of the one-warp-per-row kernels (cross-entropy, KD, CountCorrect): 8 rows per block.</summary>
    public const int LossRowBlock = 256;

    /// <summary>Threads per block of the one-block-per-sample attention-transfer kernels and of the batch reduction.</summary>
    public const int LossBlock = 256;

    private DeviceBuffer<int>? _labels;
    private int[] _labelsOnDevice = [];
    private DeviceBuffer<float>? _lossPartials;
    private DeviceBuffer<int>? _correctCount;

    void IBackend.CrossEntropyForward(int n, int classes, Storage logits, ReadOnlySpan<int> labels, Storage loss, Storage probabilities) =>
        CrossEntropyForward(n, classes, Buffer(logits), labels, Buffer(loss), Buffer(probabilities));

    void IBackend.CrossEntropyBackward(int n, int classes, Storage probabilities, ReadOnlySpan<int> labels, Storage dloss, Storage dlogits) =>
        CrossEntropyBackward(n, classes, Buffer(probabilities), labels, Buffer(dloss), Buffer(dlogits));

    void IBackend.KdForward(int n, int classes, float temperature, Storage student, Storage teacher, Storage loss, Storage studentSoft, Storage teacherSoft) =>
        KdForward(n, classes, temperature, Buffer(student), Buffer(teacher), Buffer(loss), Buffer(studentSoft), Buffer(teacherSoft));

    void IBackend.KdBackward(int n, int classes, float temperature, Storage studentSoft, Storage teacherSoft, Storage dloss, Storage dstudent) =>
        KdBackward(n, classes, temperature, Buffer(studentSoft), Buffer(teacherSoft), Buffer(dloss), Buffer(dstudent));

    void IBackend.AtForward(int n, int c, int h, int w, Storage student, Storage teacher, Storage loss, Storage studentMap, Storage teacherMap, Storage studentNorm) =>
        AtForward(n, c, h, w, Buffer(student), Buffer(teacher), Buffer(loss), Buffer(studentMap), Buffer(teacherMap), Buffer(studentNorm));

    void IBackend.AtBackward(int n, int c, int h, int w, Storage student, Storage studentMap, Storage teacherMap, Storage studentNorm, Storage dloss, Storage dstudent) =>
        AtBackward(n, c, h, w, Buffer(student), Buffer(studentMap), Buffer(teacherMap), Buffer(studentNorm), Buffer(dloss), Buffer(dstudent));

    void IBackend.SgdStep(long length, Storage parameter, Storage gradient, Storage momentumBuffer, float learningRate, float momentum, float weightDecay, bool nesterov) =>
        SgdStep(length, Buffer(parameter), Buffer(gradient), Buffer(momentumBuffer), learningRate, momentum, weightDecay, nesterov);

    int IBackend.CountCorrect(int n, int classes, Storage logits, ReadOnlySpan<int> labels) =>
        CountCorrect(n, classes, Buffer(logits), labels);

    /// <summary>Softmax cross-entropy, mean over the batch, into loss[0]; saves the probabilities. Labels are checked on the host.</summary>
    /// <remarks>
    /// The labels go into a device buffer this backend owns and reuses (as do the per-sample partial sums of every
    /// loss), so a GpuBackend is not thread-safe: give each thread its own.
    /// </remarks>
    public void CrossEntropyForward(int n, int classes, DeviceBuffer<float> logits, ReadOnlySpan<int> labels, DeviceBuffer<float> loss, DeviceBuffer<float> probabilities)
    {
        CpuBackend.CheckRows(n, classes);
        CpuBackend.CheckLabels(labels, n, classes);
        CheckLossBuffer(nameof(logits), logits, (long)n * classes);
        CheckLossBuffer(nameof(probabilities), probabilities, (long)n * classes);
        CheckLossBuffer(nameof(loss), loss, 1);
        var deviceLabels = UploadLabels(labels);
        var partials = LossPartials(n);

        var description = $"cross-entropy N={n} classes={classes}";
        var args = new KernelArguments();
        args.Add(n);
        args.Add(classes);
        args.Add(logits.Pointer);
        args.Add(deviceLabels.Pointer);
        args.Add(probabilities.Pointer);
        args.Add(partials.Pointer);
        args.Launch(Device, KernelNames.CrossEntropyForward, RowsConfig(n), description);
        ReduceLoss(n, 1f / n, partials, loss, description);
    }

    /// <summary>dlogits = (probabilities − onehot(labels)) · dloss[0] / N; dlogits may be the probabilities buffer.</summary>
    public void CrossEntropyBackward(int n, int classes, DeviceBuffer<float> probabilities, ReadOnlySpan<int> labels, DeviceBuffer<float> dloss, DeviceBuffer<float> dlogits)
    {
        CpuBackend.CheckRows(n, classes);
        CpuBackend.CheckLabels(labels, n, classes);
        CheckLossBuffer(nameof(probabilities), probabilities, (long)n * classes);
        CheckLossBuffer(nameof(dlogits), dlogits, (long)n * classes);
        CheckLossBuffer(nameof(dloss), dloss, 1);
        var deviceLabels = UploadLabels(labels);

        var args = new KernelArguments();
        args.Add(n);
        args.Add(classes);
        args.Add(probabilities.Pointer);
        args.Add(deviceLabels.Pointer);
        args.Add(dloss.Pointer);
        args.Add(dlogits.Pointer);
        args.Launch(Device, KernelNames.CrossEntropyBackward, Elementwise((long)n * classes), $"cross-entropy backward N={n} classes={classes}");
    }

    /// <summary>KD loss T²/N · Σ KL(softmax(t/T) ‖ softmax(s/T)) into loss[0]; saves both softened distributions.</summary>
    public void KdForward(int n, int classes, float temperature, DeviceBuffer<float> student, DeviceBuffer<float> teacher, DeviceBuffer<float> loss,
        DeviceBuffer<float> studentSoft, DeviceBuffer<float> teacherSoft)
    {
        CpuBackend.CheckRows(n, classes);
        CpuBackend.CheckTemperature(temperature);
        CheckLossBuffer(nameof(student), student, (long)n * classes);
        CheckLossBuffer(nameof(teacher), teacher, (long)n * classes);
        CheckLossBuffer(nameof(studentSoft), studentSoft, (long)n * classes);
        CheckLossBuffer(nameof(teacherSoft), teacherSoft, (long)n * classes);
        CheckLossBuffer(nameof(loss), loss, 1);
        var partials = LossPartials(n);

        var description = $"KD N={n} classes={classes} T={temperature}";
        var args = new KernelArguments();
        args.Add(n);
        args.Add(classes);
        args.Add(temperature);
        args.Add(student.Pointer);
        args.Add(teacher.Pointer);
        args.Add(studentSoft.Pointer);
        args.Add(teacherSoft.Pointer);
        args.Add(partials.Pointer);
        args.Launch(Device, KernelNames.KdForward, RowsConfig(n), description);
        ReduceLoss(n, temperature * temperature / n, partials, loss, description);
    }

    /// <summary>dstudent = T/N · (studentSoft − teacherSoft) · dloss[0]; dstudent may be either input buffer.</summary>
    public void KdBackward(int n, int classes, float temperature, DeviceBuffer<float> studentSoft, DeviceBuffer<float> teacherSoft, DeviceBuffer<float> dloss,
        DeviceBuffer<float> dstudent)
    {
        CpuBackend.CheckRows(n, classes);
        CpuBackend.CheckTemperature(temperature);
        CheckLossBuffer(nameof(studentSoft), studentSoft, (long)n * classes);
        CheckLossBuffer(nameof(teacherSoft), teacherSoft, (long)n * classes);
        CheckLossBuffer(nameof(dstudent), dstudent, (long)n * classes);
        CheckLossBuffer(nameof(dloss), dloss, 1);

        var args = new KernelArguments();
        args.Add(n);
        args.Add(classes);
        args.Add(temperature);
        args.Add(studentSoft.Pointer);
        args.Add(teacherSoft.Pointer);
        args.Add(dloss.Pointer);
        args.Add(dstudent.Pointer);
        args.Launch(Device, KernelNames.KdBackward, Elementwise((long)n * classes), $"KD backward N={n} classes={classes} T={temperature}");
    }

    /// <summary>Attention-transfer loss of one N×C×H×W pair into loss[0]; saves both normalised maps and the student's map norms.</summary>
    public void AtForward(int n, int c, int h, int w, DeviceBuffer<float> student, DeviceBuffer<float> teacher, DeviceBuffer<float> loss,
        DeviceBuffer<float> studentMap, DeviceBuffer<float> teacherMap, DeviceBuffer<float> studentNorm)
    {
        CpuBackend.CheckActivations(n, c, h, w);
        long hw = (long)h * w;
        CheckLossBuffer(nameof(student), student, n * c * hw);
        CheckLossBuffer(nameof(teacher), teacher, n * c * hw);
        CheckLossBuffer(nameof(studentMap), studentMap, n * hw);
        CheckLossBuffer(nameof(teacherMap), teacherMap, n * hw);
        CheckLossBuffer(nameof(studentNorm), studentNorm, n);
        CheckLossBuffer(nameof(loss), loss, 1);
        var partials = LossPartials(n);

        var description = $"AT N={n} C={c} H={h} W={w}";
        var args = new KernelArguments();
        args.Add(n);
        args.Add(c);
        args.Add((int)hw);
        args.Add(student.Pointer);
        args.Add(teacher.Pointer);
        args.Add(studentMap.Pointer);
        args.Add(teacherMap.Pointer);
        args.Add(studentNorm.Pointer);
        args.Add(partials.Pointer);
        args.Launch(Device, KernelNames.AtForward, SamplesConfig(n), description);
        ReduceLoss(n, (float)(1.0 / (n * hw)), partials, loss, description);
    }

    /// <summary>dstudent of <see cref="AtForward"/> times dloss[0] (overwritten, not accumulated).</summary>
    public void AtBackward(int n, int c, int h, int w, DeviceBuffer<float> student, DeviceBuffer<float> studentMap, DeviceBuffer<float> teacherMap,
        DeviceBuffer<float> studentNorm, DeviceBuffer<float> dloss, DeviceBuffer<float> dstudent)
    {
        CpuBackend.CheckActivations(n, c, h, w);
        long hw = (long)h * w;
        CheckLossBuffer(nameof(student), student, n * c * hw);
        CheckLossBuffer(nameof(dstudent), dstudent, n * c * hw);
        CheckLossBuffer(nameof(studentMap), studentMap, n * hw);
        CheckLossBuffer(nameof(teacherMap), teacherMap, n * hw);
        CheckLossBuffer(nameof(studentNorm), studentNorm, n);
        CheckLossBuffer(nameof(dloss), dloss, 1);

        var args = new KernelArguments();
        args.Add(n);
        args.Add(c);
        args.Add((int)hw);
        args.Add(student.Pointer);
        args.Add(studentMap.Pointer);
        args.Add(teacherMap.Pointer);
        args.Add(studentNorm.Pointer);
        args.Add(dloss.Pointer);
        args.Add(dstudent.Pointer);
        args.Launch(Device, KernelNames.AtBackward, SamplesConfig(n), $"AT backward N={n} C={c} H={h} W={w}");
    }

    /// <summary>One SGD step in place (PyTorch semantics, see <see cref="IBackend.SgdStep"/>); with momentum 0 the buffer is untouched.</summary>
    public void SgdStep(long length, DeviceBuffer<float> parameter, DeviceBuffer<float> gradient, DeviceBuffer<float> momentumBuffer,
        float learningRate, float momentum, float weightDecay, bool nesterov)
    {
        CpuBackend.CheckSgdOptions(learningRate, momentum, weightDecay, nesterov);
        if (length < 1 || length > int.MaxValue)
        {
            throw new ArgumentOutOfRangeException(nameof(length), length, "an SGD step needs 1 to 2^31−1 elements");
        }

        CheckLossBuffer(nameof(parameter), parameter, length);
        CheckLossBuffer(nameof(gradient), gradient, length);
        CheckLossBuffer(nameof(momentumBuffer), momentumBuffer, length);

        var args = new KernelArguments();
        args.Add((int)length);
        args.Add(parameter.Pointer);
        args.Add(gradient.Pointer);
        args.Add(momentumBuffer.Pointer);
        args.Add(learningRate);
        args.Add(momentum);
        args.Add(weightDecay);
        args.Add(nesterov ? 1 : 0);
        args.Launch(Device, KernelNames.SgdStep, Elementwise(length),
            $"SGD step length={length} lr={learningRate} momentum={momentum} weight decay={weightDecay} nesterov={nesterov}");
    }

    /// <summary>How many rows' argmax (first on ties, NaN largest) is the label. Waits for the device (the count comes back to the host).</summary>
    public int CountCorrect(int n, int classes, DeviceBuffer<float> logits, ReadOnlySpan<int> labels)
    {
        CpuBackend.CheckRows(n, classes);
        CpuBackend.CheckLabels(labels, n, classes);
        CheckLossBuffer(nameof(logits), logits, (long)n * classes);
        var deviceLabels = UploadLabels(labels);
        _correctCount ??= Device.Allocate<int>(1);
        _correctCount.FillBytes(0);

        var args = new KernelArguments();
        args.Add(n);
        args.Add(classes);
        args.Add(logits.Pointer);
        args.Add(deviceLabels.Pointer);
        args.Add(_correctCount.Pointer);
        args.Launch(Device, KernelNames.CountCorrect, RowsConfig(n), $"count correct N={n} classes={classes}");
        Span<int> count = stackalloc int[1];
        _correctCount.CopyTo(count);
        return count[0];
    }

    /// <summary>
    /// Frees the labels and scratch buffers of the Loss family (they are allocated again when next needed); part of
    /// <see cref="Dispose"/>.
    /// </summary>
    private void ReleaseLossBuffers()
    {
        _labels?.Dispose();
        _lossPartials?.Dispose();
        _correctCount?.Dispose();
        (_labels, _lossPartials, _correctCount) = (null, null, null);
        _labelsOnDevice = [];
    }

    /// <summary>One warp per row: <see cref="LossRowBlock"/>/32 rows per block.</summary>
    public static LaunchConfig RowsConfig(int rows)
    {
        const int rowsPerBlock = LossRowBlock / 32;
        return new LaunchConfig(new Dim3((uint)((rows + rowsPerBlock - 1) / rowsPerBlock)), new Dim3(LossRowBlock));
    }

    /// <summary>One block of <see cref="LossBlock"/> threads per sample.</summary>
    public static LaunchConfig SamplesConfig(int samples) => new(new Dim3((uint)samples), new Dim3(LossBlock));

    /// <summary>loss[0] = scale · Σ of the first <paramref name="count"/> partials, in one block.</summary>
    private void ReduceLoss(int count, float scale, DeviceBuffer<float> partials, DeviceBuffer<float> loss, string description)
    {
        var args = new KernelArguments();
        args.Add(count);
        args.Add(scale);
        args.Add(partials.Pointer);
        args.Add(loss.Pointer);
        args.Launch(Device, KernelNames.LossReduce, new LaunchConfig(new Dim3(1), new Dim3(LossBlock)), description + " (batch reduction)");
    }

    /// <summary>
    /// Copies the labels into the reused device buffer, growing it when the batch is larger than any before. A host
    /// copy of what the buffer holds skips the upload when the same labels come again (forward then backward):
    /// on a CUDA device every upload waits for the stream, so a skipped one is a skipped synchronisation.
    /// </summary>
    private DeviceBuffer<int> UploadLabels(ReadOnlySpan<int> labels)
    {
        if (_labels is not null && labels.SequenceEqual(_labelsOnDevice))
        {
            return _labels;
        }

        if (_labels is null || _labels.Length < labels.Length)
        {
            _labels?.Dispose();
            _labels = null;
            _labels = Device.Allocate<int>(labels.Length);
        }

        // A prefix copy: the buffer may be longer than this batch. The copy is ordered after earlier launches
        // on the device's stream, so a kernel still reading the previous labels is not overtaken. The host
        // copy is cleared first so a failed upload never passes for a current one.
        _labelsOnDevice = [];
        fixed (int* source = labels)
        {
            Device.CopyHostToDevice(_labels.Pointer, source, (long)labels.Length * sizeof(int));
        }

        _labelsOnDevice = labels.ToArray();
        return _labels;
    }

    /// <summary>The reused scratch for one partial per sample, at least <paramref name="count"/> long.</summary>
    private DeviceBuffer<float> LossPartials(int count)
    {
        if (_lossPartials is null || _lossPartials.Length < count)
        {
            _lossPartials?.Dispose();
            _lossPartials = null;
            _lossPartials = Device.Allocate<float>(count);
        }

        return _lossPartials;
    }

    private void CheckLossBuffer(string name, DeviceBuffer<float> buffer, long expected)
    {
        if (buffer.Device != Device)
        {
            throw new ArgumentException($"{name} lives on {buffer.Device.Name}, not on {Device.Name}", name);
        }

        CpuBackend.CheckElements(name, buffer.Length, expected);
    }
}
