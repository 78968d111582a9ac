namespace CheapConv.Autograd.Functions;

/// <summary>
/// Attention transfer for one activation pair: mean over N·H·W of (q_s − q_t)², q = per-sample L2-normalised
/// channel-mean of squares. The teacher's activation is a constant and gets no gradient. Saves the student
/// activation, both normalised maps and the student's map norms.
/// </summary>
internal sealed class AtFunction : Function
{
    private readonly Tensor _studentMap;
    private readonly Tensor _teacherMap;
    private readonly Tensor _studentNorm;

    private AtFunction(Tensor student, Tensor studentMap, Tensor teacherMap, Tensor studentNorm)
        : base(student)
    {
        _studentMap = studentMap;
        _teacherMap = teacherMap;
        _studentNorm = studentNorm;
    }

    /// <summary>The AT loss of two N×C×H×W activations (channel counts may differ), a one-element tensor.</summary>
    public static Tensor Apply(Tensor student, Tensor teacher)
    {
        CheckRank(student, 4, "AT student activation");
        CheckRank(teacher, 4, "AT teacher activation");
        int n = student.Dim(0), c = student.Dim(1), h = student.Dim(2), w = student.Dim(3);
        if (teacher.Dim(0) != n || teacher.Dim(1) != c || teacher.Dim(2) != h || teacher.Dim(3) != w)
        {
            // The backend op takes one C for both; WRN students keep the teacher's channel counts at the AT points.
            throw new ArgumentException($"AT needs equal activation shapes, got [{string.Join("x", student.Shape)}] and [{string.Join("x", teacher.Shape)}]");
        }

        var backend = student.Backend;
        var loss = Tensor.Empty(backend, 1);
        var studentMap = Tensor.Empty(backend, n, h * w);
        var teacherMap = Tensor.Empty(backend, n, h * w);
        var studentNorm = Tensor.Empty(backend, n);
        backend.AtForward(n, c, h, w, student.Storage, teacher.Storage, loss.Storage, studentMap.Storage, teacherMap.Storage, studentNorm.Storage);
        return Record(loss, () => new AtFunction(student, studentMap, teacherMap, studentNorm), student);
    }

    /// <inheritdoc/>
    protected internal override Tensor?[] Backward(Tensor outputGradient)
    {
        var student = Inputs[0];
        var dstudent = EmptyLike(0);
        Backend.AtBackward(student.Dim(0), student.Dim(1), student.Dim(2), student.Dim(3), student.Storage,
            _studentMap.Storage, _teacherMap.Storage, _studentNorm.Storage, outputGradient.Storage, dstudent.Storage);
        return [dstudent];
    }
}
