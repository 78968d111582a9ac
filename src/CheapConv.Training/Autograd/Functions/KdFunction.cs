namespace CheapConv.Autograd.Functions;

/// <summary>
/// Knowledge distillation in REFERENCE.md's corrected form: T²/N · Σ_n KL(softmax(t_n/T) ‖ softmax(s_n/T)).
/// The teacher's logits are a constant (they come from a no-grad forward pass) and get no gradient.
/// Saves both softened distributions.
/// </summary>
internal sealed class KdFunction : Function
{
    private readonly float _temperature;
    private readonly Tensor _studentSoft;
    private readonly Tensor _teacherSoft;

    private KdFunction(Tensor student, float temperature, Tensor studentSoft, Tensor teacherSoft)
        : base(student)
    {
        _temperature = temperature;
        _studentSoft = studentSoft;
        _teacherSoft = teacherSoft;
    }

    /// <summary>The KD loss of student logits against teacher logits (both N×classes), a one-element tensor.</summary>
    public static Tensor Apply(Tensor student, Tensor teacher, float temperature)
    {
        CheckRank(student, 2, "KD student logits");
        CheckSameShape(student, teacher, "KD student and teacher logits");
        if (!(temperature > 0))
        {
            throw new ArgumentException($"the KD temperature must be positive, got {temperature}");
        }

        int n = student.Dim(0), classes = student.Dim(1);
        var backend = student.Backend;
        var loss = Tensor.Empty(backend, 1);
        var studentSoft = Tensor.Empty(backend, n, classes);
        var teacherSoft = Tensor.Empty(backend, n, classes);
        backend.KdForward(n, classes, temperature, student.Storage, teacher.Storage, loss.Storage, studentSoft.Storage, teacherSoft.Storage);
        return Record(loss, () => new KdFunction(student, temperature, studentSoft, teacherSoft), student);
    }

    /// <inheritdoc/>
    protected internal override Tensor?[] Backward(Tensor outputGradient)
    {
        var student = Inputs[0];
        var dstudent = EmptyLike(0);
        Backend.KdBackward(student.Dim(0), student.Dim(1), _temperature, _studentSoft.Storage, _teacherSoft.Storage, outputGradient.Storage, dstudent.Storage);
        return [dstudent];
    }
}
