// The fused SGD step, fp32, PyTorch's torch.optim.SGD semantics with dampening 0. The C# reference is
// CpuBackend.SgdStep (src/CheapConv/Backends/CpuBackend.Loss.cs); the launcher native/launch/sgd.cpp.
//
// Launch geometry: cc_sgd_step_kernel  one thread per parameter element, 1-D grid, any block size.
// Each element is read and written by one thread only, so the step is in place and deterministic.
#include "cheapconv/cuda_shim.h"
#include "cheapconv/kernels.h" // the declarations these definitions must match

// d = g + weight_decay * p;  if momentum != 0: buf = momentum * buf + d, d = nesterov ? d + momentum * buf : buf;
// p -= lr * d. With momentum 0 the buffer is neither read nor written (PyTorch keeps none), so it may
// hold anything; with momentum it must start at zero, which makes the first step's buf = d, PyTorch's clone.
extern "C" __global__ void cc_sgd_step_kernel(int length, float* __restrict__ parameter, const float* __restrict__ gradient,
                                       float* __restrict__ momentum_buffer, float learning_rate, float momentum,
                                       float weight_decay, int nesterov)
{
    const int index = blockIdx.x * blockDim.x + threadIdx.x;
    if (index >= length) return;

    const float p = parameter[index];
    float d = gradient[index];
    if (weight_decay != 0.0f) d = d + weight_decay * p;
    if (momentum != 0.0f) {
        const float buf = momentum * momentum_buffer[index] + d;
        momentum_buffer[index] = buf;
        d = nesterov ? d + momentum * buf : buf;
    }
    parameter[index] = p - learning_rate * d;
}

CC_REGISTER_KERNEL(cc_sgd_step_kernel);
