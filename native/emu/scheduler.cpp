// Runs blocks: every CUDA thread of a block is a fiber; the scheduler runs the ready fibers round-robin
// until each has exited or waits at a synchronization point, then releases whatever can be released:
// complete warp-op groups first, then the block barrier. When nothing can be released the block is
// stuck, and the scheduler explains why (divergent barrier, warp mismatch, deadlock) instead of hanging.
//
// Also defines the cc_emu_detail entry points that kernel code calls through cuda_shim.h.
#include "emu_internal.h"

#include <cstdarg>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <xmmintrin.h>

#if defined(CC_EMU_ASAN)
#include <sanitizer/asan_interface.h>
#endif

namespace cc_emu {

thread_local Worker* t_worker = nullptr;

std::string format(const char* fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    char small[512];
    int n = std::vsnprintf(small, sizeof small, fmt, ap);
    va_end(ap);
    if (n < 0) return std::string();
    if (static_cast<std::size_t>(n) < sizeof small) return std::string(small, static_cast<std::size_t>(n));
    std::string s(static_cast<std::size_t>(n) + 1, '\0');
    va_start(ap, fmt);
    std::vsnprintf(s.data(), s.size(), fmt, ap);
    va_end(ap);
    s.resize(static_cast<std::size_t>(n));
    return s;
}

void Launch::fail(int code, std::string text) {
    std::lock_guard<std::mutex> lock(mu);
    if (status == 0) {
        status = code;
        error = std::move(text);
    }
    failed.store(true, std::memory_order_relaxed);
}

void Launch::warn_once(std::string text) {
    std::lock_guard<std::mutex> lock(mu);
    if (warning.empty()) warning = std::move(text);
}

Worker::~Worker() {
    for (auto& f : fibers) fiber_release(*f);
    std::free(block.static_shared.arena);
#if defined(CC_EMU_PROFILE)
    prof::worker_destroy(*this);
#endif
}

bool Worker::ensure_fibers(unsigned n) {
    while (fibers.size() < n) {
        auto f = std::make_unique<Fiber>();
        if (!fiber_allocate(*f)) return false;
        f->worker = this;
        fibers.push_back(std::move(f));
    }
    return true;
}

namespace {

const char* op_name(WarpOp op) {
    switch (op) {
    case cc_emu_detail::kShflIdx: return "__shfl_sync";
    case cc_emu_detail::kShflUp: return "__shfl_up_sync";
    case cc_emu_detail::kShflDown: return "__shfl_down_sync";
    case cc_emu_detail::kShflXor: return "__shfl_xor_sync";
    case cc_emu_detail::kBallot: return "__ballot_sync";
    case cc_emu_detail::kAny: return "__any_sync";
    case cc_emu_detail::kAll: return "__all_sync";
    case cc_emu_detail::kSyncWarp: return "__syncwarp";
    case cc_emu_detail::kActiveMask: return "__activemask";
    case cc_emu_detail::kMma: return "cc_mma_tf32_m16n8k8";
    case cc_emu_detail::kLdmatrix: return "cc_ldmatrix";
    }
    return "?";
}

bool same_site(const Fiber& a, const Fiber& b) {
    return a.line == b.line && (a.file == b.file || std::strcmp(a.file, b.file) == 0);
}

// "thread (x,y,z)"
std::string thread_name(const Fiber& f) {
    return format("thread (%u,%u,%u)", f.ctx.thread_idx.x, f.ctx.thread_idx.y, f.ctx.thread_idx.z);
}

// "waits at __syncthreads at file:line" / "waits at __shfl_down_sync(mask 0x...) at file:line"
std::string wait_site(const Fiber& f) {
    if (f.state == FiberState::kAtBarrier) return format("waits at __syncthreads at %s:%u", f.file, f.line);
    if (f.state == FiberState::kAtWarpOp)
        return format("waits at %s(mask 0x%08x) at %s:%u", op_name(f.op), f.mask, f.file, f.line);
    if (f.state == FiberState::kExited) return "has exited";
    return "is running";
}

// Entry point of every fiber: run the kernel once, then leave for good.
void fiber_main(Fiber* f) {
    Worker& w = *f->worker;
    fiber_first_entry(w, *f);
    hb_acquire(&w.block.start_sync);
    w.launch->kernel->invoke(w.launch->args);
    hb_release(&w.block.end_sync);
    f->state = FiberState::kExited;
    fiber_switch_out(w, *f, /*exiting=*/true);
    __builtin_trap(); // an exited fiber is never resumed
}

class BlockRunner {
public:
    BlockRunner(Worker& w, Launch& l) : w_(w), l_(l), b_(w.block), n_(b_.nthreads) {}

