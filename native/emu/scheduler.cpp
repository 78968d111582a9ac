// Runs blocks: every CUDA thread of a block is a fiber; the scheduler runs the ready fibers round-robin
// until each has exited or waits at a synchronization point, then releases whatever can be released:
// complete warp-op groups first, then the block barrier. When nothing can be released the block is
// stuck, and the scheduler explains why (divergent barrier, warp mismatch, deadlock) instead of hanging.
// A kernel with thread-block clusters (CC_REGISTER_CLUSTER_KERNEL) runs a whole cluster at once: its blocks'
// fibers take turns block by block on one OS thread, and when no block can release anything of its own, the
// cluster barrier (cc_cluster_sync) is released once every thread of every block of the cluster waits at it.
// A kernel without clusters is a cluster of one block, run exactly as before.
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
    for (auto& b : blocks) std::free(b->static_shared.arena);
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

void Worker::ensure_blocks(unsigned n) {
    while (blocks.size() < n) blocks.push_back(std::make_unique<Block>());
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

// "thread (x,y,z)"; in a cluster of several blocks, "block (x,y,z) thread (x,y,z)"
std::string thread_name(const Fiber& f) {
    if (f.worker->cluster_blocks > 1)
        return format("block (%u,%u,%u) thread (%u,%u,%u)", f.ctx.block_idx.x, f.ctx.block_idx.y, f.ctx.block_idx.z,
                      f.ctx.thread_idx.x, f.ctx.thread_idx.y, f.ctx.thread_idx.z);
    return format("thread (%u,%u,%u)", f.ctx.thread_idx.x, f.ctx.thread_idx.y, f.ctx.thread_idx.z);
}

// "waits at __syncthreads at file:line" / "waits at __shfl_down_sync(mask 0x...) at file:line"
std::string wait_site(const Fiber& f) {
    if (f.state == FiberState::kAtBarrier) return format("waits at __syncthreads at %s:%u", f.file, f.line);
    if (f.state == FiberState::kAtClusterBarrier) return format("waits at cc_cluster_sync at %s:%u", f.file, f.line);
    if (f.state == FiberState::kAtWarpOp)
        return format("waits at %s(mask 0x%08x) at %s:%u", op_name(f.op), f.mask, f.file, f.line);
    if (f.state == FiberState::kExited) return "has exited";
    return "is running";
}

// Threads that returned while the others waited at a barrier: the GPU releases the barrier without them, but code
// after it must not rely on them. A strict launch fails (false: the caller stops); otherwise one warning per launch.
bool allow_exited_at_barrier(Launch& l, const std::string& text) {
    if (l.strict) {
        l.fail(CC_EMU_EXITED_AT_BARRIER, format("%s: %s", cc_emu_status_name(CC_EMU_EXITED_AT_BARRIER), text.c_str()));
        return false;
    }
    l.warn_once(format("warning: %s (%s)", text.c_str(), cc_emu_status_name(CC_EMU_EXITED_AT_BARRIER)));
    return true;
}

// Entry point of every fiber: run the kernel once, then leave for good.
void fiber_main(Fiber* f) {
    Worker& w = *f->worker;
    fiber_first_entry(w, *f);
    hb_acquire(&f->block->start_sync);
    w.launch->kernel->invoke(w.launch->args);
    hb_release(&f->block->end_sync);
    f->state = FiberState::kExited;
    fiber_switch_out(w, *f, /*exiting=*/true);
    __builtin_trap(); // an exited fiber is never resumed
}

class BlockRunner {
public:
    BlockRunner(Worker& w, Launch& l, Block& b) : w_(w), l_(l), b_(b), n_(b_.nthreads) {}

    enum class Step { kProgress, kDone, kIdle, kFailed };

    // One round: every ready fiber runs until it exits or waits, then the block releases what it can. kIdle: nothing
    // of the block's own can be released (its threads wait at the cluster barrier, or it is stuck).
    Step step() {
        for (unsigned t = 0; t < n_; ++t) {
            Fiber& f = fiber(t);
            if (f.state == FiberState::kReady) fiber_switch_in(w_, f);
        }
        if (count_state(FiberState::kFaulted) > 0) return Step::kFailed; // the thread has said why (Launch::fail)
        if (count_state(FiberState::kExited) == n_) {
            b_.exited = true;
            return Step::kDone;
        }
        const bool released = resolve_warp_ops();
        if (failed_) return Step::kFailed;
        if (released) return Step::kProgress;
        if (release_barrier()) return Step::kProgress;
        if (failed_) return Step::kFailed;
        return Step::kIdle;
    }

    // Nothing can be released: say why (the block's own reasons).
    void diagnose() { diagnose_stuck(); }

    Fiber& fiber(unsigned t) { return *w_.fibers[b_.first_fiber + t]; }
    unsigned threads() const { return n_; }
    bool failed() const { return failed_; }

private:

    unsigned count_state(FiberState s) {
        unsigned c = 0;
        for (unsigned t = 0; t < n_; ++t) c += fiber(t).state == s;
        return c;
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

public:
    std::string where() {
        return format("kernel %s, block (%u,%u,%u)", l_.kernel->name, b_.idx.x, b_.idx.y, b_.idx.z);
    }

    void fail(int code, const std::string& text) {
        failed_ = true;
        l_.fail(code, format("%s: %s: %s", cc_emu_status_name(code), where().c_str(), text.c_str()));
    }

private:
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
            if (!allow_exited_at_barrier(l_, text)) {
                failed_ = true;
                return false;
            }
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

// Runs the blocks of one cluster together (one block without clusters): each block takes a round in turn; when
// none can release anything of its own, the cluster barrier is tried; when that cannot be released either, the
// cluster is stuck and says why.
class ClusterRunner {
public:
    ClusterRunner(Worker& w, Launch& l) : w_(w), l_(l) {
        runners_.reserve(w.cluster_blocks);
        for (unsigned r = 0; r < w.cluster_blocks; ++r) runners_.emplace_back(w, l, *w.blocks[r]);
    }

    bool run() {
        std::vector<bool> done(runners_.size(), false);
        for (;;) {
            bool progressed = false, all_done = true;
            for (std::size_t r = 0; r < runners_.size(); ++r) {
                if (done[r]) continue;
                switch (runners_[r].step()) {
                case BlockRunner::Step::kFailed: return false;
                case BlockRunner::Step::kDone: done[r] = true; break;
                case BlockRunner::Step::kProgress: progressed = true, all_done = false; break;
                case BlockRunner::Step::kIdle: all_done = false; break;
                }
            }
            if (all_done) return true;
            if (progressed) continue;
            if (release_cluster_barrier()) continue;
            if (failed_) return false;
            diagnose(done);
            return false;
        }
    }

private:
    // Every thread of the cluster that has not exited waits at cc_cluster_sync, at one call site: release them.
    bool release_cluster_barrier() {
        const Fiber* first = nullptr;
        const Fiber* exited = nullptr;
        unsigned exited_count = 0;
        for (BlockRunner& b : runners_)
            for (unsigned t = 0; t < b.threads(); ++t) {
                const Fiber& f = b.fiber(t);
                if (f.state == FiberState::kExited) {
                    if (!exited) exited = &f;
                    ++exited_count;
                    continue;
                }
                if (f.state != FiberState::kAtClusterBarrier) return false;
                if (!first) first = &f;
                else if (!same_site(f, *first)) {
                    fail(runners_[0], CC_EMU_DIVERGENT_BARRIER, format("%s %s but %s %s", thread_name(*first).c_str(),
                                                                       wait_site(*first).c_str(), thread_name(f).c_str(),
                                                                       wait_site(f).c_str()));
                    return false;
                }
            }
        if (!first) return false;
        if (exited) {
            const std::string text = format("kernel %s, %u thread(s) of the cluster (first: %s) had returned while the others "
                                            "waited at cc_cluster_sync at %s:%u; code after the barrier must not rely on them",
                                            l_.kernel->name, exited_count, thread_name(*exited).c_str(), first->file, first->line);
            if (!allow_exited_at_barrier(l_, text)) {
                failed_ = true;
                return false;
            }
        }
        ++w_.cluster_generation;
        for (BlockRunner& b : runners_)
            for (unsigned t = 0; t < b.threads(); ++t)
                if (b.fiber(t).state == FiberState::kAtClusterBarrier) b.fiber(t).state = FiberState::kReady;
        return true;
    }

    // No block can move and the cluster barrier cannot be released.
    void diagnose(const std::vector<bool>& done) {
        // A block none of whose threads waits at the cluster barrier is stuck on its own.
        const Fiber* at_cluster = nullptr;
        for (std::size_t r = 0; r < runners_.size(); ++r) {
            if (done[r]) continue;
            BlockRunner& b = runners_[r];
            bool any = false;
            for (unsigned t = 0; t < b.threads(); ++t)
                if (b.fiber(t).state == FiberState::kAtClusterBarrier) {
                    any = true;
                    if (!at_cluster) at_cluster = &b.fiber(t);
                }
            if (!any) {
                b.diagnose();
                failed_ = true;
                return;
            }
        }
        // Some threads wait at the cluster barrier and others of the cluster elsewhere.
        for (std::size_t r = 0; r < runners_.size(); ++r) {
            BlockRunner& b = runners_[r];
            for (unsigned t = 0; t < b.threads(); ++t) {
                const Fiber& f = b.fiber(t);
                if (f.state == FiberState::kAtBarrier || f.state == FiberState::kAtWarpOp) {
                    fail(b, CC_EMU_DIVERGENT_BARRIER, format("%s %s but %s %s", thread_name(*at_cluster).c_str(),
                                                             wait_site(*at_cluster).c_str(), thread_name(f).c_str(),
                                                             wait_site(f).c_str()));
                    return;
                }
            }
        }
        fail(runners_[0], CC_EMU_DEADLOCK, "no thread of the cluster can make progress");
    }

    void fail(BlockRunner& b, int code, const std::string& text) {
        failed_ = true;
        b.fail(code, text);
    }

    Worker& w_;
    Launch& l_;
    std::vector<BlockRunner> runners_;
    bool failed_ = false;
};

// Sets up block `rank` of the running cluster (its index, shared memory). Returns false if the launch failed.
bool prepare_block(Worker& w, Launch& l, unsigned rank, uint3 idx) {
    Block& b = *w.blocks[rank];
    b.idx = idx;
    b.rank = rank;
    b.nthreads = l.threads_per_block;
    b.first_fiber = rank * l.threads_per_block;
    b.exited = false;
    b.barrier_generation = 0;
    // Dynamic shared memory: exactly the requested size, so ASan reports an access one past the end.
    // Filled with 0xff bytes (NaN as float, -1 as int): shared memory starts out undefined on a GPU.
    b.dynamic_shared = nullptr;
    if (l.dynamic_shared_bytes) {
        if (posix_memalign(&b.dynamic_shared, 16, l.dynamic_shared_bytes) != 0) {
            b.dynamic_shared = nullptr;
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
        return false;
    }
    const cc_dim3 g = l.grid, bd = l.block;
    const uint3 block_dim{bd.x, bd.y, bd.z}, grid_dim{g.x, g.y, g.z};
    const unsigned warp_rounded = (b.nthreads + 31) / 32 * 32;
    for (unsigned t = 0; t < b.nthreads; ++t) {
        Fiber& f = *w.fibers[b.first_fiber + t];
        f.ctx.thread_idx = uint3{t % bd.x, (t / bd.x) % bd.y, t / (bd.x * bd.y)};
        f.ctx.block_idx = b.idx;
        f.ctx.block_dim = block_dim;
        f.ctx.grid_dim = grid_dim;
        f.linear = t;
        f.block = &b;
        f.cluster_linear = rank * warp_rounded + t;
        f.lane = t % 32;
        f.warp = t / 32;
        f.state = FiberState::kReady;
        f.file = nullptr;
        f.line = 0;
        f.async_copies.clear();
        fiber_prepare(f, &fiber_main, l.mxcsr, l.fpu_cw);
        fiber_set_name(f, f.ctx);
    }
    return true;
}

// Runs one cluster (one block without clusters) on the calling OS thread. Returns false if the launch failed.
bool run_cluster(Worker& w, Launch& l, unsigned long long linear_cluster) {
    const cc_dim3 g = l.grid, c = l.cluster;
    const unsigned long long cx = g.x / c.x, cy = g.y / c.y; // clusters per grid row and column
    const unsigned long long kx = linear_cluster % cx, ky = (linear_cluster / cx) % cy, kz = linear_cluster / (cx * cy);
    const unsigned k = l.cluster_size;
    w.ensure_blocks(k);
    w.cluster_blocks = k;
    w.cluster_generation = 0;
    if (!w.ensure_fibers(k * l.threads_per_block)) {
        l.fail(CC_EMU_ERROR_OUT_OF_MEMORY, format("%s: kernel %s: cannot allocate %u fiber stacks",
                                                  cc_emu_status_name(CC_EMU_ERROR_OUT_OF_MEMORY), l.kernel->name,
                                                  k * l.threads_per_block));
        return false;
    }
    bool ok = true;
    unsigned prepared = 0;
    for (; prepared < k && ok; ++prepared) {
        // %cluster_ctarank = x + y*cx + z*cx*cy of the block's place in its cluster.
        const unsigned r = prepared;
        const uint3 idx{static_cast<unsigned>(kx * c.x + r % c.x), static_cast<unsigned>(ky * c.y + (r / c.x) % c.y),
                        static_cast<unsigned>(kz * c.z + r / (c.x * c.y))};
        ok = prepare_block(w, l, r, idx);
    }
    if (ok) {
        for (unsigned r = 0; r < k; ++r) hb_release(&w.blocks[r]->start_sync);
#if defined(CC_EMU_PROFILE)
        prof::block_begin(w, l, linear_cluster);
#endif
        ClusterRunner runner(w, l);
        ok = runner.run();
#if defined(CC_EMU_PROFILE)
        prof::block_end(w);
#endif
        if (!ok) {
            for (unsigned r = 0; r < k; ++r) {
                Block& b = *w.blocks[r];
                for (unsigned t = 0; t < b.nthreads; ++t) {
                    Fiber& f = *w.fibers[b.first_fiber + t];
                    if (f.state != FiberState::kExited) fiber_abandon(w, f, &b.end_sync);
                }
            }
        }
        for (unsigned r = 0; r < k; ++r) hb_acquire(&w.blocks[r]->end_sync);
    }
    for (unsigned r = 0; r < prepared; ++r) {
        std::free(w.blocks[r]->dynamic_shared);
        w.blocks[r]->dynamic_shared = nullptr;
    }
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
        const unsigned long long c = prof::block_at(l, i);
#else
        const unsigned long long c = i;
#endif
        if (!run_cluster(w, l, c)) break;
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

void* dynamic_shared() { return cc_emu::t_worker->current->block->dynamic_shared; }

void* static_shared(const void* tag, std::size_t bytes, const char* name, const char* file, unsigned line) {
    Worker& w = *cc_emu::t_worker;
    cc_emu::StaticShared& s = w.current->block->static_shared;
    // Every thread of the block runs the declaration; the first one places the variable, the others find it.
    for (const auto& v : s.variables)
        if (v.tag == tag) {
            cc_emu::hb_acquire(s.arena + v.offset); // TSan: after the first thread's fill below
            return s.arena + v.offset;
        }
    cc_emu::Launch& l = *w.launch;
    const auto fault = [&](int code, const std::string& why) -> void* {
        const uint3 b = w.current->block->idx;
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
    s.variables.push_back({tag, offset, static_cast<unsigned>(bytes)});
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
    f.barrier_sync_parity = static_cast<char>(f.block->barrier_generation & 1);
    char* slot = &f.block->barrier_sync[static_cast<unsigned>(f.barrier_sync_parity)];
    cc_emu::hb_release(slot);
    cc_emu::fiber_switch_out(w, f, false);
    cc_emu::hb_acquire(slot);
}

unsigned cluster_rank() { return cc_emu::t_worker->current->block->rank; }

unsigned cluster_size() { return cc_emu::t_worker->cluster_blocks; }

void cluster_sync(const char* file, unsigned line) {
    Worker& w = *cc_emu::t_worker;
    Fiber& f = *w.current;
    f.state = FiberState::kAtClusterBarrier;
    f.file = file;
    f.line = line;
    // TSan: as __syncthreads, over the cluster (its blocks' fibers all run on this OS thread, but TSan sees each
    // fiber as a thread of its own, so a block's reads of another's shared memory need this edge).
    char* slot = &w.cluster_sync[w.cluster_generation & 1];
    cc_emu::hb_release(slot);
    cc_emu::fiber_switch_out(w, f, false);
    cc_emu::hb_acquire(slot);
}

const void* cluster_map(const void* shared, unsigned rank, unsigned bytes, const char* file, unsigned line) {
    Worker& w = *cc_emu::t_worker;
    Fiber& f = *w.current;
    const cc_emu::Block& own = *f.block;
    const auto fault = [&](const std::string& why) -> const void* {
        cc_emu::Launch& l = *w.launch;
        l.fail(CC_EMU_INVALID_OPERAND,
               cc_emu::format("%s: kernel %s, block (%u,%u,%u) thread (%u,%u,%u): cc_cluster_load at %s:%u: %s",
                              cc_emu_status_name(CC_EMU_INVALID_OPERAND), l.kernel->name, own.idx.x, own.idx.y, own.idx.z,
                              f.ctx.thread_idx.x, f.ctx.thread_idx.y, f.ctx.thread_idx.z, file, line, why.c_str()));
        f.state = FiberState::kFaulted;
        cc_emu::fiber_switch_out(w, f, false); // never resumed: the cluster is abandoned
        std::abort();
    };
    if (rank >= w.cluster_blocks)
        return fault(cc_emu::format("rank %u is outside the cluster of %u block(s)", rank, w.cluster_blocks));
    // Cheap to see and always a bug: without a cluster barrier first the other block may not have started, nor
    // stored what is read.
    if (w.cluster_generation == 0)
        return fault(cc_emu::format("reads block rank %u's shared memory before the first cc_cluster_sync", rank));
    const cc_emu::Block& target = *w.blocks[rank];
    if (target.exited)
        return fault(cc_emu::format("block rank %u has exited: its shared memory is gone (end the kernel with a "
                                    "cc_cluster_sync after the last read)", rank));
    const auto at = reinterpret_cast<std::uintptr_t>(shared);
    const auto dyn = reinterpret_cast<std::uintptr_t>(own.dynamic_shared);
    const unsigned dyn_bytes = w.launch->dynamic_shared_bytes;
    if (own.dynamic_shared && at - dyn < dyn_bytes) {
        if (at - dyn + bytes > dyn_bytes)
            return fault(cc_emu::format("%u bytes at offset %llu pass the end of the %u-byte dynamic shared buffer", bytes,
                                        static_cast<unsigned long long>(at - dyn), dyn_bytes));
        return static_cast<const unsigned char*>(target.dynamic_shared) + (at - dyn);
    }
    const cc_emu::StaticShared& mine = own.static_shared;
    const auto arena = reinterpret_cast<std::uintptr_t>(mine.arena);
    for (const auto& v : mine.variables) {
        if (at - (arena + v.offset) >= v.bytes) continue;
        const std::uintptr_t offset = at - (arena + v.offset);
        if (offset + bytes > v.bytes)
            return fault(cc_emu::format("%u bytes at offset %llu pass the end of a %u-byte static shared variable", bytes,
                                        static_cast<unsigned long long>(offset), v.bytes));
        for (const auto& t : target.static_shared.variables)
            if (t.tag == v.tag) return target.static_shared.arena + t.offset + offset;
        return fault(cc_emu::format("block rank %u has not declared that static shared variable", rank));
    }
    return fault("the address is not in this block's shared memory (a static shared variable or the dynamic buffer)");
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
