// Internal structures of the CheapConv CUDA emulator. Nothing here is exported from the library.
//
// Layering:
//   fiber.cpp      stacks, starting fibers and switching between a fiber and its worker's scheduler,
//                  including the ASan/TSan fiber annotations (the only place that knows about them)
//   scheduler.cpp  runs one block: fibers round-robin, __syncthreads and warp-op rendezvous, diagnostics;
//                  also the cc_emu_detail entry points that kernel code calls through cuda_shim.h
//   warp_matrix.cpp what the warp-collective matrix operations compute once all lanes arrived (mma, ldmatrix)
//   async_copy.cpp the per-thread queue of cp.async copies (issue, commit, wait)
//   launch.cpp     C API: validation, kernel registry, worker pool, error/warning collection
#ifndef CHEAPCONV_EMU_INTERNAL_H
#define CHEAPCONV_EMU_INTERNAL_H

#include "cheapconv/cuda_shim.h"
#include "cc_emu.h"

#include <atomic>
#include <cstddef>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

// Sanitizer builds. ASan is detected from the compiler; the TSan build compiles this runtime *without*
// -fsanitize=thread (so TSan only sees kernel memory accesses, never the scheduler's bookkeeping) and
// defines CC_EMU_TSAN=1 so that the fiber and synchronization annotations are compiled in.
#if defined(__SANITIZE_ADDRESS__)
#define CC_EMU_ASAN 1
#endif
#if defined(__SANITIZE_THREAD__) && !defined(CC_EMU_TSAN)
#define CC_EMU_TSAN 1
#endif

namespace cc_emu {

#if defined(CC_EMU_PROFILE)
// The profiling library's recorder (profile.cpp; only in libcheapconv_emu_profile.so).
namespace prof {
struct LaunchProfile;
struct WorkerProfile;
} // namespace prof
#endif

using cc_emu_detail::ThreadContext;
using cc_emu_detail::WarpOp;

struct Worker;
struct Block;

// kFaulted: the thread made the launch fail (e.g. static shared memory past the limit) and never resumes.
// kAtClusterBarrier: at cc_cluster_sync, which releases when every thread of every block of the cluster is there.
enum class FiberState : unsigned char { kReady, kAtBarrier, kAtWarpOp, kAtClusterBarrier, kExited, kFaulted };

// One CUDA thread's cp.async copies that no wait has completed yet (async_copy.cpp).
struct AsyncCopies {
    std::vector<cc_emu_detail::AsyncCopy> pending; // issue order
    std::vector<unsigned> group;                   // group of pending[i]: the number of commits before its issue
    unsigned committed = 0;                        // commit_group calls so far
    std::vector<cc_emu_detail::AsyncCopy> done;    // what the last wait completed, for the shim to perform
    void clear() {
        pending.clear();
        group.clear();
        done.clear();
        committed = 0;
    }
};

// One CUDA thread. Fibers are owned by a Worker and reused for every block that worker runs; each block
// restarts them from a fresh initial frame.
struct Fiber {
    void* sp = nullptr;              // saved stack pointer while switched out
    char* stack_lo = nullptr;        // usable stack [stack_lo, stack_lo + stack_size), guard page below
    std::size_t stack_size = 0;
    char* map_base = nullptr;        // the whole mapping, guard page included
    std::size_t map_size = 0;
    Worker* worker = nullptr;
    bool abandoned = false;          // left suspended mid-kernel by an aborted block: reset sanitizer state
    void* asan_fake_stack = nullptr;
    void* tsan_fiber = nullptr;

    ThreadContext ctx{};             // what threadIdx/blockIdx/... read
    unsigned linear = 0;             // x + y*bx + z*bx*by
    Block* block = nullptr;          // the block (of the worker's cluster) this thread belongs to
    unsigned cluster_linear = 0;     // rank * (threads per block rounded up to a warp) + linear: distinct warps per block
    unsigned lane = 0, warp = 0;
    FiberState state = FiberState::kReady;

    // Where the thread waits (valid in kAtBarrier / kAtWarpOp).
    const char* file = nullptr;
    unsigned line = 0;
    WarpOp op = WarpOp::kSyncWarp;
    unsigned mask = 0, value = 0;
    int operand = 0, width = 32;     // shuffle source lane / delta / xor mask, and width
    unsigned result = 0;             // warp op result, written by the scheduler
    const void* collective_in = nullptr; // warp_collective: this lane's operands ...
    void* collective_out = nullptr;      // ... and where its results go (both in the lane's frame)
    AsyncCopies async_copies;