    // Runs the block. Returns false if it failed (the error is recorded in the launch).
    bool run() {
        for (;;) {
            // Round-robin: every ready fiber runs until it exits or waits.
            for (unsigned t = 0; t < n_; ++t) {
                Fiber& f = fiber(t);
                if (f.state == FiberState::kReady) fiber_switch_in(w_, f);
            }
            if (count_state(FiberState::kFaulted) > 0) return false; // the thread has said why (Launch::fail)
            if (count_state(FiberState::kExited) == n_) return true;
            const bool released = resolve_warp_ops();
            if (failed_) return false;
            if (released) continue;
            if (release_barrier()) continue;
            if (failed_) return false;
            diagnose_stuck();
            return false;
        }
    }

private:
    Fiber& fiber(unsigned t) { return *w_.fibers[t]; }

    unsigned count_state(FiberState s) {
        unsigned c = 0;
        for (unsigned t = 0; t < n_; ++t) c += fiber(t).state == s;
        return c;
    }

    std::string where() {
        return format("kernel %s, block (%u,%u,%u)", l_.kernel->name, b_.idx.x, b_.idx.y, b_.idx.z);
    }

    void fail(int code, const std::string& text) {
        failed_ = true;
        l_.fail(code, format("%s: %s: %s", cc_emu_status_name(code), where().c_str(), text.c_str()));
    }

    // Lanes of warp `wp` that exist (the last warp may be partial) and have not exited.
    unsigned live_lanes(unsigned wp, unsigned* waiting) {
        unsigned live = 0, wait = 0;
        const unsigned base = wp * 32;
        for (unsigned l = 0; l < 32 && base + l < n_; ++l) {
            const Fiber& f = fiber(base + l);
            if (f.state != FiberState::kExited) live |= 1u << l;
            if (f.state == FiberState::kAtWarpOp) wait |= 1u << l;
        }
        *waiting = wait;
        return live;
    }

