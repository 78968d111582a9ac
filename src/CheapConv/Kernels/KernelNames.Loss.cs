namespace CheapConv.Kernels;

// The Loss family: native/kernels/losses.cu (cross-entropy, KD, AT, the batch reduction, CountCorrect) and
// native/kernels/optim.cu (the SGD step).
public static partial class KernelNames
{
    /// <summary>Softmax probabilities and per-row −log softmax[label]; one warp per row.</summary>
    public const string CrossEntropyForward = "cc_cross_entropy_forward_kernel";

    /// <summary>dlogits = (p − onehot) · dloss / N; one thread per element.</summary>
    public const string CrossEntropyBackward = "cc_cross_entropy_backward_kernel";

    /// <summary>softmax(s/T), softmax(t/T) and per-row KL(p_t ‖ p_s); one warp per row.</summary>
    public const string KdForward = "cc_kd_forward_kernel";

    /// <summary>dstudent = T/N · (p_s − p_t) · dloss; one thread per element.</summary>
    public const string KdBackward = "cc_kd_backward_kernel";

    /// <summary>Normalised attention maps, the student's map norm and per-sample Σ(q_s − q_t)²; one block per sample.</summary>
    public const string AtForward = "cc_at_forward_kernel";

    /// <summary>dstudent of attention transfer; one block per sample.</summary>
    public const string AtBackward = "cc_at_backward_kernel";

    /// <summary>loss[0] = scale · Σ partials, in a fixed order; one block.</summary>
    public const string LossReduce = "cc_loss_reduce_kernel";

    /// <summary>Adds the number of rows whose argmax (first on ties) is the label; one warp per row.</summary>
    public const string CountCorrect = "cc_count_correct_kernel";

    /// <summary>One fused SGD step (momentum, Nesterov, weight decay); one thread per element.</summary>
    public const string SgdStep = "cc_sgd_step_kernel";
}
