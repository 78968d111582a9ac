// The C API: kernel registry, launch validation (with the CUDA driver's error names), the worker pool
// and the collection of errors and warnings into the caller's message buffer.
#include "emu_internal.h"

#include <algorithm>
#include <climits>
#include <condition_variable>
#include <cstring>
#include <thread>
#include <xmmintrin.h>

namespace cc_emu {
namespace {

// ---- registry ----------------------------------------------------------------------------------------

struct Registry {
    std::mutex mu;
    std::vector<KernelEntry> kernels; // sorted by name
};

// Index of `name` in the sorted registry, or kernels.size(). Call with r.mu held.
std::size_t kernel_index(const Registry& r, const char* name) {
    auto it = std::lower_bound(r.kernels.begin(), r.kernels.end(), name,
                               [](const KernelEntry& k, const char* n) { return std::strcmp(k.name, n) < 0; });
    if (it != r.kernels.end() && std::strcmp(it->name, name) == 0) return static_cast<std::size_t>(it - r.kernels.begin());
    return r.kernels.size();
}

// Function-local static: kernels register from static initializers of other translation units, whose
// order relative to this one is unspecified.
Registry& registry() {
    static Registry* r = new Registry; // never destroyed: lookups may happen during process exit
    return *r;
}

// The kernel named `name` (nullptr if none) and, in *shared_limit, the dynamic shared memory its launches may use.
const KernelEntry* find_kernel(const char* name, unsigned* shared_limit) {
    Registry& r = registry();
    std::lock_guard<std::mutex> lock(r.mu);
    const std::size_t i = kernel_index(r, name);
    if (i == r.kernels.size()) return nullptr;
    *shared_limit = r.kernels[i].max_dynamic_shared;
    return &r.kernels[i];
}

// ---- worker pool ----------------------------------------------------------------------------------------

// 0 = hardware concurrency, capped at 16.
int workers_for(int requested) {
    return requested > 0 ? requested : std::min(16, static_cast<int>(std::max(1u, std::thread::hardware_concurrency())));
}

// Worker 0 is whichever thread calls cc_emu_launch; workers 1..n-1 are pool threads that sleep between
// launches. Launches are serialized by launch_mu, so one Launch is in flight at a time.
class Pool {
public:
    // Called with launch_mu held (no launch in flight).
    void configure(int requested) {
        const int n = workers_for(requested);
        if (n == static_cast<int>(workers_.size()) && threads_.size() + 1 == workers_.size()) return;
        stop_threads();
        workers_.clear();
        for (int i = 0; i < n; ++i) workers_.push_back(std::make_unique<Worker>());
        // New threads must only react to launches that come after their creation; a stale generation
        // would send them into a launch that is long gone.
        unsigned long long now;
        {
            std::lock_guard<std::mutex> lock(mu_);
            now = generation_;
        }
        for (int i = 1; i < n; ++i) threads_.emplace_back([this, i, now] { thread_main(i, now); });
    }

    void run(Launch& l) {
        const unsigned long long blocks = blocks_to_run(l);
        const unsigned long long helpers = std::min<unsigned long long>(workers_.size() - 1, blocks ? blocks - 1 : 0);
        if (helpers) {
            std::lock_guard<std::mutex> lock(mu_);
            launch_ = &l;
            helpers_ = static_cast<int>(helpers);
            pending_ = static_cast<int>(helpers);
            ++generation_;
            cv_work_.notify_all();
        }
        run_blocks(*workers_[0], l);
        if (helpers) {
            std::unique_lock<std::mutex> lock(mu_);
            cv_done_.wait(lock, [this] { return pending_ == 0; });
            launch_ = nullptr;
        }
    }

    // Joins the pool threads. Runs when the library is unloaded (dlclose) or the process exits: parked
    // threads must not outlive the code they would wake up in.
    void shutdown() { stop_threads(); }

private:
    void thread_main(int index, unsigned long long seen) {
        std::unique_lock<std::mutex> lock(mu_);
        for (;;) {
            cv_work_.wait(lock, [&] { return quit_ || generation_ != seen; });
            if (quit_) return;
            seen = generation_;
            if (index > helpers_) continue; // not needed for this launch
            Launch* l = launch_;
            lock.unlock();
            run_blocks(*workers_[static_cast<std::size_t>(index)], *l);
            lock.lock();
            if (--pending_ == 0) cv_done_.notify_all();
        }
    }