    // Releases every warp-op group whose lanes have all arrived at the same op with the same mask.
    // Returns true if any group was released. Inconsistent groups are left for diagnose_stuck(): another
    // group's release may still let a lane move on to the op the others wait at.
    bool resolve_warp_ops() {
        bool progressed = false;
        const unsigned warps = (n_ + 31) / 32;
        for (unsigned wp = 0; wp < warps && !failed_; ++wp) {
            unsigned waiting = 0;
            const unsigned live = live_lanes(wp, &waiting);
            unsigned pending = waiting;
            while (pending && !failed_) {
                const unsigned lane = static_cast<unsigned>(__builtin_ctz(pending));
                Fiber& lead = fiber(wp * 32 + lane);
                pending &= pending - 1;
                if (!(lead.mask & (1u << lane))) {
                    fail(CC_EMU_WARP_MISMATCH, format("%s %s, but its own lane %u is not in the mask", thread_name(lead).c_str(),
                                                      wait_site(lead).c_str(), lane));
                    return false;
                }
                const int wd = lead.width;
                if (wd < 1 || wd > 32 || (wd & (wd - 1)) != 0) {
                    fail(CC_EMU_WARP_MISMATCH, format("%s %s with width %d; width must be a power of two in 1..32",
                                                      thread_name(lead).c_str(), wait_site(lead).c_str(), wd));
                    return false;
                }
                const unsigned members = lead.mask & live;
                if (members & ~waiting) continue; // someone in the mask has not arrived
                bool consistent = true;
                for (unsigned m = members; m; m &= m - 1) {
                    const Fiber& o = fiber(wp * 32 + static_cast<unsigned>(__builtin_ctz(m)));
                    if (o.mask != lead.mask || o.op != lead.op || !same_site(o, lead)) consistent = false;
                }
                if (!consistent) continue;
                // A lane outside the group that waits at this very op with a mask naming a member: the
                // lanes disagree on the mask (e.g. half the warp passes 0xffffffff, the rest 0xffff0000).
                for (unsigned o_bits = waiting & ~members; o_bits; o_bits &= o_bits - 1) {
                    const Fiber& o = fiber(wp * 32 + static_cast<unsigned>(__builtin_ctz(o_bits)));
                    if ((o.mask & members) && o.op == lead.op && same_site(o, lead)) {
                        fail(CC_EMU_WARP_MISMATCH,
                             format("lanes of warp %u disagree on the mask: %s (lane %u) %s but %s (lane %u) %s", wp,
                                    thread_name(lead).c_str(), lead.lane, wait_site(lead).c_str(), thread_name(o).c_str(),
                                    o.lane, wait_site(o).c_str()));
                        return false;
                    }
                }
                complete_warp_op(wp, members);
                waiting &= ~members;
                pending &= ~members;
                progressed = true;
            }
        }
        return progressed;
    }

    // Computes every member's result, as the hardware would, and makes the members ready.
    void complete_warp_op(unsigned wp, unsigned members) {
        Fiber& first = fiber(wp * 32 + static_cast<unsigned>(__builtin_ctz(members)));
        const WarpOp op = first.op;
        if (op == cc_emu_detail::kMma || op == cc_emu_detail::kLdmatrix) {
            if (!complete_collective(wp, members, first)) return;
            make_ready(wp, members);
            return;
        }
        unsigned values[32] = {};
        unsigned ballot = 0;
        for (unsigned m = members; m; m &= m - 1) {
            const unsigned l = static_cast<unsigned>(__builtin_ctz(m));
            const Fiber& f = fiber(wp * 32 + l);
            values[l] = f.value;
            if (f.value) ballot |= 1u << l;
        }
        for (unsigned m = members; m; m &= m - 1) {
            const unsigned l = static_cast<unsigned>(__builtin_ctz(m));
            Fiber& f = fiber(wp * 32 + l);
            switch (op) {
            case cc_emu_detail::kShflIdx:
            case cc_emu_detail::kShflUp:
            case cc_emu_detail::kShflDown:
            case cc_emu_detail::kShflXor: {
                const int src = shuffle_source(op, static_cast<int>(l), f.operand, f.width);
                if (!(members & (1u << src))) {
                    const unsigned src_t = wp * 32 + static_cast<unsigned>(src);
                    fail(CC_EMU_INACTIVE_LANE_READ,
                         format("lane %u (%s) in %s(mask 0x%08x) at %s:%u reads lane %d, which is not participating (%s)", l,
                                thread_name(f).c_str(), op_name(op), f.mask, f.file, f.line, src,
                                !(f.mask & (1u << src)) ? "not in the mask"
                                : src_t >= n_           ? "beyond blockDim"
                                                        : "exited"));
                    return;
                }
                f.result = values[src];
                break;
            }
            case cc_emu_detail::kBallot: f.result = ballot; break;
            case cc_emu_detail::kAny: f.result = ballot != 0; break;
            case cc_emu_detail::kAll: f.result = ballot == members; break;
            case cc_emu_detail::kSyncWarp: f.result = 0; break;
            case cc_emu_detail::kActiveMask: f.result = members; break;
            default: break; // the collectives are completed above
            }
        }
        make_ready(wp, members);
    }

