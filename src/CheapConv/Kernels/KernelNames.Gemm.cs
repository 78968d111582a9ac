namespace CheapConv.Kernels;

// The GEMM family (native/kernels/gemm.cu): pointwise 1×1 convolution and the linear layer on one tiled SGEMM core.
public static partial class KernelNames
{
    /// <summary>y = 1×1 conv(x, w), any stride: W (K×C) · X (C × N·P·Q, strided pixels).</summary>
    public const string PointwiseForward = "cc_pointwise_forward_kernel";

    /// <summary>dx = Wᵀ · dy scattered to the strided pixels, the other pixels zeroed.</summary>
    public const string PointwiseBackwardData = "cc_pointwise_backward_data_kernel";

    /// <summary>dw = dy · xᵀ over all N·P·Q positions, optionally split into partial sums (reduced by <see cref="GemmColumnSums"/>).</summary>
    public const string PointwiseBackwardWeight = "cc_pointwise_backward_weight_kernel";

    /// <summary>y = x · wᵀ + b.</summary>
    public const string LinearForward = "cc_linear_forward_kernel";

    /// <summary>dx = dy · w.</summary>
    public const string LinearBackwardData = "cc_linear_backward_data_kernel";

    /// <summary>dw = dyᵀ · x, optionally split into partial sums (reduced by <see cref="GemmColumnSums"/>).</summary>
    public const string LinearBackwardWeight = "cc_linear_backward_weight_kernel";

    /// <summary>dst[j] = Σ_r src[r, j] in row order: the linear bias gradient and the reduction of split partial sums.</summary>
    public const string GemmColumnSums = "cc_gemm_column_sums_kernel";
}
