// The handle calls of the C ABI (cc_create, cc_destroy, cc_describe, cc_backend_kind), identical in both
// libraries: they only hand over to whichever runtime the library links (runtime.h).
#include "runtime.h"
#include "status.h"

#include <new>

extern "C" {

CC_API cc_status cc_create(cc_handle* handle, int device)
{
    if (handle == nullptr) return cc::fail(CC_ERROR_INVALID_VALUE, "cc_create: handle is NULL (pass the address of a cc_handle)");
    if (device < CC_CURRENT_CONTEXT)
        return cc::fail(CC_ERROR_INVALID_VALUE,
                        "cc_create: device must be a device ordinal (>= 0) or CC_CURRENT_CONTEXT (-1), got %d", device);
    std::unique_ptr<cc::Runtime> runtime;
    CC_TRY(cc::create_runtime(device, &runtime));
    auto* created = new (std::nothrow) cc_handle_s{std::move(runtime)};
    if (created == nullptr) return cc::fail(CC_ERROR_INTERNAL, "cc_create: out of host memory for the handle");
    *handle = created;
    return CC_SUCCESS;
}

CC_API cc_status cc_destroy(cc_handle handle)
{
    if (handle == nullptr) return cc::fail(CC_ERROR_INVALID_VALUE, "cc_destroy: handle is NULL");
    delete handle;
    return CC_SUCCESS;
}

CC_API cc_status cc_describe(cc_handle handle, char* text, size_t capacity)
{
    if (handle == nullptr) return cc::fail(CC_ERROR_INVALID_VALUE, "cc_describe: handle is NULL (create one with cc_create)");
    if (text == nullptr || capacity == 0)
        return cc::fail(CC_ERROR_INVALID_VALUE, "cc_describe: text is NULL or capacity is 0 (no room for the terminating NUL)");
    handle->runtime->describe(text, capacity);
    return CC_SUCCESS;
}

CC_API cc_backend cc_backend_kind(void) { return cc::runtime_backend(); }

} // extern "C"