    void stop_threads() {
        {
            std::lock_guard<std::mutex> lock(mu_);
            quit_ = true;
            cv_work_.notify_all();
        }
        for (auto& t : threads_) t.join();
        threads_.clear();
        quit_ = false;
    }

    std::vector<std::unique_ptr<Worker>> workers_;
    std::vector<std::thread> threads_;
    std::mutex mu_;
    std::condition_variable cv_work_, cv_done_;
    Launch* launch_ = nullptr;
    unsigned long long generation_ = 0;
    int helpers_ = 0, pending_ = 0;
    bool quit_ = false;
};

std::mutex launch_mu;                  // serializes launches and reconfiguration
std::atomic<int> requested_workers{0}; // 0 = hardware concurrency
std::atomic<int> strict_mode{0};
std::atomic<int> cluster_kernels{1}; // cc_emu_set_cluster_kernels

// Never destroyed: at process exit, pool threads may be parked in a wait and C# may still hold us.
Pool& pool() {
    static Pool* p = new Pool;
    return *p;
}

__attribute__((destructor)) void shutdown_pool() { pool().shutdown(); }

void copy_message(const std::string& text, char* message, int capacity) {
    if (!message || capacity <= 0) return;
    const std::size_t n = std::min(text.size(), static_cast<std::size_t>(capacity) - 1);
    std::memcpy(message, text.data(), n);
    message[n] = '\0';
}

int reject(int status, const std::string& text, char* message, int capacity) {
    copy_message(format("%s: %s", cc_emu_status_name(status), text.c_str()), message, capacity);
    return status;
}


} // namespace
} // namespace cc_emu

namespace cc_emu {

int worker_thread_count() { return workers_for(requested_workers.load()); }

bool cluster_kernels_enabled() { return cluster_kernels.load() != 0; }

} // namespace cc_emu

namespace cc_emu_detail {

bool register_kernel(const char* name, Invoker invoke, int param_count, unsigned cluster_x, unsigned cluster_y, unsigned cluster_z) {
    cc_emu::Registry& r = cc_emu::registry();
    std::lock_guard<std::mutex> lock(r.mu);
    auto it = std::lower_bound(r.kernels.begin(), r.kernels.end(), name,
                               [](const cc_emu::KernelEntry& k, const char* n) { return std::strcmp(k.name, n) < 0; });
    // A duplicate name cannot link (kernels are extern "C"), so a repeat is the same kernel.
    if (it == r.kernels.end() || std::strcmp(it->name, name) != 0)
        r.kernels.insert(it, cc_emu::KernelEntry{name, invoke, param_count, cc_dim3{cluster_x, cluster_y, cluster_z},
                                                 CC_EMU_DEFAULT_DYNAMIC_SHARED});
    return true;
}

} // namespace cc_emu_detail