    // TSan: happens-before objects. Heap addresses; TSan keys synchronization objects by address.
    char barrier_sync_parity = 0;    // which Block::barrier_sync slot this thread released into
    unsigned char warp_parity = 0;   // which of warp_sync this thread releases into next
    char warp_sync[2] = {0, 0};
    unsigned group = 0;              // lanes of the resolved warp op (for TSan acquires)
    unsigned group_parity = 0;       // bit L = parity lane L released into
};

// Per-block state that outlives a single fiber switch.
// A block's static shared memory (CC_STATIC_SHARED): one arena per worker, reused by every block it runs. Each
// variable gets 16-byte aligned bytes of its own, filled with 0xff when the block first declares it (shared memory
// starts out undefined on a GPU), with a redzone after it that ASan builds keep poisoned (an index past the end is
// caught as with the dynamic buffer). Only the requested bytes count against CUDA's 48 KiB static limit.
struct StaticShared {
    static constexpr unsigned kLimit = 48 * 1024;     // CUDA's per-block limit for static __shared__ variables
    static constexpr unsigned kRedzone = 32;          // bytes after each variable, never handed out
    static constexpr unsigned kMaxVariables = 64;     // per kernel; more fails the launch
    static constexpr std::size_t kCapacity = kLimit + kMaxVariables * (kRedzone + 16);
    struct Variable {
        const void* tag;     // the declaration (the address of a static the shim's macro makes per declaration)
        unsigned offset;
        unsigned bytes;      // what the declaration asked for (a cluster read must stay inside it)
    };
    unsigned char* arena = nullptr; // kCapacity bytes, 128-byte aligned (bank 0 at its start), allocated before the worker's first block
    unsigned used = 0;              // bytes handed out to this block, redzones and alignment included
    unsigned requested = 0;         // bytes the block's declarations asked for (what the limit counts)
    std::vector<Variable> variables;
};

// One block of the cluster a worker runs (a cluster of one block without __cluster_dims__). Its threads are the
// worker's fibers [first_fiber, first_fiber + nthreads).
struct Block {
    unsigned nthreads = 0;
    unsigned rank = 0;               // %cluster_ctarank
    unsigned first_fiber = 0;
    bool exited = false;             // every thread has returned: its shared memory is gone for the cluster
    uint3 idx{};
    void* dynamic_shared = nullptr;
    StaticShared static_shared;
    unsigned barrier_generation = 0;
    char barrier_sync[2] = {0, 0};   // TSan: __syncthreads release/acquire, alternating by generation
    char start_sync = 0, end_sync = 0; // TSan: scheduler -> fibers at block start, fibers -> scheduler at end
};

struct KernelEntry {
    const char* name;
    cc_emu_detail::Invoker invoke;
    int param_count;
    cc_dim3 cluster;             // compile-time cluster dimensions (CC_REGISTER_CLUSTER_KERNEL); 1,1,1 without
    unsigned max_dynamic_shared; // what its launches may ask for (cc_emu_set_max_dynamic_shared); guarded by the registry's lock
};

// One launch, shared by all workers running its blocks.
struct Launch {
    const KernelEntry* kernel = nullptr;
    void** args = nullptr;
    cc_dim3 grid{}, block{};
    unsigned dynamic_shared_bytes = 0;
    unsigned threads_per_block = 0;
    unsigned long long total_blocks = 0;
    cc_dim3 cluster{1, 1, 1};         // the kernel's cluster dimensions (the grid is a multiple of them)
    unsigned cluster_size = 1;        // blocks per cluster
    unsigned long long total_clusters = 0; // the unit the workers take: a cluster's blocks run together on one worker
    bool strict = false;
    unsigned mxcsr = 0x1f80;          // FP control state each fiber starts with (the launcher's)
    unsigned short fpu_cw = 0x037f;

    std::atomic<unsigned long long> next_block{0};
    std::atomic<bool> failed{false};

    std::mutex mu;                    // guards the fields below
    int status = 0;
    std::string error;
    std::string warning;

#if defined(CC_EMU_PROFILE)
    prof::LaunchProfile* profile = nullptr; // set while a profile session records this launch
    unsigned long long blocks_to_run = 0;   // how many clusters the workers take: all, or the sample
#endif