    void make_ready(unsigned wp, unsigned members) {
        unsigned parity = 0;
        for (unsigned m = members; m; m &= m - 1) {
            const unsigned l = static_cast<unsigned>(__builtin_ctz(m));
            if (fiber(wp * 32 + l).warp_parity) parity |= 1u << l;
        }
        for (unsigned m = members; m; m &= m - 1) {
            Fiber& f = fiber(wp * 32 + static_cast<unsigned>(__builtin_ctz(m)));
            f.group = members;
            f.group_parity = parity;
            f.state = FiberState::kReady;
        }
    }

    // mma.sync and ldmatrix are .aligned: every lane of the warp executes them together.
    bool complete_collective(unsigned wp, unsigned members, const Fiber& first) {
        if (members != 0xffffffffu) {
            const unsigned missing = ~members;
            const unsigned l = static_cast<unsigned>(__builtin_ctz(missing));
            fail(CC_EMU_WARP_MISMATCH,
                 format("%s (lane %u) %s, which needs all 32 lanes of warp %u, but lanes 0x%08x do not take part (lane %u %s)",
                        thread_name(first).c_str(), first.lane, wait_site(first).c_str(), wp, missing, l,
                        wp * 32 + l >= n_ ? "is beyond blockDim" : "has exited"));
            return false;
        }
        Fiber* lanes[32];
        for (unsigned l = 0; l < 32; ++l) lanes[l] = &fiber(wp * 32 + l);
        if (first.op == cc_emu_detail::kMma) {
            warp_mma_tf32_m16n8k8(lanes);
            return true;
        }
        const std::string error = warp_ldmatrix(lanes, first.operand & 0xff, (first.operand & 0x100) != 0);
        if (!error.empty()) {
            fail(CC_EMU_INVALID_OPERAND, format("%s %s: %s", thread_name(first).c_str(), wait_site(first).c_str(), error.c_str()));
            return false;
        }
        return true;
    }

    // PTX shfl.sync semantics: the segment mask is 32 - width; the operand uses only its low 5 bits;
    // a source outside the lane's segment (or below it, for up) yields the lane's own value.
    static int shuffle_source(WarpOp op, int lane, int operand, int width) {
        const int seg = 32 - width;
        const int b = operand & 31;
        const int min_lane = lane & seg;
        const int max_lane = (lane & seg) | ((op == cc_emu_detail::kShflUp ? 0 : 31) & ~seg);
        int j = lane;
        bool ok = false;
        switch (op) {
        case cc_emu_detail::kShflIdx: j = min_lane | (b & ~seg); ok = j <= max_lane; break;
        case cc_emu_detail::kShflUp: j = lane - b; ok = j >= max_lane; break;
        case cc_emu_detail::kShflDown: j = lane + b; ok = j <= max_lane; break;
        case cc_emu_detail::kShflXor: j = lane ^ b; ok = j <= max_lane; break;
        default: break;
        }
        return ok ? j : lane;
    }