extern "C" {

CC_EMU_API int cc_emu_version(void) { return CC_EMU_VERSION; }

CC_EMU_API const char* cc_emu_status_name(int status) {
    switch (status) {
    case CC_EMU_SUCCESS: return "CUDA_SUCCESS";
    case CC_EMU_ERROR_INVALID_VALUE: return "CUDA_ERROR_INVALID_VALUE";
    case CC_EMU_ERROR_OUT_OF_MEMORY: return "CUDA_ERROR_OUT_OF_MEMORY";
    case CC_EMU_ERROR_NOT_FOUND: return "CUDA_ERROR_NOT_FOUND";
    case CC_EMU_DIVERGENT_BARRIER: return "CC_EMU_DIVERGENT_BARRIER";
    case CC_EMU_DEADLOCK: return "CC_EMU_DEADLOCK";
    case CC_EMU_WARP_MISMATCH: return "CC_EMU_WARP_MISMATCH";
    case CC_EMU_INACTIVE_LANE_READ: return "CC_EMU_INACTIVE_LANE_READ";
    case CC_EMU_EXITED_AT_BARRIER: return "CC_EMU_EXITED_AT_BARRIER";
    case CC_EMU_INVALID_OPERAND: return "CC_EMU_INVALID_OPERAND";
    default: return "CC_EMU_UNKNOWN_STATUS";
    }
}

CC_EMU_API int cc_emu_kernel_count(void) {
    cc_emu::Registry& r = cc_emu::registry();
    std::lock_guard<std::mutex> lock(r.mu);
    return static_cast<int>(r.kernels.size());
}

CC_EMU_API const char* cc_emu_kernel_name(int index) {
    cc_emu::Registry& r = cc_emu::registry();
    std::lock_guard<std::mutex> lock(r.mu);
    if (index < 0 || static_cast<std::size_t>(index) >= r.kernels.size()) return nullptr;
    return r.kernels[static_cast<std::size_t>(index)].name;
}

CC_EMU_API int cc_emu_set_worker_threads(int count) {
    if (count < 0 || count > 256) return CC_EMU_ERROR_INVALID_VALUE;
    cc_emu::requested_workers.store(count);
    return CC_EMU_SUCCESS;
}

CC_EMU_API int cc_emu_set_max_dynamic_shared(const char* kernel, unsigned bytes) {
    if (!kernel) return CC_EMU_ERROR_INVALID_VALUE;
    cc_emu::Registry& r = cc_emu::registry();
    std::lock_guard<std::mutex> lock(r.mu);
    const std::size_t i = cc_emu::kernel_index(r, kernel);
    if (i == r.kernels.size()) return CC_EMU_ERROR_NOT_FOUND;
    if (bytes > CC_EMU_MAX_DYNAMIC_SHARED) return CC_EMU_ERROR_INVALID_VALUE;
    r.kernels[i].max_dynamic_shared = bytes;
    return CC_EMU_SUCCESS;
}

CC_EMU_API int cc_emu_set_strict(int strict) { return cc_emu::strict_mode.exchange(strict != 0); }

CC_EMU_API int cc_emu_set_cluster_kernels(int enabled) { return cc_emu::cluster_kernels.exchange(enabled != 0); }

CC_EMU_API int cc_emu_launch(const char* kernel, cc_dim3 grid, cc_dim3 block, unsigned dynamic_shared_bytes, void** args,
                             char* message, int message_capacity) {
    using namespace cc_emu;
    copy_message("", message, message_capacity);
    if (!kernel) return reject(CC_EMU_ERROR_INVALID_VALUE, "kernel name is NULL", message, message_capacity);
    unsigned shared_limit = 0;
    const KernelEntry* entry = find_kernel(kernel, &shared_limit);
    if (!entry)
        return reject(CC_EMU_ERROR_NOT_FOUND,
                      format("no kernel named '%s' in this library (%d registered)", kernel, cc_emu_kernel_count()), message,
                      message_capacity);
    // The CUDA driver's limits (compute capability 5.0 and later).
    if (block.x == 0 || block.y == 0 || block.z == 0 || block.x > 1024 || block.y > 1024 || block.z > 64 ||
        static_cast<unsigned long long>(block.x) * block.y * block.z > 1024)
        return reject(CC_EMU_ERROR_INVALID_VALUE,
                      format("kernel %s: invalid block (%u,%u,%u): each dimension must be at least 1, x and y at most 1024, "
                             "z at most 64, and x*y*z at most 1024 threads",
                             kernel, block.x, block.y, block.z),
                      message, message_capacity);
    if (grid.x == 0 || grid.y == 0 || grid.z == 0 || grid.x > static_cast<unsigned>(INT_MAX) || grid.y > 65535 ||
        grid.z > 65535)
        return reject(CC_EMU_ERROR_INVALID_VALUE,
                      format("kernel %s: invalid grid (%u,%u,%u): each dimension must be at least 1, x at most 2^31-1, "
                             "y and z at most 65535",
                             kernel, grid.x, grid.y, grid.z),
                      message, message_capacity);
    if (dynamic_shared_bytes > shared_limit)
        return reject(CC_EMU_ERROR_INVALID_VALUE,
                      shared_limit == CC_EMU_DEFAULT_DYNAMIC_SHARED
                          ? format("kernel %s: %u bytes of dynamic shared memory exceed the 48 KiB (%u bytes) per-block limit "
                                   "of a launch without cuFuncSetAttribute (CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES; "
                                   "cc_emu_set_max_dynamic_shared here)",
                                   kernel, dynamic_shared_bytes, shared_limit)
                          : format("kernel %s: %u bytes of dynamic shared memory exceed the %u bytes it was opted in to "
                                   "(cc_emu_set_max_dynamic_shared)",
                                   kernel, dynamic_shared_bytes, shared_limit),
                      message, message_capacity);
    // A compile-time cluster (__cluster_dims__): the driver refuses a grid that is not a multiple of it. At most 8
    // blocks, the portable cluster size (the emulator runs them together; a kernel asking for more would need the
    // non-portable opt-in on the GPU).
    const cc_dim3 cluster = entry->cluster;
    const unsigned long long cluster_size = static_cast<unsigned long long>(cluster.x) * cluster.y * cluster.z;
    if (cluster_size == 0 || cluster_size > 8)
        return reject(CC_EMU_ERROR_INVALID_VALUE,
                      format("kernel %s: cluster (%u,%u,%u) must have 1 to 8 blocks", kernel, cluster.x, cluster.y, cluster.z),
                      message, message_capacity);
    if (grid.x % cluster.x != 0 || grid.y % cluster.y != 0 || grid.z % cluster.z != 0)
        return reject(CC_EMU_ERROR_INVALID_VALUE,
                      format("kernel %s: grid (%u,%u,%u) is not a multiple of its cluster (%u,%u,%u)", kernel, grid.x, grid.y,
                             grid.z, cluster.x, cluster.y, cluster.z),
                      message, message_capacity);
    for (int i = 0; i < entry->param_count; ++i)
        if (!args || !args[i])
            return reject(CC_EMU_ERROR_INVALID_VALUE,
                          format("kernel %s takes %d argument(s) but %s is NULL", kernel, entry->param_count,
                                 args ? format("args[%d]", i).c_str() : "args"),
                          message, message_capacity);

    std::lock_guard<std::mutex> lock(launch_mu);
    Launch l;
    l.kernel = entry;
    l.args = args;
    l.grid = grid;
    l.block = block;
    l.dynamic_shared_bytes = dynamic_shared_bytes;
    l.threads_per_block = block.x * block.y * block.z;
    l.total_blocks = static_cast<unsigned long long>(grid.x) * grid.y * grid.z;
    l.cluster = cluster;
    l.cluster_size = static_cast<unsigned>(cluster_size);
    l.total_clusters = l.total_blocks / cluster_size;
    l.strict = strict_mode.load() != 0;
    // Fibers start with the launching thread's floating-point control state (rounding, FTZ/DAZ).
    l.mxcsr = _mm_getcsr();
    unsigned short cw = 0;
    __asm__ volatile("fnstcw %0" : "=m"(cw));
    l.fpu_cw = cw;
#if defined(CC_EMU_PROFILE)
    prof::launch_begin(l);
#endif
    try {
        pool().configure(requested_workers.load());
        pool().run(l);
    } catch (const std::exception& e) {
        // Thread creation or allocation failed; nothing may escape through the C API.
#if defined(CC_EMU_PROFILE)
        l.status = CC_EMU_ERROR_OUT_OF_MEMORY;
        prof::launch_end(l);
#endif
        return reject(CC_EMU_ERROR_OUT_OF_MEMORY, format("kernel %s: %s", kernel, e.what()), message, message_capacity);
    }
#if defined(CC_EMU_PROFILE)
    prof::launch_end(l);
#endif
    if (l.status != 0) {
        copy_message(l.error, message, message_capacity);
        return l.status;
    }
    copy_message(l.warning, message, message_capacity);
    return CC_EMU_SUCCESS;
}

} // extern "C"
