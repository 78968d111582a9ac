namespace CheapConv.Kernels;

// The Norm family: native/kernels/batchnorm.cu, elementwise.cu and pooling.cu.
public static partial class KernelNames
{
    /// <summary>Per-channel batch mean and invStd (two-pass, one block per channel) and the running-statistics update.</summary>
    public const string BatchNormTrainStats = "cc_batchnorm_train_stats";

    /// <summary>Element-wise y = γ·(x − mean)·invStd + β with saved statistics, optionally followed by ReLU.</summary>
    public const string BatchNormApply = "cc_batchnorm_apply";

    /// <summary>Element-wise eval-mode batch norm with the running statistics, optionally followed by ReLU.</summary>
    public const string BatchNormEvalForward = "cc_batchnorm_eval_forward";

    /// <summary>Per-channel dβ = Σ dy and dγ = Σ dy·x̂ (one block per channel), dy optionally ReLU-masked.</summary>
    public const string BatchNormBackwardReduce = "cc_batchnorm_backward_reduce";

    /// <summary>Element-wise dx of training-mode batch norm from the per-channel dγ, dβ.</summary>
    public const string BatchNormBackwardData = "cc_batchnorm_backward_data";

    public const string ReluForward = "cc_relu_forward";
    public const string ReluBackward = "cc_relu_backward";
    public const string Add = "cc_add";
    public const string Fill = "cc_fill";
    public const string Scale = "cc_scale";
    public const string Axpy = "cc_axpy";

    /// <summary>Stage 1 of the deterministic Sum: one partial sum per block.</summary>
    public const string SumPartials = "cc_sum_partials";

    /// <summary>Stage 2 of the deterministic Sum: one block adds the partials.</summary>
    public const string SumFinal = "cc_sum_final";

    public const string GlobalAvgPoolForward = "cc_global_avg_pool_forward";
    public const string GlobalAvgPoolBackward = "cc_global_avg_pool_backward";
    public const string ZeroPadForward = "cc_zero_pad_forward";
    public const string ZeroPadBackward = "cc_zero_pad_backward";
}