    // First error wins; later ones (from other blocks running in parallel) are dropped.
    void fail(int code, std::string text);
    void warn_once(std::string text);
};

// How many clusters (a block is a cluster of one without __cluster_dims__) the workers take from next_block:
// every cluster of the grid, except in a sampled profile (profile.cpp), where the i-th taken is
// prof::block_at(launch, i).
inline unsigned long long blocks_to_run(const Launch& l) {
#if defined(CC_EMU_PROFILE)
    return l.blocks_to_run;
#else
    return l.total_clusters;
#endif
}

// An OS thread's execution state while it runs blocks of a launch. Persistent across launches so the
// fiber stacks are reused.
struct Worker {
    std::vector<std::unique_ptr<Fiber>> fibers;
    void* sched_sp = nullptr;          // the scheduler's saved stack pointer while a fiber runs
    const void* sched_stack_lo = nullptr; // ASan: the scheduler's stack, learnt on the first switch
    std::size_t sched_stack_size = 0;
    void* tsan_sched = nullptr;        // TSan: the OS thread's own context
    Fiber* current = nullptr;
    Launch* launch = nullptr;
    // The running cluster's blocks: blocks[rank] for rank < cluster_blocks (one without clusters). Reused, with
    // their static shared arenas, by every cluster the worker runs.
    std::vector<std::unique_ptr<Block>> blocks;
    unsigned cluster_blocks = 0;
    unsigned cluster_generation = 0;  // cluster barriers the running cluster has passed
    char cluster_sync[2] = {0, 0};    // TSan: cc_cluster_sync release/acquire, alternating by generation
#if defined(CC_EMU_PROFILE)
    prof::WorkerProfile* profile = nullptr; // the recorder's buffers, created on first use
#endif

    ~Worker();
    // Makes sure at least n fibers (with stacks) exist. False if memory ran out.
    bool ensure_fibers(unsigned n);
    // Makes sure at least n blocks exist.
    void ensure_blocks(unsigned n);
};

// ---- fiber.cpp ----
void fiber_prepare(Fiber& f, void (*entry)(Fiber*), unsigned mxcsr, unsigned short fpu_cw);
void fiber_switch_in(Worker& w, Fiber& f);                 // scheduler -> fiber
void fiber_switch_out(Worker& w, Fiber& f, bool exiting);  // fiber -> scheduler
void fiber_first_entry(Worker& w, Fiber& f);               // first thing a new fiber does
void worker_bind_thread(Worker& w);                        // before running blocks on an OS thread
void fiber_abandon(Worker& w, Fiber& f, void* release_addr); // aborted block: fiber will never finish
void fiber_set_name(Fiber& f, const ThreadContext& c);     // TSan: name the fiber after its CUDA thread
bool fiber_allocate(Fiber& f);
void fiber_release(Fiber& f);
// TSan happens-before annotations; no-ops in other builds.
void hb_release(void* addr);
void hb_acquire(void* addr);

// ---- warp_matrix.cpp ----
// D = A·B + C of mma.sync.m16n8k8.row.col.f32.tf32.tf32.f32 over the 32 lanes (index = lane), each lane's
// collective_in an MmaOperands, collective_out its float[4].
void warp_mma_tf32_m16n8k8(Fiber* const lanes[32]);
// ldmatrix .x`count` (.trans when `trans`): each lane's collective_in an LdmatrixRow, collective_out its
// unsigned[count]. Returns "" on success, else why the operation is invalid (a misaligned row address).
std::string warp_ldmatrix(Fiber* const lanes[32], int count, bool trans);

// ---- scheduler.cpp ----
// Runs clusters (blocks, without __cluster_dims__) of `launch` until none are left or the launch failed.
void run_blocks(Worker& w, Launch& launch);

extern thread_local Worker* t_worker;

#if defined(CC_EMU_PROFILE)
// ---- profile.cpp (the profiling library only) ----
namespace prof {
// cc_emu_launch, before the workers start: attaches the session's recorder and decides the sample
// (sets launch.profile and launch.blocks_to_run).
void launch_begin(Launch& launch);
// cc_emu_launch, after every worker has finished: adds the launch's record to the session.
void launch_end(Launch& launch);
// The linear index of the i-th cluster (block, without clusters) the workers run (i < blocks_to_run).
unsigned long long block_at(const Launch& launch, unsigned long long i);
// Around one cluster (its blocks run together) on the calling OS thread: begin starts recording if the
// cluster is in the sample (after its blocks' shared memory exists), end analyses what it recorded.
void block_begin(Worker& w, const Launch& launch, unsigned long long linear_cluster);
void block_end(Worker& w);
// A worker takes no more blocks of this launch: its counts join the launch's.
void worker_done(Worker& w, Launch& launch);
void worker_destroy(Worker& w);
} // namespace prof
#endif

// ---- launch.cpp ----
// OS threads the next launch runs its blocks on (cc_emu_set_worker_threads, 0 = hardware concurrency
// capped at 16). For cc_describe in the C ABI's emulator runtime.
int worker_thread_count();
// cc_emu_set_cluster_kernels: whether the C ABI's emulator runtime offers the cluster kernels (DeviceFacts).
bool cluster_kernels_enabled();

std::string format(const char* fmt, ...) __attribute__((format(printf, 1, 2)));

} // namespace cc_emu

#endif