    // Releases __syncthreads if every thread that has not exited waits at it, at one call site.
    bool release_barrier() {
        const Fiber* first = nullptr;
        const Fiber* exited = nullptr;
        unsigned exited_count = 0;
        for (unsigned t = 0; t < n_; ++t) {
            const Fiber& f = fiber(t);
            if (f.state == FiberState::kExited) {
                if (!exited) exited = &f;
                ++exited_count;
                continue;
            }
            if (f.state != FiberState::kAtBarrier) return false;
            if (!first) first = &f;
        }
        if (!first) return false;
        for (unsigned t = 0; t < n_; ++t) {
            const Fiber& f = fiber(t);
            if (f.state == FiberState::kAtBarrier && !same_site(f, *first)) {
                fail(CC_EMU_DIVERGENT_BARRIER, format("%s %s but %s %s", thread_name(*first).c_str(), wait_site(*first).c_str(),
                                                      thread_name(f).c_str(), wait_site(f).c_str()));
                return false;
            }
        }
        if (exited) {
            const std::string text = format("%s, %u thread(s) (first: %s) had returned while the others waited at __syncthreads "
                                            "at %s:%u; exited threads do not take part in a barrier on the GPU, but code "
                                            "after the barrier must not rely on them",
                                            where().c_str(), exited_count, thread_name(*exited).c_str(), first->file, first->line);
            if (l_.strict) {
                failed_ = true;
                l_.fail(CC_EMU_EXITED_AT_BARRIER, format("%s: %s", cc_emu_status_name(CC_EMU_EXITED_AT_BARRIER), text.c_str()));
                return false;
            }
            l_.warn_once(format("warning: %s (%s)", text.c_str(), cc_emu_status_name(CC_EMU_EXITED_AT_BARRIER)));
        }
        ++b_.barrier_generation;
        for (unsigned t = 0; t < n_; ++t) {
            Fiber& f = fiber(t);
            if (f.state == FiberState::kAtBarrier) f.state = FiberState::kReady;
        }
        return true;
    }

    // Nothing can be released: say why.
    void diagnose_stuck() {
        // 1. Barrier waiters at different call sites.
        const Fiber* at_barrier = nullptr;
        for (unsigned t = 0; t < n_; ++t) {
            const Fiber& f = fiber(t);
            if (f.state != FiberState::kAtBarrier) continue;
            if (!at_barrier) {
                at_barrier = &f;
            } else if (!same_site(f, *at_barrier)) {
                fail(CC_EMU_DIVERGENT_BARRIER, format("%s %s but %s %s", thread_name(*at_barrier).c_str(), wait_site(*at_barrier).c_str(),
                                                      thread_name(f).c_str(), wait_site(f).c_str()));
                return;
            }
        }
        // 2. A warp op whose lanes have all arrived but disagree on op, mask or call site.
        // 3. A warp op waiting for a lane that waits at __syncthreads (which waits for the warp op).
        const Fiber* blocked = nullptr;
        const Fiber* blocker = nullptr;
        for (unsigned t = 0; t < n_; ++t) {
            const Fiber& f = fiber(t);
            if (f.state != FiberState::kAtWarpOp) continue;
            unsigned waiting = 0;
            const unsigned members = f.mask & live_lanes(f.warp, &waiting);
            for (unsigned m = members; m; m &= m - 1) {
                const Fiber& o = fiber(f.warp * 32 + static_cast<unsigned>(__builtin_ctz(m)));
                if (o.state == FiberState::kAtWarpOp && (o.mask != f.mask || o.op != f.op || !same_site(o, f))) {
                    fail(CC_EMU_WARP_MISMATCH, format("lanes of warp %u disagree: %s (lane %u) %s but %s (lane %u) %s", f.warp,
                                                      thread_name(f).c_str(), f.lane, wait_site(f).c_str(), thread_name(o).c_str(),
                                                      o.lane, wait_site(o).c_str()));
                    return;
                }
                if (o.state == FiberState::kAtBarrier && !blocked) {
                    blocked = &f;
                    blocker = &o;
                }
            }
        }
        if (blocked) {
            fail(CC_EMU_DEADLOCK, format("no thread can make progress: %s (lane %u) %s, waiting for lane %u (%s), which %s",
                                         thread_name(*blocked).c_str(), blocked->lane, wait_site(*blocked).c_str(), blocker->lane,
                                         thread_name(*blocker).c_str(), wait_site(*blocker).c_str()));
            return;
        }
        // Should not happen; still describe the waiters rather than hang.
        std::string who;
        for (unsigned t = 0; t < n_ && who.size() < 400; ++t) {
            const Fiber& f = fiber(t);
            if (f.state == FiberState::kAtBarrier || f.state == FiberState::kAtWarpOp)
                who += format("%s%s %s", who.empty() ? "" : "; ", thread_name(f).c_str(), wait_site(f).c_str());
        }
        fail(CC_EMU_DEADLOCK, "no thread can make progress: " + who);
    }

