// The kernels as the launchers and runtimes see them, all derived from CC_KERNELS in cheapconv/kernels.h:
// an id per kernel, its extern "C" name, its module (the kernels/<module>.cu it lives in, which is also
// the PTX/fatbin image the CUDA runtime loads it from) and, at compile time, its declared signature.
#ifndef CHEAPCONV_LAUNCH_KERNEL_TABLE_H
#define CHEAPCONV_LAUNCH_KERNEL_TABLE_H

#include "cheapconv/kernels.h"

namespace cc {

enum class KernelId : int {
#define CC_KERNEL_ID(module, name) name,
    CC_KERNELS(CC_KERNEL_ID)
#undef CC_KERNEL_ID
};

enum class ModuleId : int {
#define CC_MODULE_ID(module) module,
    CC_KERNEL_MODULES(CC_MODULE_ID)
#undef CC_MODULE_ID
};

#define CC_COUNT_ONE(...) +1
inline constexpr int kKernelCount = 0 CC_KERNELS(CC_COUNT_ONE);
inline constexpr int kModuleCount = 0 CC_KERNEL_MODULES(CC_COUNT_ONE);
#undef CC_COUNT_ONE

namespace detail {
inline constexpr const char* kKernelNames[] = {
#define CC_KERNEL_STRING(module, name) "cc_" #name "_kernel",
    CC_KERNELS(CC_KERNEL_STRING)
#undef CC_KERNEL_STRING
};
inline constexpr ModuleId kKernelModules[] = {
#define CC_KERNEL_MODULE(module, name) ModuleId::module,
    CC_KERNELS(CC_KERNEL_MODULE)
#undef CC_KERNEL_MODULE
};
inline constexpr const char* kModuleNames[] = {
#define CC_MODULE_STRING(module) #module,
    CC_KERNEL_MODULES(CC_MODULE_STRING)
#undef CC_MODULE_STRING
};
} // namespace detail

// "cc_conv2d_forward_kernel": the name in the PTX, the fatbin and the emulator's registry.
constexpr const char* kernel_name(KernelId id) { return detail::kKernelNames[static_cast<int>(id)]; }
constexpr ModuleId kernel_module(KernelId id) { return detail::kKernelModules[static_cast<int>(id)]; }
// "conv2d": the kernels/<name>.cu source and its images.
constexpr const char* module_name(ModuleId id) { return detail::kModuleNames[static_cast<int>(id)]; }

// KernelSignature<KernelId::conv2d_forward>::type is decltype(&cc_conv2d_forward_kernel). Unevaluated:
// naming the type does not odr-use the kernel, so the CUDA library links without kernel code.
template <KernelId Id>
struct KernelSignature;
#define CC_KERNEL_SIGNATURE(module, name)                      \
    template <>                                                \
    struct KernelSignature<KernelId::name> {                   \
        using type = decltype(&CC_KERNEL_NAME(name));          \
    };
CC_KERNELS(CC_KERNEL_SIGNATURE)
#undef CC_KERNEL_SIGNATURE

} // namespace cc

#endif
