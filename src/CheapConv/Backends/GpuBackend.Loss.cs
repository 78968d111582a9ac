using CheapConv.Devices;
using CheapConv.Interop;

namespace CheapConv.Backends;

// The Loss family on a device: cc_cross_entropy_*, cc_kd_*, cc_at_*, cc_count_correct and cc_sgd_step. Every forward
// loss is a deterministic mean into one float on the device, with the workspace cc_loss_workspace_size asks for. The
// labels (host spans) are copied into an int32 device buffer this backend owns and reuses, as is the one-int count of
// correct predictions.
public sealed unsafe partial class GpuBackend
{
    private DeviceBuffer<int>? _labels;
    private int[] _labelsOnDevice = [];
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
    internal void CrossEntropyForward(int n, int classes, DeviceBuffer<float> logits, ReadOnlySpan<int> labels, DeviceBuffer<float> loss, DeviceBuffer<float> probabilities)
    {
        CpuBackend.CheckRows(n, classes);
        CpuBackend.CheckLabels(labels, n, classes);
        CheckLossBuffer(nameof(logits), logits, (long)n * classes);
        CheckLossBuffer(nameof(probabilities), probabilities, (long)n * classes);
        CheckLossBuffer(nameof(loss), loss, 1);
        var deviceLabels = UploadLabels(labels);
        var problem = new LossProblem(n, classes, 0, 0, 0, 0);
        var (workspace, bytes) = Workspace(Device.Native.LossWorkspaceSize(problem));
        Device.Native.CrossEntropyForward(Device.Handle, problem, logits.Pointer, deviceLabels.Pointer, loss.Pointer, probabilities.Pointer,
            workspace, bytes, Device.Stream);
        Device.Queued("cc_cross_entropy_forward", problem);
    }

    /// <summary>dlogits = (probabilities − onehot(labels)) · dloss[0] / N; dlogits may be the probabilities buffer.</summary>
    internal void CrossEntropyBackward(int n, int classes, DeviceBuffer<float> probabilities, ReadOnlySpan<int> labels, DeviceBuffer<float> dloss, DeviceBuffer<float> dlogits)
    {
        CpuBackend.CheckRows(n, classes);
        CpuBackend.CheckLabels(labels, n, classes);
        CheckLossBuffer(nameof(probabilities), probabilities, (long)n * classes);
        CheckLossBuffer(nameof(dlogits), dlogits, (long)n * classes);
        CheckLossBuffer(nameof(dloss), dloss, 1);
        var deviceLabels = UploadLabels(labels);
        var problem = new LossProblem(n, classes, 0, 0, 0, 0);
        Device.Native.CrossEntropyBackward(Device.Handle, problem, probabilities.Pointer, deviceLabels.Pointer, dloss.Pointer, dlogits.Pointer, Device.Stream);
        Device.Queued("cc_cross_entropy_backward", problem);
    }

    /// <summary>KD loss T²/N · Σ KL(softmax(t/T) ‖ softmax(s/T)) into loss[0]; saves both softened distributions.</summary>
    internal void KdForward(int n, int classes, float temperature, DeviceBuffer<float> student, DeviceBuffer<float> teacher, DeviceBuffer<float> loss,
        DeviceBuffer<float> studentSoft, DeviceBuffer<float> teacherSoft)
    {
        CpuBackend.CheckRows(n, classes);
        CpuBackend.CheckTemperature(temperature);
        CheckLossBuffer(nameof(student), student, (long)n * classes);
        CheckLossBuffer(nameof(teacher), teacher, (long)n * classes);
        CheckLossBuffer(nameof(studentSoft), studentSoft, (long)n * classes);
        CheckLossBuffer(nameof(teacherSoft), teacherSoft, (long)n * classes);
        CheckLossBuffer(nameof(loss), loss, 1);
        var problem = new LossProblem(n, classes, temperature, 0, 0, 0);
        var (workspace, bytes) = Workspace(Device.Native.LossWorkspaceSize(problem));
        Device.Native.KdForward(Device.Handle, problem, student.Pointer, teacher.Pointer, loss.Pointer, studentSoft.Pointer, teacherSoft.Pointer,
            workspace, bytes, Device.Stream);
        Device.Queued("cc_kd_forward", problem);
    }

    /// <summary>dstudent = T/N · (studentSoft − teacherSoft) · dloss[0]; dstudent may be either input buffer.</summary>
    internal void KdBackward(int n, int classes, float temperature, DeviceBuffer<float> studentSoft, DeviceBuffer<float> teacherSoft, DeviceBuffer<float> dloss,
        DeviceBuffer<float> dstudent)
    {
        CpuBackend.CheckRows(n, classes);
        CpuBackend.CheckTemperature(temperature);
        CheckLossBuffer(nameof(studentSoft), studentSoft, (long)n * classes);
        CheckLossBuffer(nameof(teacherSoft), teacherSoft, (long)n * classes);
        CheckLossBuffer(nameof(dstudent), dstudent, (long)n * classes);
        CheckLossBuffer(nameof(dloss), dloss, 1);
        var problem = new LossProblem(n, classes, temperature, 0, 0, 0);
        Device.Native.KdBackward(Device.Handle, problem, studentSoft.Pointer, teacherSoft.Pointer, dloss.Pointer, dstudent.Pointer, Device.Stream);
        Device.Queued("cc_kd_backward", problem);
    }

