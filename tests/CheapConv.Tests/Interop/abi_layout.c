/* Prints the size of every struct of cheapconv.h and the offset of every field, one per line:
 *   cc_linear_problem 12
 *   cc_linear_problem.in_features 4
 * AbiLayoutTests compares them with the C# twins. Built by the test project as C99, which also checks that the
 * header is includable from C99 as it promises. */
#include <stddef.h>
#include <stdio.h>

#include "cheapconv.h"

#define SIZE(type) printf("%s %zu\n", #type, sizeof(type))
#define FIELD(type, field) printf("%s.%s %zu\n", #type, #field, offsetof(type, field))

int main(void)
{
    SIZE(cc_conv_problem);
    FIELD(cc_conv_problem, n); FIELD(cc_conv_problem, c); FIELD(cc_conv_problem, h); FIELD(cc_conv_problem, w);
    FIELD(cc_conv_problem, k); FIELD(cc_conv_problem, r); FIELD(cc_conv_problem, s);
    FIELD(cc_conv_problem, pad_h); FIELD(cc_conv_problem, pad_w);
    FIELD(cc_conv_problem, stride_h); FIELD(cc_conv_problem, stride_w);
    FIELD(cc_conv_problem, groups); FIELD(cc_conv_problem, p); FIELD(cc_conv_problem, q);
    FIELD(cc_conv_problem, layout); FIELD(cc_conv_problem, dtype);

    SIZE(cc_options);
    FIELD(cc_options, algo); FIELD(cc_options, split_chunk); FIELD(cc_options, precision); FIELD(cc_options, accumulate);

    SIZE(cc_linear_problem);
    FIELD(cc_linear_problem, n); FIELD(cc_linear_problem, in_features); FIELD(cc_linear_problem, out_features);

    SIZE(cc_batchnorm_problem);
    FIELD(cc_batchnorm_problem, n); FIELD(cc_batchnorm_problem, c); FIELD(cc_batchnorm_problem, h);
    FIELD(cc_batchnorm_problem, w); FIELD(cc_batchnorm_problem, eps); FIELD(cc_batchnorm_problem, momentum);
    FIELD(cc_batchnorm_problem, relu); FIELD(cc_batchnorm_problem, accumulate);

    SIZE(cc_elementwise_problem);
    FIELD(cc_elementwise_problem, length);

    SIZE(cc_pool_problem);
    FIELD(cc_pool_problem, n); FIELD(cc_pool_problem, c); FIELD(cc_pool_problem, h); FIELD(cc_pool_problem, w);
    FIELD(cc_pool_problem, pad_top); FIELD(cc_pool_problem, pad_bottom);
    FIELD(cc_pool_problem, pad_left); FIELD(cc_pool_problem, pad_right);

    SIZE(cc_conv_epilogue);
    FIELD(cc_conv_epilogue, residual); FIELD(cc_conv_epilogue, bn_gamma); FIELD(cc_conv_epilogue, bn_beta);
    FIELD(cc_conv_epilogue, bn_mean); FIELD(cc_conv_epilogue, bn_var); FIELD(cc_conv_epilogue, activated);
    FIELD(cc_conv_epilogue, bn_eps);
    SIZE(cc_conv_input_bn);
    FIELD(cc_conv_input_bn, mean); FIELD(cc_conv_input_bn, invstd); FIELD(cc_conv_input_bn, gamma);
    FIELD(cc_conv_input_bn, beta); FIELD(cc_conv_input_bn, relu);
    SIZE(cc_tensor_ref);
    FIELD(cc_tensor_ref, data); FIELD(cc_tensor_ref, length);
    SIZE(cc_loss_problem);
    FIELD(cc_loss_problem, n); FIELD(cc_loss_problem, classes); FIELD(cc_loss_problem, temperature);
    FIELD(cc_loss_problem, c); FIELD(cc_loss_problem, h); FIELD(cc_loss_problem, w);

    SIZE(cc_sgd_problem);
    FIELD(cc_sgd_problem, length); FIELD(cc_sgd_problem, learning_rate); FIELD(cc_sgd_problem, momentum);
    FIELD(cc_sgd_problem, weight_decay); FIELD(cc_sgd_problem, nesterov);

    /* The enums travel as ints; their values are the C# enums' values. */
    printf("enum.CC_ALGO_GEMM %d\n", (int)CC_ALGO_GEMM);
    printf("enum.CC_ALGO_IMPLICIT_GEMM %d\n", (int)CC_ALGO_IMPLICIT_GEMM);
    printf("enum.CC_PRECISION_FP32 %d\n", (int)CC_PRECISION_FP32);
    printf("enum.CC_ALGO_TILED %d\n", (int)CC_ALGO_TILED);
    printf("enum.CC_CONV_BACKWARD_WEIGHT %d\n", (int)CC_CONV_BACKWARD_WEIGHT);
    printf("enum.CC_CONV_BACKWARD %d\n", (int)CC_CONV_BACKWARD);
    printf("enum.CC_BACKEND_EMULATOR %d\n", (int)CC_BACKEND_EMULATOR);
    printf("enum.CC_ERROR_INTERNAL %d\n", (int)CC_ERROR_INTERNAL);
    printf("enum.CC_CURRENT_CONTEXT %d\n", CC_CURRENT_CONTEXT);
    printf("enum.CC_VERSION_MAJOR %d\n", CC_VERSION_MAJOR);
    printf("enum.CC_SPLIT_COUNTER_BYTES %d\n", CC_SPLIT_COUNTER_BYTES);
    return 0;
}
