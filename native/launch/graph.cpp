// Stream capture and graphs (cc_capture_begin / cc_capture_end / cc_graph_launch / cc_graph_destroy) and the ordered copy
// and fill (cc_memcpy_async / cc_memset8_async) of the C ABI, identical in both libraries: each call checks its
// arguments and hands over to the library's runtime (runtime.h), whose capture is the driver's on a GPU and a recording of
// the launcher's calls in the emulator.
#include "checks.h"
#include "runtime.h"
#include "status.h"

#include <cstdint>
#include <new>

// The opaque cc_graph of cheapconv.h: the runtime's graph and the handle it belongs to (checked on every use).
struct cc_graph_s {
    cc_handle owner;
    std::unique_ptr<cc::Graph> graph;
};

namespace {

cc_status runtime_failure(cc_status status, const char* call, const cc::Reason& why)
{
    return cc::fail(status, "%s: %s", call, why.text);
}

cc_status check_graph(const char* call, cc_handle handle, cc_graph graph)
{
    if (graph == nullptr) return cc::fail(CC_ERROR_INVALID_VALUE, "%s: graph is NULL (make one with cc_capture_end)", call);
    if (graph->owner != handle)
        return cc::fail(CC_ERROR_INVALID_VALUE, "%s: the graph was captured with another handle; use that one", call);
    return CC_SUCCESS;
}

} // namespace

extern "C" {

CC_API cc_status cc_capture_begin(cc_handle handle, void* stream)
{
    constexpr const char* call = "cc_capture_begin";
    CC_TRY(cc::check_handle(call, handle));
    cc::Reason why;
    const cc_status status = handle->runtime->begin_capture(stream, why);
    return status == CC_SUCCESS ? CC_SUCCESS : runtime_failure(status, call, why);
}

CC_API cc_status cc_capture_end(cc_handle handle, void* stream, cc_graph* graph)
{
    constexpr const char* call = "cc_capture_end";
    CC_TRY(cc::check_handle(call, handle));
    if (graph == nullptr) return cc::fail(CC_ERROR_INVALID_VALUE, "%s: graph is NULL (pass the address of a cc_graph)", call);
    cc::Reason why;
    std::unique_ptr<cc::Graph> made;
    const cc_status status = handle->runtime->end_capture(stream, &made, why);
    if (status != CC_SUCCESS) return runtime_failure(status, call, why);
    auto* wrapped = new (std::nothrow) cc_graph_s{handle, std::move(made)};
    if (wrapped == nullptr) return cc::fail(CC_ERROR_INTERNAL, "%s: out of host memory for the graph", call);
    *graph = wrapped;
    return CC_SUCCESS;
}

CC_API cc_status cc_graph_launch(cc_handle handle, cc_graph graph, void* stream)
{
    constexpr const char* call = "cc_graph_launch";
    CC_TRY(cc::check_handle(call, handle));
    CC_TRY(check_graph(call, handle, graph));
    cc::Reason why;
    const cc_status status = graph->graph->launch(stream, why);
    return status == CC_SUCCESS ? CC_SUCCESS : runtime_failure(status, call, why);
}

CC_API cc_status cc_graph_destroy(cc_handle handle, cc_graph graph)
{
    constexpr const char* call = "cc_graph_destroy";
    if (graph == nullptr) return CC_SUCCESS;
    CC_TRY(cc::check_handle(call, handle));
    CC_TRY(check_graph(call, handle, graph));
    delete graph;
    return CC_SUCCESS;
}

CC_API cc_status cc_memcpy_async(cc_handle handle, void* destination, const void* source, size_t bytes, void* stream)
{
    constexpr const char* call = "cc_memcpy_async";
    CC_TRY(cc::check_handle(call, handle));
    if (bytes == 0) return CC_SUCCESS;
    CC_TRY(cc::check_not_null(call, destination, "destination"));
    CC_TRY(cc::check_not_null(call, source, "source"));
    const auto size = static_cast<std::int64_t>(bytes);
    CC_TRY(cc::check_disjoint(call, {{destination, size, "destination"}}, {{source, size, "source"}}));
    cc::Reason why;
    const cc_status status = handle->runtime->memcpy(destination, source, bytes, stream, why);
    return status == CC_SUCCESS ? CC_SUCCESS : runtime_failure(status, call, why);
}

CC_API cc_status cc_memset8_async(cc_handle handle, void* destination, unsigned char value, size_t bytes, void* stream)
{
    constexpr const char* call = "cc_memset8_async";
    CC_TRY(cc::check_handle(call, handle));
    if (bytes == 0) return CC_SUCCESS;
    CC_TRY(cc::check_not_null(call, destination, "destination"));
    cc::Reason why;
    const cc_status status = handle->runtime->memset8(destination, value, bytes, stream, why);
    return status == CC_SUCCESS ? CC_SUCCESS : runtime_failure(status, call, why);
}

} // extern "C"