    /// <summary>Attention-transfer loss of one N×C×H×W pair into loss[0]; saves both normalised maps and the student's map norms.</summary>
    internal void AtForward(int n, int c, int h, int w, DeviceBuffer<float> student, DeviceBuffer<float> teacher, DeviceBuffer<float> loss,
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
        var problem = new LossProblem(n, 0, 0, c, h, w);
        var (workspace, bytes) = Workspace(Device.Native.LossWorkspaceSize(problem));
        Device.Native.AtForward(Device.Handle, problem, student.Pointer, teacher.Pointer, loss.Pointer, studentMap.Pointer, teacherMap.Pointer,
            studentNorm.Pointer, workspace, bytes, Device.Stream);
        Device.Queued("cc_at_forward", problem);
    }

    /// <summary>dstudent of <see cref="AtForward"/> times dloss[0] (overwritten, not accumulated).</summary>
    internal void AtBackward(int n, int c, int h, int w, DeviceBuffer<float> student, DeviceBuffer<float> studentMap, DeviceBuffer<float> teacherMap,
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
        var problem = new LossProblem(n, 0, 0, c, h, w);
        Device.Native.AtBackward(Device.Handle, problem, student.Pointer, studentMap.Pointer, teacherMap.Pointer, studentNorm.Pointer, dloss.Pointer,
            dstudent.Pointer, Device.Stream);
        Device.Queued("cc_at_backward", problem);
    }

    /// <summary>One SGD step in place (PyTorch semantics, see <see cref="IBackend.SgdStep"/>); with momentum 0 the buffer is untouched.</summary>
    internal void SgdStep(long length, DeviceBuffer<float> parameter, DeviceBuffer<float> gradient, DeviceBuffer<float> momentumBuffer,
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
        var problem = new SgdProblem(length, learningRate, momentum, weightDecay, nesterov ? 1 : 0);
        Device.Native.SgdStep(Device.Handle, problem, parameter.Pointer, gradient.Pointer, momentumBuffer.Pointer, Device.Stream);
        Device.Queued("cc_sgd_step", problem);
    }

    /// <summary>How many rows' argmax (first on ties, NaN largest) is the label. Waits for the device (the count comes back to the host).</summary>
    internal int CountCorrect(int n, int classes, DeviceBuffer<float> logits, ReadOnlySpan<int> labels)
    {
        CpuBackend.CheckRows(n, classes);
        CpuBackend.CheckLabels(labels, n, classes);
        CheckLossBuffer(nameof(logits), logits, (long)n * classes);
        var deviceLabels = UploadLabels(labels);
        _correctCount ??= Device.Allocate<int>(1);
        var problem = new LossProblem(n, classes, 0, 0, 0, 0);
        Device.Native.CountCorrect(Device.Handle, problem, logits.Pointer, deviceLabels.Pointer, _correctCount.Pointer, Device.Stream);
        Device.Queued("cc_count_correct", problem);
        Span<int> count = stackalloc int[1];
        _correctCount.CopyTo(count);
        return count[0];
    }

    /// <summary>
    /// Puts <paramref name="labels"/> in the device buffer the loss kernels read (a staged upload, no wait), so that a
    /// captured step's kernels, which read that buffer, see the labels of the step being replayed.
    /// </summary>
    internal void StageLabels(ReadOnlySpan<int> labels) => UploadLabels(labels);

    /// <summary>Frees the labels and the correct count (allocated again when next needed); part of <see cref="Dispose"/>.</summary>
    private void ReleaseLossBuffers()
    {
        _labels?.Dispose();
        _correctCount?.Dispose();
        (_labels, _correctCount) = (null, null);
        _labelsOnDevice = [];
        BufferGeneration++;
    }

    /// <summary>
    /// Copies the labels into the reused device buffer, growing it when the batch is larger than any before. A host
    /// copy of what the buffer holds skips the upload when the same labels come again (forward then backward). The
    /// upload is staged (Device.CopyHostToDeviceStaged): the host does not wait for it.
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
            BufferGeneration++;
            _labels = Device.Allocate<int>(labels.Length);
        }

        // A prefix copy: the buffer may be longer than this batch. The copy is ordered after earlier launches
        // on the device's stream, so a kernel still reading the previous labels is not overtaken. The host
        // copy is cleared first so a failed upload never passes for a current one.
        _labelsOnDevice = [];
        fixed (int* source = labels)
        {
            Device.CopyHostToDeviceStaged(_labels.Pointer, source, (long)labels.Length * sizeof(int));
        }

        _labelsOnDevice = labels.ToArray();
        return _labels;
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
