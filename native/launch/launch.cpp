// The non-template half of launch.h: hand a packed launch or a memset to the runtime and, when it
// fails, say which kernel, geometry and problem it was.
#include "launch.h"

namespace cc {

cc_status launch_packed(const cc_handle_s& handle, KernelId kernel, const Geometry& geometry, void** args, ArgSizes sizes,
                        void* stream, const ProblemText& text)
{
    Reason why;
    const cc_status status = handle.runtime->launch(kernel, geometry, args, sizes, stream, why);
    if (status == CC_SUCCESS) return CC_SUCCESS;
    char problem[512];
    text.write(problem, sizeof problem);
    const Geometry& g = geometry;
    return fail(status, "%s (grid (%u,%u,%u), block (%u,%u,%u), %u bytes of dynamic shared memory) failed for %s: %s",
                kernel_name(kernel), g.grid.x, g.grid.y, g.grid.z, g.block.x, g.block.y, g.block.z, g.shared_bytes, problem,
                why.text);
}

cc_status memset32(const cc_handle_s& handle, void* destination, std::uint32_t value, std::size_t count, void* stream,
                   const ProblemText& text)
{
    Reason why;
    const cc_status status = handle.runtime->memset32(destination, value, count, stream, why);
    if (status == CC_SUCCESS) return CC_SUCCESS;
    char problem[512];
    text.write(problem, sizeof problem);
    return fail(status, "setting %zu 32-bit words at %p to 0x%x failed, for %s: %s", count, destination, value, problem,
                why.text);
}

} // namespace cc
