namespace CheapConv.Profiling;

/// <summary>How the library launches one kernel: threads per block and dynamic shared memory per block.</summary>
/// <param name="Kernel">The kernel's name, e.g. "cc_conv2d_forward_kernel".</param>
/// <param name="Module">The native/kernels/&lt;module&gt;.cu it lives in.</param>
/// <param name="Geometry">The launcher's rule for the grid, in words.</param>
/// <param name="Source">Where the launcher decides the block: "file:line", and the text that line holds.</param>
internal sealed record KernelLaunchShape(string Kernel, string Module, int ThreadsPerBlock, int DynamicSharedBytes, string Geometry, string Source, string SourceText);

/// <summary>
/// The launch configuration of every production kernel, as the C ABI's launchers (native/launch) choose it. The
/// theoretical occupancy of the static report is computed for these. Every block is 256 threads without dynamic shared
/// memory, except the tensor-core kernels' (128 threads, 30 KiB of dynamic shared memory for their 3-stage pipeline,
/// native/launch/conv_implicit_gemm.h); the grids vary with the problem. Tests keep the table true: each cited line must still hold its text, and each kernel an emulator run
/// launches must be launched with the block and dynamic shared memory listed here.
/// </summary>
internal static class KernelLaunchShapes
{
    private const int Block = 256;

    private const string Elementwise = "native/launch/geometry.h:16";
    private const string ElementwiseText = "kElementwiseBlock = 256";
    private const string OnePerElement = "one thread per element";
    // The one-launch training batch norm on sm_90 (kernels/batchnorm.cu): a thread-block cluster per channel.
    private const string ClusterPerChannel = "one cluster of CC_BN_CLUSTER_BLOCKS = 8 blocks per channel";

    // The tensor-core kernels (kernels/implicit_gemm.cu).
    private const int ImplicitGemmBlock = 128;
    private const int ImplicitGemmShared = 30720;
    private const string ImplicitGemm = "native/launch/conv_implicit_gemm.h:22";
    private const string ImplicitGemmText = "kImplicitGemmSquare{64, 64, 128, 30720}";
    private const int ImplicitGemmWideBlock = 256;
    private const int ImplicitGemmWideShared = 46080;
    private const string ImplicitGemmWide = "native/launch/conv_implicit_gemm.h:23";
    private const string ImplicitGemmWideText = "kImplicitGemmWide{64, 128, 256, 46080}";
    // The input batch norm's weight gradients (cc_conv_backward_input_bn) keep their 64 channels' {mean, invstd, gamma, beta}
    // past the square tile's pipeline in shared memory (kImplicitGemmInputBnWeightBytes = 1024, conv_implicit_gemm.h).
    private const int ImplicitGemmInputBnWeightShared = ImplicitGemmShared + 1024;
    private const int ImplicitGemmFlatShared = 38400;
    private const string ImplicitGemmFlat = "native/launch/conv_implicit_gemm.h:24";
    private const string ImplicitGemmFlatText = "kImplicitGemmFlat{32, 128, 128, 38400}";
    private const string Tiled = "native/include/cheapconv/tiled_plan.h:20";
    private const string TiledText = "CC_TILED_THREADS = 256";
    private const string Strips = "one block per group of output strips and chunk of channels";
    private const string SplitStrips = "one block per (input channel, chunk of filters) and split of the strips";
    // cc_conv_backward's fused kernels: the blocks of the weight gradient's grid, then the data gradient's, in one 1-D grid
    // (native/include/cheapconv/fused_grid.h), of the block both passes have.
    private const string BothGradients = "1-D: the weight gradient's blocks, then the data gradient's";