    Worker& w_;
    Launch& l_;
    Block& b_;
    const unsigned n_;
    bool failed_ = false;
};

// Forgets the previous block's static shared variables; under ASan the whole arena is poisoned again, and each
// variable unpoisons its own bytes when the next block declares it. The arena is allocated here, by the scheduler
// before the block's threads start (so TSan sees the allocation happen before every thread's use), once per worker.
bool reset_static_shared(StaticShared& s) {
    if (!s.arena) {
        void* arena = nullptr;
        if (posix_memalign(&arena, 128, StaticShared::kCapacity) != 0) return false;
        s.arena = static_cast<unsigned char*>(arena);
    }
#if defined(CC_EMU_ASAN)
    ASAN_POISON_MEMORY_REGION(s.arena, StaticShared::kCapacity);
#endif
    s.used = 0;
    s.requested = 0;
    s.variables.clear();
    return true;
}

// Runs one block on the calling OS thread. Returns false if the launch failed.
bool run_block(Worker& w, Launch& l, unsigned long long linear_block) {
    Block& b = w.block;
    const cc_dim3 g = l.grid, bd = l.block;
    b.idx = uint3{static_cast<unsigned>(linear_block % g.x), static_cast<unsigned>((linear_block / g.x) % g.y),
                  static_cast<unsigned>(linear_block / (static_cast<unsigned long long>(g.x) * g.y))};
    b.nthreads = l.threads_per_block;
    b.barrier_generation = 0;
    if (!w.ensure_fibers(b.nthreads)) {
        l.fail(CC_EMU_ERROR_OUT_OF_MEMORY, format("%s: kernel %s: cannot allocate %u fiber stacks",
                                                  cc_emu_status_name(CC_EMU_ERROR_OUT_OF_MEMORY), l.kernel->name, b.nthreads));
        return false;
    }
    // Dynamic shared memory: exactly the requested size, so ASan reports an access one past the end.
    // Filled with 0xff bytes (NaN as float, -1 as int): shared memory starts out undefined on a GPU.
    b.dynamic_shared = nullptr;
    if (l.dynamic_shared_bytes) {
        if (posix_memalign(&b.dynamic_shared, 16, l.dynamic_shared_bytes) != 0) {
            l.fail(CC_EMU_ERROR_OUT_OF_MEMORY, format("%s: kernel %s: cannot allocate %u bytes of dynamic shared memory",
                                                      cc_emu_status_name(CC_EMU_ERROR_OUT_OF_MEMORY), l.kernel->name,
                                                      l.dynamic_shared_bytes));
            return false;
        }
        std::memset(b.dynamic_shared, 0xff, l.dynamic_shared_bytes);
    }
    if (!reset_static_shared(b.static_shared)) {
        l.fail(CC_EMU_ERROR_OUT_OF_MEMORY, format("%s: kernel %s: cannot allocate the worker's %zu-byte static shared arena",
                                                  cc_emu_status_name(CC_EMU_ERROR_OUT_OF_MEMORY), l.kernel->name,
                                                  StaticShared::kCapacity));
        std::free(b.dynamic_shared);
        b.dynamic_shared = nullptr;
        return false;
    }
    const uint3 block_dim{bd.x, bd.y, bd.z}, grid_dim{g.x, g.y, g.z};
    for (unsigned t = 0; t < b.nthreads; ++t) {
        Fiber& f = *w.fibers[t];
        f.ctx.thread_idx = uint3{t % bd.x, (t / bd.x) % bd.y, t / (bd.x * bd.y)};
        f.ctx.block_idx = b.idx;
        f.ctx.block_dim = block_dim;
        f.ctx.grid_dim = grid_dim;
        f.linear = t;
        f.lane = t % 32;
        f.warp = t / 32;
        f.state = FiberState::kReady;
        f.file = nullptr;
        f.line = 0;
        f.async_copies.clear();
        fiber_prepare(f, &fiber_main, l.mxcsr, l.fpu_cw);
        fiber_set_name(f, f.ctx);
    }
    hb_release(&b.start_sync);
#if defined(CC_EMU_PROFILE)
    prof::block_begin(w, l, linear_block);
#endif
    BlockRunner runner(w, l);
    const bool ok = runner.run();
#if defined(CC_EMU_PROFILE)
    prof::block_end(w);
#endif
    if (!ok) {
        for (unsigned t = 0; t < b.nthreads; ++t) {
            Fiber& f = *w.fibers[t];
            if (f.state != FiberState::kExited) fiber_abandon(w, f, &b.end_sync);
        }
    }
    hb_acquire(&b.end_sync);
    std::free(b.dynamic_shared);
    b.dynamic_shared = nullptr;
    return ok;
}

} // namespace

void run_blocks(Worker& w, Launch& l) {
    worker_bind_thread(w);
    w.launch = &l;
    for (;;) {
        if (l.failed.load(std::memory_order_relaxed)) break;
        const unsigned long long i = l.next_block.fetch_add(1, std::memory_order_relaxed);
        if (i >= blocks_to_run(l)) break;
#if defined(CC_EMU_PROFILE)
        const unsigned long long b = prof::block_at(l, i);
#else
        const unsigned long long b = i;
#endif
        if (!run_block(w, l, b)) break;
    }
#if defined(CC_EMU_PROFILE)
    prof::worker_done(w, l);
#endif
    w.launch = nullptr;
    t_worker = nullptr;
}

} // namespace cc_emu

