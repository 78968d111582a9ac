namespace CheapConv.Kernels;

// The Norm family: native/kernels/batchnorm.cu, elementwise.cu and pooling.cu.
public static partial class KernelNames
{
    /// <summary>Per-channel batch mean and invStd (two-pass, one block per channel) and the running-statistics update.</summary>
    public const string BatchNormTrainStats = "cc_batchnorm_train_stats_kernel";

    /// <summary>Element-wise y = γ·(x − mean)·invStd + β with saved statistics, optionally followed by ReLU.</summary>
    public const string BatchNormApply = "cc_batchnorm_apply_kernel";

    /// <summary>Element-wise eval-mode batch norm with the running statistics, optionally followed by ReLU.</summary>
    public const string BatchNormEvalForward = "cc_batchnorm_eval_forward_kernel";

    /// <summary>Per-channel dβ = Σ dy and dγ = Σ dy·x̂ (one block per channel), dy optionally ReLU-masked.</summary>
    public const string BatchNormBackwardReduce = "cc_batchnorm_backward_reduce_kernel";

    /// <summary>Element-wise dx of training-mode batch norm from the per-channel dγ, dβ.</summary>
    public const string BatchNormBackwardData = "cc_batchnorm_backward_data_kernel";

    public const string ReluForward = "cc_relu_forward_kernel";
    public const string ReluBackward = "cc_relu_backward_kernel";
    public const string Add = "cc_add_kernel";
    public const string Fill = "cc_fill_kernel";
    public const string Scale = "cc_scale_kernel";
    public const string Axpy = "cc_axpy_kernel";

    /// <summary>Stage 1 of the deterministic Sum: one partial sum per block.</summary>
    public const string SumPartials = "cc_sum_partials_kernel";

    /// <summary>Stage 2 of the deterministic Sum: one block adds the partials.</summary>
    public const string SumFinal = "cc_sum_final_kernel";

    public const string GlobalAvgPoolForward = "cc_global_avg_pool_forward_kernel";
    public const string GlobalAvgPoolBackward = "cc_global_avg_pool_backward_kernel";
    public const string ZeroPadForward = "cc_zero_pad_forward_kernel";
    public const string ZeroPadBackward = "cc_zero_pad_backward_kernel";
}
