// The embedded images (module_images.h). The PTX symbols are strong: a module listed in
// CC_KERNEL_MODULES without its PTX does not link. The fatbin symbols and the SASS list are weak: without
// nvcc they are absent and resolve to null, and the CUDA runtime JIT-compiles the PTX instead.
#include "module_images.h"

#include <cstdio>
#include <cstring>

#define CC_IMAGE_SYMBOL __attribute__((visibility("hidden")))
#define CC_DECLARE_IMAGES(module)                                                      \
    extern "C" CC_IMAGE_SYMBOL const char cc_image_##module##_ptx[];                   \
    extern "C" CC_IMAGE_SYMBOL __attribute__((weak)) const unsigned char cc_image_##module##_fatbin[];
CC_KERNEL_MODULES(CC_DECLARE_IMAGES)
#undef CC_DECLARE_IMAGES
extern "C" CC_IMAGE_SYMBOL __attribute__((weak)) const char cc_image_fatbin_sass[];

namespace cc {

ModuleImages module_images(ModuleId module)
{
    switch (module) {
#define CC_MODULE_IMAGES(name) \
    case ModuleId::name: return {cc_image_##name##_ptx, cc_image_##name##_fatbin};
        CC_KERNEL_MODULES(CC_MODULE_IMAGES)
#undef CC_MODULE_IMAGES
    }
    return {nullptr, nullptr};
}

const char* fatbin_sass_architectures() { return cc_image_fatbin_sass != nullptr ? cc_image_fatbin_sass : ""; }

bool fatbin_has_sass(int major, int minor)
{
    char arch[16];
    std::snprintf(arch, sizeof arch, "%d%d", major, minor);
    const std::size_t length = std::strlen(arch);
    // A whole word of the space-separated list: "80" must not match "800".
    for (const char* at = fatbin_sass_architectures(); (at = std::strstr(at, arch)) != nullptr; at += length) {
        const bool starts = at == fatbin_sass_architectures() || at[-1] == ' ';
        const bool ends = at[length] == '\0' || at[length] == ' ';
        if (starts && ends) return true;
    }
    return false;
}

} // namespace cc
