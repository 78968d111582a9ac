// The kernel images embedded in libcheapconv.so: per kernels/<module>.cu, the clang PTX (always) and the
// nvcc fatbin (where nvcc built one). The bytes come from build/gen/images.S, which the Makefile writes
// with .incbin; this interface hides the symbols.
#ifndef CHEAPCONV_LAUNCH_MODULE_IMAGES_H
#define CHEAPCONV_LAUNCH_MODULE_IMAGES_H

#include "kernel_table.h"

namespace cc {

struct ModuleImages {
    const char* ptx;      // NUL-terminated PTX text (clang, .target sm_80), JIT-compiled by the driver
    const void* fatbin;   // nvcc fatbin with SASS for fatbin_sass_architectures(), or nullptr
};

ModuleImages module_images(ModuleId module);

// The SASS architectures the fatbins hold, as the Makefile's NVCC_SASS ("80 90"); "" without fatbins.
const char* fatbin_sass_architectures();

// Whether the fatbins hold SASS for exactly this compute capability (e.g. 9, 0 -> "90").
bool fatbin_has_sass(int major, int minor);

} // namespace cc

#endif