    /// <summary>Every production kernel, sorted by name.</summary>
    public static IReadOnlyList<KernelLaunchShape> All { get; } = new KernelLaunchShape[]
    {
        new("cc_batchnorm_train_stats_kernel", "batchnorm", Block, 0, "one block per channel", "native/launch/batchnorm.cpp:19", "kReductionBlock = 256"),
        new("cc_batchnorm_apply_kernel", "batchnorm", Block, 0, OnePerElement, Elementwise, ElementwiseText),
        new("cc_batchnorm_eval_forward_kernel", "batchnorm", Block, 0, OnePerElement, Elementwise, ElementwiseText),
        new("cc_batchnorm_backward_reduce_kernel", "batchnorm", Block, 0, "one block per channel", "native/launch/batchnorm.cpp:19", "kReductionBlock = 256"),
        new("cc_batchnorm_backward_data_kernel", "batchnorm", Block, 0, OnePerElement, Elementwise, ElementwiseText),
        new("cc_batchnorm_train_forward_cluster_kernel", "batchnorm", Block, 0, ClusterPerChannel, "native/launch/batchnorm.cpp:19", "kReductionBlock = 256"),
        new("cc_batchnorm_backward_cluster_kernel", "batchnorm", Block, 0, ClusterPerChannel, "native/launch/batchnorm.cpp:19", "kReductionBlock = 256"),
        new("cc_batchnorm_backward_from_sums_kernel", "batchnorm", Block, 0, "one block per channel and part (up to 8 parts)",
            "native/launch/batchnorm.cpp:19", "kReductionBlock = 256"),
        new("cc_batchnorm_statistics_from_stats_kernel", "batchnorm", Block, 0, "one block per channel", "native/launch/batchnorm.cpp:19",
            "kReductionBlock = 256"),
        new("cc_batchnorm_train_forward_from_stats_kernel", "batchnorm", Block, 0, "one block per channel and part (up to 8 parts)",
            "native/launch/batchnorm.cpp:19", "kReductionBlock = 256"),
        new("cc_conv2d_forward_kernel", "conv2d", Block, 0, "one thread per output element", Elementwise, ElementwiseText),
        new("cc_conv2d_backward_data_kernel", "conv2d", Block, 0, "one thread per input element", Elementwise, ElementwiseText),
        new("cc_conv2d_backward_weight_kernel", "conv2d", Block, 0, "one warp per weight element", "native/launch/conv.cpp:21", "kWeightGradBlock = 256"),
        new("cc_conv2d_tiled_forward_s1_kernel", "conv2d_tiled", Block, 0, Strips, Tiled, TiledText),
        new("cc_conv2d_tiled_forward_s2_kernel", "conv2d_tiled", Block, 0, Strips, Tiled, TiledText),
        new("cc_conv2d_tiled_forward_bn_stats_s1_kernel", "conv2d_tiled", Block, 0, Strips, Tiled, TiledText),
        new("cc_conv2d_tiled_forward_bn_stats_s2_kernel", "conv2d_tiled", Block, 0, Strips, Tiled, TiledText),
        new("cc_conv2d_tiled_forward_residual_bn_stats_s1_kernel", "conv2d_tiled", Block, 0, Strips, Tiled, TiledText),
        new("cc_conv2d_tiled_forward_residual_bn_stats_s2_kernel", "conv2d_tiled", Block, 0, Strips, Tiled, TiledText),
        new("cc_conv2d_tiled_backward_data_s1_kernel", "conv2d_tiled", Block, 0, Strips, Tiled, TiledText),
        new("cc_conv2d_tiled_backward_data_s2_kernel", "conv2d_tiled", Block, 0, "one block per group of strips of 2×2 dx cells and chunk of channels", Tiled, TiledText),
        new("cc_conv2d_tiled_backward_weight_s1_kernel", "conv2d_tiled", Block, 0, SplitStrips, Tiled, TiledText),
        new("cc_conv2d_tiled_backward_weight_s2_kernel", "conv2d_tiled", Block, 0, SplitStrips, Tiled, TiledText),
        new("cc_conv2d_tiled_backward_s1_kernel", "conv2d_tiled", Block, 0, BothGradients, Tiled, TiledText),
        new("cc_conv2d_tiled_backward_s2_kernel", "conv2d_tiled", Block, 0, BothGradients, Tiled, TiledText),
        new("cc_relu_forward_kernel", "elementwise", Block, 0, OnePerElement, Elementwise, ElementwiseText),
        new("cc_relu_backward_kernel", "elementwise", Block, 0, OnePerElement, Elementwise, ElementwiseText),
        new("cc_add_kernel", "elementwise", Block, 0, OnePerElement, Elementwise, ElementwiseText),
        new("cc_fill_kernel", "elementwise", Block, 0, OnePerElement, Elementwise, ElementwiseText),
        new("cc_scale_kernel", "elementwise", Block, 0, OnePerElement, Elementwise, ElementwiseText),
        new("cc_axpy_kernel", "elementwise", Block, 0, OnePerElement, Elementwise, ElementwiseText),
        new("cc_sum_partials_kernel", "elementwise", Block, 0, "one block per 256 elements, at most 256 blocks", "native/launch/elementwise.cpp:17", "kSumBlock = 256"),
        new("cc_first_nonfinite_kernel", "elementwise", Block, 0, "one block per tensor of the list", "native/include/cheapconv/kernels.h:240", "CC_FIRST_NONFINITE_BLOCK 256"),
        new("cc_sum_final_kernel", "elementwise", Block, 0, "one block", "native/launch/elementwise.cpp:17", "kSumBlock = 256"),
        new("cc_pointwise_forward_kernel", "gemm", Block, 0, "one block per 64×64 output tile", "native/launch/gemm_plan.h:21", "kGemmBlock = 256"),
        new("cc_pointwise_backward_data_kernel", "gemm", Block, 0, "one block per 64×64 output tile", "native/launch/gemm_plan.h:21", "kGemmBlock = 256"),
        new("cc_pointwise_backward_weight_kernel", "gemm", Block, 0, "one block per 64×64 tile and split", "native/launch/gemm_plan.h:21", "kGemmBlock = 256"),
        new("cc_linear_forward_kernel", "gemm", Block, 0, "one block per 64×64 output tile", "native/launch/gemm_plan.h:21", "kGemmBlock = 256"),
        new("cc_linear_backward_data_kernel", "gemm", Block, 0, "one block per 64×64 output tile", "native/launch/gemm_plan.h:21", "kGemmBlock = 256"),
        new("cc_linear_backward_weight_kernel", "gemm", Block, 0, "one block per 64×64 tile and split", "native/launch/gemm_plan.h:21", "kGemmBlock = 256"),
        new("cc_gemm_column_sums_kernel", "gemm", Block, 0, "one thread per column", Elementwise, ElementwiseText),
        new("cc_implicit_gemm_forward_1x1_kernel", "implicit_gemm", ImplicitGemmBlock, ImplicitGemmShared, "one block per 64×64 output tile and group", ImplicitGemm, ImplicitGemmText),
        new("cc_implicit_gemm_forward_1x1_input_bn_kernel", "implicit_gemm", ImplicitGemmBlock, ImplicitGemmShared, "one block per 64×64 output tile", ImplicitGemm,
            ImplicitGemmText),
        new("cc_implicit_gemm_forward_3x3_kernel", "implicit_gemm", ImplicitGemmBlock, ImplicitGemmShared, "one block per 64×64 output tile and group", ImplicitGemm, ImplicitGemmText),
        new("cc_implicit_gemm_forward_3x3_wide_kernel", "implicit_gemm", ImplicitGemmWideBlock, ImplicitGemmWideShared, "one block per 64×128 output tile and group", ImplicitGemmWide, ImplicitGemmWideText),
        new("cc_implicit_gemm_forward_3x3_flat_kernel", "implicit_gemm", ImplicitGemmBlock, ImplicitGemmFlatShared, "one block per 32×128 output tile and group", ImplicitGemmFlat, ImplicitGemmFlatText),
        new("cc_implicit_gemm_backward_data_1x1_kernel", "implicit_gemm", ImplicitGemmBlock, ImplicitGemmShared, "one block per 64×64 output tile", ImplicitGemm, ImplicitGemmText),
        new("cc_implicit_gemm_backward_data_3x3_kernel", "implicit_gemm", ImplicitGemmBlock, ImplicitGemmShared, "one block per 64×64 output tile and group", ImplicitGemm, ImplicitGemmText),
        new("cc_implicit_gemm_backward_data_3x3_stride2_kernel", "implicit_gemm", ImplicitGemmBlock, ImplicitGemmShared, "one block per 64×64 output tile and group", ImplicitGemm, ImplicitGemmText),
        new("cc_implicit_gemm_backward_data_1x1_bn_sums_kernel", "implicit_gemm", ImplicitGemmBlock, ImplicitGemmShared, "one block per 64×64 output tile",
            ImplicitGemm, ImplicitGemmText),
        new("cc_implicit_gemm_backward_weight_1x1_kernel", "implicit_gemm", ImplicitGemmBlock, ImplicitGemmShared, "one block per 64×64 tile, group and split", ImplicitGemm, ImplicitGemmText),
        new("cc_implicit_gemm_backward_weight_1x1_input_bn_kernel", "implicit_gemm", ImplicitGemmBlock, ImplicitGemmInputBnWeightShared,
            "one block per 64×64 tile and split", ImplicitGemm, ImplicitGemmText),
        new("cc_implicit_gemm_backward_weight_3x3_kernel", "implicit_gemm", ImplicitGemmBlock, ImplicitGemmShared, "one block per 64×64 tile, group and split", ImplicitGemm, ImplicitGemmText),
        new("cc_implicit_gemm_backward_1x1_kernel", "implicit_gemm", ImplicitGemmBlock, ImplicitGemmShared, BothGradients, ImplicitGemm, ImplicitGemmText),
        new("cc_implicit_gemm_backward_1x1_input_bn_kernel", "implicit_gemm", ImplicitGemmBlock, ImplicitGemmInputBnWeightShared, BothGradients,
            ImplicitGemm, ImplicitGemmText),
        new("cc_implicit_gemm_backward_3x3_kernel", "implicit_gemm", ImplicitGemmBlock, ImplicitGemmShared, BothGradients, ImplicitGemm, ImplicitGemmText),
        new("cc_implicit_gemm_backward_3x3_stride2_kernel", "implicit_gemm", ImplicitGemmBlock, ImplicitGemmShared, BothGradients, ImplicitGemm, ImplicitGemmText),
        new("cc_cross_entropy_forward_kernel", "losses", Block, 0, "one warp per row", "native/launch/losses.cpp:18", "kRowBlock = 256"),
        new("cc_cross_entropy_backward_kernel", "losses", Block, 0, OnePerElement, Elementwise, ElementwiseText),
        new("cc_kd_forward_kernel", "losses", Block, 0, "one warp per row", "native/launch/losses.cpp:18", "kRowBlock = 256"),
        new("cc_kd_backward_kernel", "losses", Block, 0, OnePerElement, Elementwise, ElementwiseText),
        new("cc_at_forward_kernel", "losses", Block, 0, "one block per sample", "native/launch/losses.cpp:19", "kSampleBlock = 256"),
        new("cc_at_backward_kernel", "losses", Block, 0, "one block per sample", "native/launch/losses.cpp:19", "kSampleBlock = 256"),
        new("cc_loss_reduce_kernel", "losses", Block, 0, "one block", "native/launch/losses.cpp:19", "kSampleBlock = 256"),
        new("cc_count_correct_kernel", "losses", Block, 0, "one warp per row", "native/launch/losses.cpp:18", "kRowBlock = 256"),
        new("cc_count_correct_f32_kernel", "losses", Block, 0, "one warp per row", "native/launch/losses.cpp:18", "kRowBlock = 256"),
        new("cc_sgd_step_kernel", "optim", Block, 0, OnePerElement, Elementwise, ElementwiseText),
        new("cc_global_avg_pool_forward_kernel", "pooling", Block, 0, "one warp per (n, c) plane", "native/launch/pooling.cpp:14", "kPoolBlock = 256"),
        new("cc_global_avg_pool_backward_kernel", "pooling", Block, 0, OnePerElement, Elementwise, ElementwiseText),
        new("cc_zero_pad_forward_kernel", "pooling", Block, 0, "one thread per padded element", Elementwise, ElementwiseText),
        new("cc_zero_pad_backward_kernel", "pooling", Block, 0, "one thread per input element", Elementwise, ElementwiseText),
    }.OrderBy(s => s.Kernel, StringComparer.Ordinal).ToList();

    /// <summary>The launch shape of <paramref name="kernel"/>; null for a kernel that is not in the table.</summary>
    public static KernelLaunchShape? Find(string kernel) => All.FirstOrDefault(s => s.Kernel == kernel);
}