// ---- entry points called by kernel code (declared in cuda_shim.h) ----------------------------------

namespace cc_emu_detail {

using cc_emu::Fiber;
using cc_emu::FiberState;
using cc_emu::Worker;

const ThreadContext* current() { return &cc_emu::t_worker->current->ctx; }

void* dynamic_shared() { return cc_emu::t_worker->block.dynamic_shared; }

void* static_shared(const void* tag, std::size_t bytes, const char* name, const char* file, unsigned line) {
    Worker& w = *cc_emu::t_worker;
    cc_emu::StaticShared& s = w.block.static_shared;
    // Every thread of the block runs the declaration; the first one places the variable, the others find it.
    for (const auto& v : s.variables)
        if (v.tag == tag) {
            cc_emu::hb_acquire(s.arena + v.offset); // TSan: after the first thread's fill below
            return s.arena + v.offset;
        }
    cc_emu::Launch& l = *w.launch;
    const auto fault = [&](int code, const std::string& why) -> void* {
        const uint3 b = w.block.idx;
        l.fail(code, cc_emu::format("%s: kernel %s, block (%u,%u,%u): %s:%u: static __shared__ %s: %s", cc_emu_status_name(code),
                                    l.kernel->name, b.x, b.y, b.z, file, line, name, why.c_str()));
        Fiber& f = *w.current;
        f.state = FiberState::kFaulted;
        cc_emu::fiber_switch_out(w, f, false); // never resumed: the block is abandoned
        std::abort();
    };
    const unsigned dynamic = l.dynamic_shared_bytes;
    const unsigned long long requested = s.requested + static_cast<unsigned long long>(bytes);
    if (s.variables.size() == cc_emu::StaticShared::kMaxVariables)
        return fault(CC_EMU_ERROR_INVALID_VALUE, cc_emu::format("more than %u static shared variables in one kernel (the "
                                                                "emulator's limit)", cc_emu::StaticShared::kMaxVariables));
    if (requested > cc_emu::StaticShared::kLimit)
        return fault(CC_EMU_ERROR_INVALID_VALUE,
                     cc_emu::format("%zu bytes bring the block's static shared memory to %llu bytes, past CUDA's 48 KiB (%u "
                                    "bytes) for static __shared__ variables (ptxas refuses it; use CC_DYNAMIC_SHARED with "
                                    "the opt-in above 48 KiB)",
                                    bytes, requested, cc_emu::StaticShared::kLimit));
    // On a GPU static and dynamic shared memory come out of one per-block allocation: without the opt-in both
    // together must fit in 48 KiB (with it, the opt-in limit already leaves room for the static part).
    if (dynamic && l.kernel->max_dynamic_shared == CC_EMU_DEFAULT_DYNAMIC_SHARED && requested + dynamic > CC_EMU_DEFAULT_DYNAMIC_SHARED)
        return fault(CC_EMU_ERROR_INVALID_VALUE,
                     cc_emu::format("%llu bytes of static and %u of dynamic shared memory exceed the 48 KiB (%u bytes) a block "
                                    "gets without the opt-in (cc_emu_set_max_dynamic_shared; cuFuncSetAttribute on a GPU)",
                                    requested, dynamic, CC_EMU_DEFAULT_DYNAMIC_SHARED));
    const unsigned offset = (s.used + 15u) & ~15u;
    s.used = offset + static_cast<unsigned>(bytes) + cc_emu::StaticShared::kRedzone;
    s.requested = static_cast<unsigned>(requested);
    s.variables.push_back({tag, offset});
    unsigned char* p = s.arena + offset;
#if defined(CC_EMU_ASAN)
    ASAN_UNPOISON_MEMORY_REGION(p, bytes);
#endif
    std::memset(p, 0xff, bytes); // undefined on a GPU: NaN as float, -1 as int
    cc_emu::hb_release(p);
    return p;
}

void syncthreads(const char* file, unsigned line) {
    Worker& w = *cc_emu::t_worker;
    Fiber& f = *w.current;
    f.state = FiberState::kAtBarrier;
    f.file = file;
    f.line = line;
    // TSan: everything before the barrier happens before everything after it, in every thread. The
    // slot alternates by generation so that a fast thread's release for the *next* barrier cannot
    // leak into a slow thread's acquire for this one.
    f.barrier_sync_parity = static_cast<char>(w.block.barrier_generation & 1);
    char* slot = &w.block.barrier_sync[static_cast<unsigned>(f.barrier_sync_parity)];
    cc_emu::hb_release(slot);
    cc_emu::fiber_switch_out(w, f, false);
    cc_emu::hb_acquire(slot);
}

void warp_collective(WarpOp op, const void* in, void* out, int operand, const char* file, unsigned line) {
    Fiber& f = *cc_emu::t_worker->current;
    f.collective_in = in;
    f.collective_out = out;
    warp_op(op, 0xffffffffu, 0, operand, 32, file, line);
}

unsigned warp_op(WarpOp op, unsigned mask, unsigned value, int operand, int width, const char* file, unsigned line) {
    Worker& w = *cc_emu::t_worker;
    Fiber& f = *w.current;
    f.state = FiberState::kAtWarpOp;
    f.op = op;
    f.mask = mask;
    f.value = value;
    f.operand = operand;
    f.width = width;
    f.file = file;
    f.line = line;
    cc_emu::hb_release(&f.warp_sync[f.warp_parity]);
    cc_emu::fiber_switch_out(w, f, false);
#if defined(CC_EMU_TSAN)
    // Lanes of the op synchronize with each other (matters for __syncwarp-protected shared memory).
    const unsigned base = f.warp * 32;
    for (unsigned m = f.group; m; m &= m - 1) {
        const unsigned l = static_cast<unsigned>(__builtin_ctz(m));
        cc_emu::hb_acquire(&w.fibers[base + l]->warp_sync[(f.group_parity >> l) & 1]);
    }
#endif
    f.warp_parity ^= 1;
    return f.result;
}

} // namespace cc_emu_detail
