// The emulator's memory-traffic profile (C API: include/cheapconv/profile.h). Compiled only into the
// profiling library, libcheapconv_emu_profile.so, whose every object is built with CC_EMU_PROFILE=1.
//
// Instrumentation. The kernel objects of that library (and only they) are compiled with g++'s
// -fsanitize=thread, which puts a call before every load and store the optimised code still makes
// (__tsan_read4(addr), __tsan_write16(addr), __tsan_read_range(addr, n), ...) and replaces every atomic
// instruction by a call that must perform it (__tsan_atomic32_fetch_add, ...). The library is not linked
// against libtsan: this file defines every hook g++ 12 can emit (the list is in cc1plus; see the hooks
// at the end) and records instead of checking. The hook's return address is the static instruction's
// identity: one call site per load or store of the host code. The rest of the library (this recorder,
// the scheduler, the launchers) is not instrumented.
//   What the profiling build changes so that a host access is a GPU access (native/Makefile PROFILE_KERNEL_FLAGS):
//   -fno-tree-sra keeps a float4 copy one 16-byte access instead of four scalar ones; -fno-tree-vectorize
//   and -fno-store-merging stop g++ from fusing a thread's neighbouring scalar accesses into wider ones
//   the source did not write; the shim (cuda_shim.h) inlines __ldg and the atomics into the kernel
//   (always_inline), records each atomic call once at its call site (profile_atomic: the host's own
//   atomic loads and compare-exchange retries are not GPU traffic), and leaves the unpacking of the
//   launch arguments uninstrumented (on a GPU parameters are constant-bank operands, not loads).
//   What remains different from a GPU: the accesses are those of the host compilation at -O2, which keeps
//   the source's loads and stores but may hoist, sink or drop some that the GPU compiler treats otherwise
//   (seen with clang-14: a thread's load of the shared word it stored itself is forwarded from the store
//   and disappears from the PTX; a float4 struct copied whole, no field used, becomes two 8-byte accesses
//   in the PTX but one 16-byte access here), and a __device__ function g++ does not inline shares its
//   instructions between callers. Counts are exact for what the host code does; the microkernels
//   (native/tests/profile) pin them to hand-computed values and are written so that their PTX makes the
//   same accesses (checked by reading it: ld.global.nc.v4.f32, ld/st.shared.v2/.v4).
//
// Classification of an address (record(), per lane):
//   - the running CUDA thread's own fiber stack: local variables and spills, registers on a GPU: ignored;
//   - the thread's ThreadContext (what threadIdx, blockIdx, blockDim, gridDim read): special registers;
//   - the library's own image (.rodata, .data): source locations the shim passes to __syncthreads,
//     constants; no kernel has __device__ globals, so nothing of the GPU's global memory lies there;
//   - shared memory: the block's dynamic shared buffer, or the worker's static shared arena, where
//     CC_STATIC_SHARED places the block's static variables (cuda_shim.h, emu_internal.h); in a cluster kernel,
//     those of every block of the cluster, so a distributed-shared-memory read (cc_cluster_load) counts as a
//     shared load, with its bank conflicts computed like a local one (the GPU's DSMEM path is slower than the
//     local one; the BN kernels that use it read a handful of words per block, so the model does not separate them);
//   - everything else is global memory (the caller's buffers).
//
// Warp grouping. On a GPU the active lanes of a warp execute a memory instruction together; here every
// lane is a fiber that runs alone until it waits. Each recorded access carries the lane's linear thread
// index and the instruction, and the block's trace is in execution order. At the end of a block the trace
// is bucketed by (warp, instruction) with a stable counting sort, so each lane's executions of one
// instruction stay in its program order, and the k-th execution of instruction I by every lane of warp W
// forms the warp-level request (W, I, k).
// For code without divergence this is exactly the GPU's grouping; under divergence (a lane executes an
// instruction more often than another) it is the usual approximation: the GPU could issue the extra
// executions with fewer lanes in other groupings, with the same total lane accesses.
//
// Counting (Nsight Compute's definitions, spelled out in profile.h): per request, global sectors are the
// distinct 32-byte sectors of the active lanes' byte ranges; shared wavefronts are, per phase (1 phase for
// accesses up to 4 bytes, 2 half-warps for 8 bytes, 4 quarter-warps for 16 bytes), the largest number of
// distinct 4-byte words addressed in one bank. Banks are taken from host addresses: every lane of one
// instruction addresses the same __shared__ array or the dynamic buffer, and shifting all its addresses by
// the array's (4-byte aligned) placement only renames the banks, so the conflicts are the GPU's. Global
// sector counts use host addresses too, so buffers must be 32-byte aligned as cudaMalloc's are (the
// C# EmulatedDevice allocates 256-byte aligned). Unique bytes: each block's global footprint as (sector,
// byte mask) pairs, merged over the launch.
//
// Sampling: prof::block_at() maps the i-th block the workers run to the i-th sampled block, so skipped
// blocks cost nothing; with CC_PROF_EXECUTE_ALL_BLOCKS every block runs and only the sampled ones record.
// A cluster kernel is sampled in whole clusters (its blocks run together): as many as cover the sample's
// blocks; a cluster's trace numbers its threads rank * (block rounded up to a warp) + thread, so its blocks'
// warps stay apart.
#include "emu_internal.h"

#include "cheapconv/profile.h"

#include <dlfcn.h>
#include <link.h>
#include <unistd.h>

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <string>
#include <unordered_map>
#include <vector>

namespace cc_emu::prof {
namespace {

using u64 = unsigned long long;

enum Op : unsigned char { kLoad, kStore, kAtomic, kMma };

// One lane's access, as the hook saw it.
struct Access {
    std::uintptr_t pc;      // the hook's return address: the static instruction
    std::uintptr_t address;
    std::uint32_t size;
    std::uint16_t thread;   // linear thread index in the cluster (Fiber::cluster_linear; in the block without clusters)
    Op op;
    bool shared;
};

// The library's own image and, per OS thread, its thread-local block (static __shared__ memory).
struct ModuleRanges {
    std::uintptr_t image_lo = 0, image_size = 0;
    std::uintptr_t base = 0;
};



// dl_iterate_phdr: this library's load segments.
struct PhdrQuery {
    std::uintptr_t inside; // an address in this library's code
    std::uintptr_t image_lo = ~std::uintptr_t{0}, image_hi = 0;
};

int phdr_callback(dl_phdr_info* info, std::size_t, void* data) {
    auto* q = static_cast<PhdrQuery*>(data);
    bool ours = false;
    for (int i = 0; i < info->dlpi_phnum; ++i) {
        const ElfW(Phdr)& ph = info->dlpi_phdr[i];
        if (ph.p_type == PT_LOAD && q->inside - (info->dlpi_addr + ph.p_vaddr) < ph.p_memsz) ours = true;
    }
    if (!ours) return 0;
    for (int i = 0; i < info->dlpi_phnum; ++i) {
        const ElfW(Phdr)& ph = info->dlpi_phdr[i];
        if (ph.p_type == PT_LOAD) {
            q->image_lo = std::min<std::uintptr_t>(q->image_lo, info->dlpi_addr + ph.p_vaddr);
            q->image_hi = std::max<std::uintptr_t>(q->image_hi, info->dlpi_addr + ph.p_vaddr + ph.p_memsz);
        }
    }
    return 1;
}

std::uintptr_t module_base() {
    Dl_info info{};
    dladdr(reinterpret_cast<void*>(&module_base), &info);
    return reinterpret_cast<std::uintptr_t>(info.dli_fbase);
}

std::uintptr_t address_inside() { return reinterpret_cast<std::uintptr_t>(&module_base); }

const ModuleRanges& module_ranges() {
    static const ModuleRanges ranges = [] {
        ModuleRanges r;
        PhdrQuery q{address_inside()};
        dl_iterate_phdr(&phdr_callback, &q);
        r.base = module_base();
        if (q.image_hi > q.image_lo) {
            r.image_lo = q.image_lo;
            r.image_size = q.image_hi - q.image_lo;
        }
        return r;
    }();
    return ranges;
}

// Distinct global bytes as (sector, byte mask) pairs; compact() merges equal sectors.
struct Footprint {
    struct Entry {
        u64 sector;
        std::uint32_t mask;
    };
    std::vector<Entry> entries;
    std::size_t compacted = 0; // size after the last compact()

    void add(std::uintptr_t address, std::uint32_t size) {
        const std::uintptr_t end = address + size;
        for (std::uintptr_t s = address >> 5; s <= (end - 1) >> 5; ++s) {
            const std::uintptr_t lo = std::max(address, s << 5), hi = std::min(end, (s + 1) << 5);
            const unsigned n = static_cast<unsigned>(hi - lo), first = static_cast<unsigned>(lo & 31);
            const std::uint32_t mask = n == 32 ? ~0u : ((1u << n) - 1) << first;
            // Neighbouring lanes mostly share a sector: merging here keeps the block's list short.
            if (!entries.empty() && entries.back().sector == s) entries.back().mask |= mask;
            else entries.push_back(Entry{s, mask});
        }
    }
    void compact() {
        std::sort(entries.begin(), entries.end(), [](const Entry& a, const Entry& b) { return a.sector < b.sector; });
        std::size_t out = 0;
        for (std::size_t i = 0; i < entries.size(); ++i) {
            if (out > 0 && entries[out - 1].sector == entries[i].sector) entries[out - 1].mask |= entries[i].mask;
            else entries[out++] = entries[i];
        }
        entries.resize(out);
        compacted = out;
    }
    // Keeps memory bounded over many blocks: compacts when the entries have doubled since the last time.
    void maybe_compact() {
        if (entries.size() > 2 * compacted + 65536) compact();
    }
    void append(Footprint& other) {
        entries.insert(entries.end(), other.entries.begin(), other.entries.end());
        other.entries.clear();
        other.compacted = 0;
        maybe_compact();
    }
    u64 sectors() const { return entries.size(); }
    u64 bytes() const {
        u64 n = 0;
        for (const Entry& e : entries) n += static_cast<u64>(std::popcount(e.mask));
        return n;
    }
};

struct InstructionCounts {
    unsigned width = 0;
    u64 requests = 0, lane_accesses = 0, bytes = 0, sectors = 0, wavefronts = 0, ideal_wavefronts = 0;

    void add(const InstructionCounts& o) {
        width = std::max(width, o.width);
        requests += o.requests;
        lane_accesses += o.lane_accesses;
        bytes += o.bytes;
        sectors += o.sectors;
        wavefronts += o.wavefronts;
        ideal_wavefronts += o.ideal_wavefronts;
    }
};

// Instruction key: pc (below 2^56 in user space) and kind.
u64 instruction_key(std::uintptr_t pc, int kind) { return static_cast<u64>(pc) | (static_cast<u64>(kind) << 56); }
std::uintptr_t key_pc(u64 key) { return static_cast<std::uintptr_t>(key & ((u64{1} << 56) - 1)); }
int key_kind(u64 key) { return static_cast<int>(key >> 56); }

// What one worker (OS thread) accumulates over the recorded blocks it runs of one launch.
struct Accumulated {
    std::unordered_map<u64, InstructionCounts> instructions;
    cc_prof_counters totals{};
    Footprint reads, writes;
    u64 blocks = 0;

    void clear() {
        instructions.clear();
        totals = cc_prof_counters{};
        reads.entries.clear();
        reads.compacted = 0;
        writes.entries.clear();
        writes.compacted = 0;
        blocks = 0;
    }
};

void add_counters(cc_prof_counters& to, const cc_prof_counters& from) {
    static_assert(sizeof(cc_prof_counters) % sizeof(u64) == 0);
    auto* t = reinterpret_cast<u64*>(&to);
    const auto* f = reinterpret_cast<const u64*>(&from);
    for (std::size_t i = 0; i < sizeof(cc_prof_counters) / sizeof(u64); ++i) t[i] += f[i];
}

} // namespace

namespace {

constexpr int kKinds = 7; // cc_prof_kind values

// Dense ids for the instructions (pcs) one worker meets in a launch: a block's accesses are bucketed by
// (warp, id) with a counting sort, and counted in arrays indexed by id.
class InstructionIds {
public:
    unsigned id(std::uintptr_t pc) {
        if (2 * (pcs_.size() + 1) > slots_.size()) grow();
        std::size_t h = hash(pc) & (slots_.size() - 1);
        while (slots_[h].pc != 0) {
            if (slots_[h].pc == pc) return slots_[h].id;
            h = (h + 1) & (slots_.size() - 1);
        }
        slots_[h] = Slot{pc, static_cast<unsigned>(pcs_.size())};
        pcs_.push_back(pc);
        return slots_[h].id;
    }
    std::size_t size() const { return pcs_.size(); }
    std::uintptr_t pc(unsigned id) const { return pcs_[id]; }
    void clear() {
        slots_.assign(256, Slot{});
        pcs_.clear();
    }

private:
    struct Slot {
        std::uintptr_t pc = 0;
        unsigned id = 0;
    };
    static std::size_t hash(std::uintptr_t pc) { return static_cast<std::size_t>((pc * 0x9E3779B97F4A7C15ull) >> 20); }
    void grow() {
        std::vector<Slot> old = std::move(slots_);
        slots_.assign(std::max<std::size_t>(256, 2 * old.size()), Slot{});
        for (const Slot& o : old) {
            if (o.pc == 0) continue;
            std::size_t h = hash(o.pc) & (slots_.size() - 1);
            while (slots_[h].pc != 0) h = (h + 1) & (slots_.size() - 1);
            slots_[h] = o;
        }
    }
    std::vector<Slot> slots_ = std::vector<Slot>(256);
    std::vector<std::uintptr_t> pcs_;
};

// The lanes of one warp-level request (before splitting by space).
struct Group {
    const Access* lanes[32];
    unsigned ids[32];
    unsigned n = 0;
};

} // namespace

struct WorkerProfile {
    Worker* worker = nullptr;
    u64 launch = 0;                        // serial number of the launch `acc` belongs to (0: none)
    std::vector<Access> trace;             // the running block's accesses
    std::uintptr_t image_lo = 0, image_size = 0;
    std::vector<std::pair<std::uintptr_t, std::uintptr_t>> shared_ranges; // (start, size) of the cluster's shared memory
    Accumulated acc;                       // totals and footprints; instructions are in `counts` until flushed
    InstructionIds ids;
    std::vector<InstructionCounts> counts; // [id * kKinds + kind]
    // Scratch for analyse_block.
    std::vector<unsigned> access_bucket, bucket_start, order, scratch_cursor;
    std::vector<Group> groups;
    std::vector<std::uintptr_t> scratch, scratch_previous;

    void reset(u64 launch_serial) {
        acc.clear();
        ids.clear();
        counts.clear();
        launch = launch_serial;
    }
    // Moves the per-id counts into acc.instructions (keyed by pc and kind).
    void flush_instructions() {
        for (std::size_t id = 0; id < ids.size(); ++id)
            for (int kind = 0; kind < kKinds; ++kind) {
                const InstructionCounts& c = counts[id * kKinds + static_cast<std::size_t>(kind)];
                if (c.requests) acc.instructions[instruction_key(ids.pc(static_cast<unsigned>(id)), kind)].add(c);
            }
        ids.clear();
        counts.clear();
    }
};

struct LaunchProfile {
    u64 serial = 0;        // distinguishes launches (a pointer could be reused)
    u64 session = 0;       // the session generation it belongs to
    u64 sampled = 0;       // blocks in the sample
    bool execute_all = false;
    std::mutex mu;         // guards acc
    Accumulated acc;
};

namespace {

// Non-null on an OS thread while it runs a block that is recorded.
thread_local WorkerProfile* t_recording = nullptr;

// ---- the session ----------------------------------------------------------------------------------------

struct InstructionRecord {
    cc_prof_instruction_info info{};
    std::uintptr_t pc = 0;
    std::string function, file;
};

struct LaunchRecord {
    cc_prof_launch_info info{};
    std::string kernel;
    std::vector<InstructionRecord> instructions;
};

struct Session {
    std::mutex mu;
    bool active = false;
    u64 generation = 0;
    u64 sample_blocks = 0;
    unsigned flags = 0;
    bool resolved = false;
    std::vector<std::unique_ptr<LaunchRecord>> launches;
};

Session& session() {
    static Session* s = new Session; // never destroyed: launches may end during process exit
    return *s;
}

// ---- per block: from lane accesses to warp requests -----------------------------------------------------------

// Distinct 32-byte sectors touched by the lanes' byte ranges.
u64 distinct_sectors(const Access* const* lanes, unsigned n, std::vector<std::uintptr_t>& scratch) {
    scratch.clear();
    for (unsigned i = 0; i < n; ++i) {
        const Access& a = *lanes[i];
        for (std::uintptr_t s = a.address >> 5; s <= (a.address + a.size - 1) >> 5; ++s) scratch.push_back(s);
    }
    // Lanes run in order, so the list is usually sorted already.
    if (!std::is_sorted(scratch.begin(), scratch.end())) std::sort(scratch.begin(), scratch.end());
    return static_cast<u64>(std::unique(scratch.begin(), scratch.end()) - scratch.begin());
}

// Shared-memory wavefronts of one request (see profile.h): phases by access width, per phase the largest
// number of distinct words in one bank; ideal = per active phase, ceil(distinct words / 32). For 16-byte
// accesses, words that the first quarter-warp of a half-warp reads are a broadcast to the second: measured with
// Nsight Compute on an H100 and an A10 (NVIDIA developer forum, "Discrepancy in LDS.128 Wavefronts"), a warp whose
// lanes 0-15 read one float4 and lanes 16-31 another takes 2 wavefronts, not 4, while lanes 32 bytes apart, whose
// quarter-warps share no word, take the quarter-warp rule's 8.
void shared_wavefronts(const Access* const* lanes, const unsigned* lane_ids, unsigned n, unsigned width,
                       std::vector<std::uintptr_t>& scratch, std::vector<std::uintptr_t>& previous, u64* wavefronts, u64* ideal) {
    const unsigned phases = width <= 4 ? 1 : width <= 8 ? 2 : 4;
    const unsigned lanes_per_phase = 32 / phases;
    previous.clear();
    for (unsigned phase = 0; phase < phases; ++phase) {
        scratch.clear();
        for (unsigned i = 0; i < n; ++i) {
            if (lane_ids[i] / lanes_per_phase != phase) continue;
            const Access& a = *lanes[i];
            for (std::uintptr_t w = a.address >> 2; w <= (a.address + a.size - 1) >> 2; ++w) scratch.push_back(w);
        }
        if (!std::is_sorted(scratch.begin(), scratch.end())) std::sort(scratch.begin(), scratch.end());
        scratch.erase(std::unique(scratch.begin(), scratch.end()), scratch.end());
        const bool second_quarter = phases == 4 && phase % 2 == 1;
        if (phases == 4 && !second_quarter) previous = scratch; // sorted, distinct: the half-warp's first quarter
        if (second_quarter)
            std::erase_if(scratch, [&](std::uintptr_t w) { return std::binary_search(previous.begin(), previous.end(), w); });
        if (scratch.empty()) continue;
        unsigned per_bank[32] = {};
        unsigned most = 0;
        for (std::uintptr_t w : scratch) most = std::max(most, ++per_bank[w & 31]);
        *wavefronts += most;
        *ideal += (scratch.size() + 31) / 32;
    }
}

int kind_of(Op op, bool shared) {
    if (op == kMma) return CC_PROF_TENSOR_MMA;
    if (shared) return op == kLoad ? CC_PROF_SHARED_LOAD : op == kStore ? CC_PROF_SHARED_STORE : CC_PROF_SHARED_ATOMIC;
    return op == kLoad ? CC_PROF_GLOBAL_LOAD : op == kStore ? CC_PROF_GLOBAL_STORE : CC_PROF_GLOBAL_ATOMIC;
}

// One warp-level request: the lanes (all of one space) that executed instruction `id` for the k-th time.
void count_request(WorkerProfile& p, unsigned id, Footprint& reads, Footprint& writes, const Access* const* lanes,
                   const unsigned* lane_ids, unsigned n) {
    const Access& first = *lanes[0];
    const int kind = kind_of(first.op, first.shared);
    InstructionCounts& ic = p.counts[id * kKinds + static_cast<unsigned>(kind)];
    cc_prof_counters& t = p.acc.totals;
    unsigned width = 0;
    u64 bytes = 0;
    for (unsigned i = 0; i < n; ++i) {
        width = std::max(width, lanes[i]->size);
        bytes += lanes[i]->size;
    }
    ic.width = std::max(ic.width, width);
    ic.requests += 1;
    ic.lane_accesses += n;
    ic.bytes += bytes;
    if (first.op == kMma) {
        t.tensor_mma_requests += 1;
        return;
    }
    if (!first.shared) {
        const u64 sectors = distinct_sectors(lanes, n, p.scratch);
        ic.sectors += sectors;
        for (unsigned i = 0; i < n; ++i) {
            if (first.op != kStore) reads.add(lanes[i]->address, lanes[i]->size);
            if (first.op != kLoad) writes.add(lanes[i]->address, lanes[i]->size);
        }
        switch (first.op) {
        case kLoad: t.global_load_requests += 1, t.global_load_sectors += sectors, t.global_load_bytes += bytes; break;
        case kStore: t.global_store_requests += 1, t.global_store_sectors += sectors, t.global_store_bytes += bytes; break;
        case kAtomic: t.global_atomic_requests += 1, t.global_atomic_sectors += sectors, t.global_atomic_ops += n; break;
        case kMma: break; // counted above
        }
        return;
    }
    if (first.op == kAtomic) {
        t.shared_atomic_requests += 1;
        t.shared_atomic_ops += n;
        return;
    }
    u64 wavefronts = 0, ideal = 0;
    shared_wavefronts(lanes, lane_ids, n, width, p.scratch, p.scratch_previous, &wavefronts, &ideal);
    ic.wavefronts += wavefronts;
    ic.ideal_wavefronts += ideal;
    if (first.op == kLoad) {
        t.shared_load_requests += 1, t.shared_load_wavefronts += wavefronts, t.shared_load_ideal_wavefronts += ideal;
        t.shared_load_bytes += bytes;
    } else {
        t.shared_store_requests += 1, t.shared_store_wavefronts += wavefronts, t.shared_store_ideal_wavefronts += ideal;
        t.shared_store_bytes += bytes;
    }
}

// `blocks`: how many blocks the trace is of (a cluster's).
void analyse_block(WorkerProfile& p, unsigned blocks) {
    const std::vector<Access>& trace = p.trace;
    const std::size_t n = trace.size();
    // Bucket = (warp, instruction id). A counting sort keeps each bucket in trace order, so each lane's
    // executions of the instruction stay in its program order.
    p.access_bucket.resize(n);
    unsigned warps = 0;
    for (std::size_t i = 0; i < n; ++i) {
        p.access_bucket[i] = p.ids.id(trace[i].pc);
        warps = std::max(warps, (trace[i].thread >> 5) + 1u);
    }
    const std::size_t npc = p.ids.size();
    if (p.counts.size() < npc * kKinds) p.counts.resize(npc * kKinds);
    const std::size_t buckets = warps * npc;
    p.bucket_start.assign(buckets + 1, 0);
    for (std::size_t i = 0; i < n; ++i) {
        p.access_bucket[i] += static_cast<unsigned>((trace[i].thread >> 5) * npc);
        ++p.bucket_start[p.access_bucket[i] + 1];
    }
    for (std::size_t b = 0; b < buckets; ++b) p.bucket_start[b + 1] += p.bucket_start[b];
    p.order.resize(n);
    {
        std::vector<unsigned>& cursor = p.scratch_cursor;
        cursor.assign(p.bucket_start.begin(), p.bucket_start.end() - 1);
        for (std::size_t i = 0; i < n; ++i) p.order[cursor[p.access_bucket[i]]++] = static_cast<unsigned>(i);
    }
    Footprint reads, writes;
    for (std::size_t b = 0; b < buckets; ++b) {
        if (p.bucket_start[b] == p.bucket_start[b + 1]) continue;
        // The k-th execution by every lane that executed the instruction that often: request k.
        unsigned executions[32] = {};
        std::size_t longest = 0;
        for (unsigned j = p.bucket_start[b]; j < p.bucket_start[b + 1]; ++j) {
            const Access& a = trace[p.order[j]];
            const unsigned lane = a.thread & 31;
            const unsigned k = executions[lane]++;
            if (k >= longest) {
                longest = k + 1;
                if (p.groups.size() < longest) p.groups.resize(longest);
                p.groups[k].n = 0;
            }
            Group& g = p.groups[k];
            g.lanes[g.n] = &a;
            g.ids[g.n++] = lane;
        }
        const unsigned id = static_cast<unsigned>(b % npc);
        for (std::size_t k = 0; k < longest; ++k) {
            // Split by space: a generic pointer may reach shared memory in some lanes and global in others.
            const Group& g = p.groups[k];
            Group split[2];
            for (unsigned i = 0; i < g.n; ++i) {
                Group& s = split[g.lanes[i]->shared ? 1 : 0];
                s.lanes[s.n] = g.lanes[i];
                s.ids[s.n++] = g.ids[i];
            }
            for (const Group& s : split)
                if (s.n) count_request(p, id, reads, writes, s.lanes, s.ids, s.n);
        }
    }
    reads.compact();
    writes.compact();
    p.acc.reads.append(reads);
    p.acc.writes.append(writes);
    p.acc.blocks += blocks;
    p.trace.clear();
}

// Evenly spaced sample of `sampled` out of `total` blocks: the i-th is floor(i * total / sampled).
u64 sample_at(u64 i, u64 total, u64 sampled) {
    return static_cast<u64>(static_cast<unsigned __int128>(i) * total / sampled);
}

bool in_sample(u64 block, u64 total, u64 sampled) {
    if (sampled >= total) return true;
    // The smallest i with floor(i * total / sampled) >= block is ceil(block * sampled / total).
    const u64 i = static_cast<u64>((static_cast<unsigned __int128>(block) * sampled + total - 1) / total);
    return i < sampled && sample_at(i, total, sampled) == block;
}

u64 scaled(u64 raw, double scale) { return static_cast<u64>(std::llround(static_cast<double>(raw) * scale)); }

void scale_counters(const cc_prof_counters& raw, double scale, cc_prof_counters* out) {
    const auto* r = reinterpret_cast<const u64*>(&raw);
    auto* o = reinterpret_cast<u64*>(out);
    for (std::size_t i = 0; i < sizeof(cc_prof_counters) / sizeof(u64); ++i) o[i] = scaled(r[i], scale);
}

// ---- source lines -------------------------------------------------------------------------------------------

std::string shell_quote(const std::string& s) {
    std::string q = "'";
    for (char c : s) q += c == '\'' ? std::string("'\\''") : std::string(1, c);
    return q + "'";
}

// Resolves each instruction's function and file:line with one addr2line run per library file (the
// profiling library is built with -g, its paths relative to native/). file:line: the innermost inlined
// frame outside cuda_shim.h, the kernel source's line (an atomicAdd or __ldg is the shim's inline
// function, called from the kernel). function: the outermost frame, the function the code was compiled
// into (the kernel, or a __device__ function g++ did not inline); addr2line's names of the inner frames
// are not reliable (an inlined member function is reported under its caller's name).
void resolve_sources(Session& s) {
    struct Site {
        std::string function, file;
        unsigned line = 0;
    };
    std::unordered_map<std::uintptr_t, Site> sites;
    std::unordered_map<std::string, std::vector<std::pair<std::uintptr_t, std::uintptr_t>>> by_file; // file -> (pc, offset)
    for (const auto& l : s.launches)
        for (const InstructionRecord& r : l->instructions) {
            if (sites.count(r.pc)) continue;
            sites[r.pc] = Site{};
            Dl_info info{};
            if (dladdr(reinterpret_cast<void*>(r.pc), &info) && info.dli_fname)
                by_file[info.dli_fname].emplace_back(r.pc, r.pc - reinterpret_cast<std::uintptr_t>(info.dli_fbase) - 1);
        }
    for (auto& [file, pcs] : by_file) {
        const char* tmp = std::getenv("TMPDIR");
        std::string input = std::string(tmp && *tmp ? tmp : "/tmp") + "/cc_prof_addr2line_XXXXXX";
        const int fd = mkstemp(input.data());
        if (fd < 0) continue;
        std::string addresses;
        for (const auto& [pc, offset] : pcs) addresses += format("0x%llx\n", static_cast<u64>(offset));
        const bool written = write(fd, addresses.data(), addresses.size()) == static_cast<ssize_t>(addresses.size());
        close(fd);
        FILE* out = written ? popen(("addr2line -C -f -i -a -e " + shell_quote(file) + " < " + shell_quote(input) + " 2>/dev/null").c_str(), "r")
                            : nullptr;
        if (out) {
            // Per address: "0x<offset>", then (function, file:line) pairs, innermost first.
            std::unordered_map<std::uintptr_t, std::uintptr_t> pc_of;
            for (const auto& [pc, offset] : pcs) pc_of[offset] = pc;
            Site* site = nullptr;
            bool chosen = false;
            char buf[4096];
            bool expect_function = true;
            while (std::fgets(buf, sizeof buf, out)) {
                std::string text(buf);
                while (!text.empty() && (text.back() == '\n' || text.back() == '\r')) text.pop_back();
                if (text.rfind("0x", 0) == 0 && text.find_first_not_of("0123456789abcdefx") == std::string::npos) {
                    const auto it = pc_of.find(static_cast<std::uintptr_t>(std::strtoull(text.c_str(), nullptr, 16)));
                    site = it == pc_of.end() ? nullptr : &sites[it->second];
                    chosen = false;
                    expect_function = true;
                    continue;
                }
                if (expect_function) {
                    if (site) site->function = text == "??" ? "" : text; // the last frame's name stays
                    expect_function = false;
                    continue;
                }
                expect_function = true;
                if (!site || chosen) continue;
                const std::size_t paren = text.find(" (discriminator");
                if (paren != std::string::npos) text.resize(paren);
                const std::size_t colon = text.rfind(':');
                if (colon == std::string::npos || text.compare(0, 2, "??") == 0) continue;
                std::string path = text.substr(0, colon);
                if (path.rfind("./", 0) == 0) path.erase(0, 2); // compiled with -ffile-prefix-map=native=.
                site->file = path;
                site->line = static_cast<unsigned>(std::strtoul(text.c_str() + colon + 1, nullptr, 10));
                // Keep looking outward past the shim's inline functions; the first frame elsewhere wins.
                chosen = !path.ends_with("cuda_shim.h");
            }
            pclose(out);
        }
        unlink(input.c_str());
    }
    for (auto& l : s.launches)
        for (InstructionRecord& r : l->instructions) {
            const Site& site = sites[r.pc];
            r.function = site.function;
            r.file = site.file;
            r.info.line = site.line;
        }
}

} // namespace

// ---- the emulator's calls (emu_internal.h) ----------------------------------------------------------------------

void launch_begin(Launch& l) {
    l.profile = nullptr;
    l.blocks_to_run = l.total_clusters; // the workers take clusters (blocks without __cluster_dims__)
    Session& s = session();
    std::lock_guard<std::mutex> lock(s.mu);
    if (!s.active) return;
    auto* p = new LaunchProfile;
    static u64 serial = 0; // guarded by s.mu
    p->serial = ++serial;
    p->session = s.generation;
    p->execute_all = (s.flags & CC_PROF_EXECUTE_ALL_BLOCKS) != 0;
    // In clusters (one block each without __cluster_dims__): enough to cover the asked-for blocks.
    const u64 k = l.cluster_size;
    p->sampled = s.sample_blocks == 0 ? l.total_clusters : std::min<u64>((s.sample_blocks + k - 1) / k, l.total_clusters);
    if (!p->execute_all) l.blocks_to_run = p->sampled;
    l.profile = p;
}

unsigned long long block_at(const Launch& l, unsigned long long i) {
    if (!l.profile || l.profile->execute_all) return i;
    return sample_at(i, l.total_clusters, l.profile->sampled);
}

void block_begin(Worker& w, const Launch& l, unsigned long long linear_cluster) {
    t_recording = nullptr;
    LaunchProfile* lp = l.profile;
    if (!lp) return;
    if (lp->execute_all && !in_sample(linear_cluster, l.total_clusters, lp->sampled)) return;
    if (!w.profile) {
        w.profile = new WorkerProfile;
        w.profile->worker = &w;
        w.profile->trace.reserve(1 << 16);
    }
    WorkerProfile& p = *w.profile;
    if (p.launch != lp->serial) p.reset(lp->serial); // also drops what a failed launch left behind
    p.trace.clear();
    p.shared_ranges.clear();
    for (unsigned r = 0; r < w.cluster_blocks; ++r) {
        const Block& b = *w.blocks[r];
        if (b.dynamic_shared) p.shared_ranges.emplace_back(reinterpret_cast<std::uintptr_t>(b.dynamic_shared), l.dynamic_shared_bytes);
        // The static shared arena exists before a block starts (run_cluster allocates it).
        p.shared_ranges.emplace_back(reinterpret_cast<std::uintptr_t>(b.static_shared.arena), StaticShared::kCapacity);
    }
    p.image_lo = module_ranges().image_lo;
    p.image_size = module_ranges().image_size;
    t_recording = &p;
}

void block_end(Worker& w) {
    if (!t_recording) return;
    t_recording = nullptr;
    analyse_block(*w.profile, w.cluster_blocks);
}

void worker_done(Worker& w, Launch& l) {
    t_recording = nullptr;
    LaunchProfile* lp = l.profile;
    if (!lp || !w.profile || w.profile->launch != lp->serial) return;
    w.profile->flush_instructions();
    Accumulated& a = w.profile->acc;
    {
        std::lock_guard<std::mutex> lock(lp->mu);
        for (const auto& [key, counts] : a.instructions) lp->acc.instructions[key].add(counts);
        add_counters(lp->acc.totals, a.totals);
        lp->acc.reads.append(a.reads);
        lp->acc.writes.append(a.writes);
        lp->acc.blocks += a.blocks;
    }
    w.profile->reset(0);
}

void worker_destroy(Worker& w) {
    delete w.profile;
    w.profile = nullptr;
}

void launch_end(Launch& l) {
    LaunchProfile* lp = l.profile;
    if (!lp) return;
    l.profile = nullptr;
    Accumulated& a = lp->acc;
    a.reads.compact();
    a.writes.compact();
    auto r = std::make_unique<LaunchRecord>();
    r->kernel = l.kernel->name;
    cc_prof_launch_info& info = r->info;
    info.grid = cc_prof_dim3{l.grid.x, l.grid.y, l.grid.z};
    info.block = cc_prof_dim3{l.block.x, l.block.y, l.block.z};
    info.dynamic_shared_bytes = l.dynamic_shared_bytes;
    info.status = l.status;
    info.blocks_total = l.total_blocks;
    info.blocks_sampled = a.blocks;
    info.blocks_executed = lp->execute_all ? l.total_blocks : std::min<u64>(l.next_block.load(), l.blocks_to_run) * l.cluster_size;
    info.outputs_complete = info.blocks_executed == l.total_blocks && l.status == 0;
    info.scale = a.blocks ? static_cast<double>(l.total_blocks) / static_cast<double>(a.blocks) : 0.0;
    info.raw = a.totals;
    info.raw.unique_read_bytes = a.reads.bytes();
    info.raw.unique_read_sectors = a.reads.sectors();
    info.raw.unique_write_bytes = a.writes.bytes();
    info.raw.unique_write_sectors = a.writes.sectors();
    scale_counters(info.raw, info.scale, &info.scaled);
    for (const auto& [key, counts] : a.instructions) {
        InstructionRecord ir;
        ir.pc = key_pc(key);
        ir.info.id = ir.pc - module_ranges().base;
        ir.info.kind = key_kind(key);
        ir.info.width = counts.width;
        ir.info.requests = counts.requests;
        ir.info.lane_accesses = counts.lane_accesses;
        ir.info.bytes = counts.bytes;
        ir.info.sectors = counts.sectors;
        ir.info.wavefronts = counts.wavefronts;
        ir.info.ideal_wavefronts = counts.ideal_wavefronts;
        r->instructions.push_back(std::move(ir));
    }
    std::sort(r->instructions.begin(), r->instructions.end(), [](const InstructionRecord& x, const InstructionRecord& y) {
        return x.info.id != y.info.id ? x.info.id < y.info.id : x.info.kind < y.info.kind;
    });
    info.instruction_count = static_cast<int>(r->instructions.size());
    const u64 generation = lp->session;
    delete lp;
    Session& s = session();
    std::lock_guard<std::mutex> lock(s.mu);
    if (s.generation == generation) s.launches.push_back(std::move(r)); // else a new session began meanwhile
}

// ---- recording ----------------------------------------------------------------------------------------------

namespace {

inline void record(const void* address, std::size_t size, Op op, void* pc) {
    WorkerProfile* p = t_recording;
    if (!p) return;
    const Fiber* f = p->worker->current;
    if (!f || size == 0) return;
    const auto a = reinterpret_cast<std::uintptr_t>(address);
    if (a - reinterpret_cast<std::uintptr_t>(f->stack_lo) < f->stack_size) return;    // registers, local memory
    if (a - reinterpret_cast<std::uintptr_t>(&f->ctx) < sizeof f->ctx) return;        // special registers
    if (a - p->image_lo < p->image_size) return;                                      // constants, source locations
    bool shared = false;
    for (const auto& [lo, bytes] : p->shared_ranges) shared = shared || a - lo < bytes;
    p->trace.push_back(Access{reinterpret_cast<std::uintptr_t>(pc), a, static_cast<std::uint32_t>(size),
                              static_cast<std::uint16_t>(f->cluster_linear), op, shared});
}

// A warp-collective mma.sync: one entry per lane, no memory.
inline void record_mma(void* pc) {
    WorkerProfile* p = t_recording;
    if (!p) return;
    const Fiber* f = p->worker->current;
    if (!f) return;
    p->trace.push_back(Access{reinterpret_cast<std::uintptr_t>(pc), 0, 0, static_cast<std::uint16_t>(f->cluster_linear), kMma, false});
}

} // namespace
} // namespace cc_emu::prof

namespace cc_emu_detail {

void profile_atomic(const void* address, unsigned size) {
    cc_emu::prof::record(address, size, cc_emu::prof::kAtomic, __builtin_return_address(0));
}

// cp.async: the global load and the shared store it makes, as two instructions of the call site (the store's
// identity is the call's return address + 1, which no other call site can have: a call is 5 bytes long).
void profile_async_copy(const void* dst, const void* src, unsigned bytes) {
    auto* pc = static_cast<char*>(__builtin_return_address(0));
    cc_emu::prof::record(src, bytes, cc_emu::prof::kLoad, pc);
    cc_emu::prof::record(dst, bytes, cc_emu::prof::kStore, pc + 1);
}

void profile_mma() { cc_emu::prof::record_mma(__builtin_return_address(0)); }

} // namespace cc_emu_detail

// ---- the instrumentation hooks g++ 12 emits for -fsanitize=thread -----------------------------------------------
// All of them (grep -ao '__tsan_[a-z0-9_]*' in cc1plus), plus clang's unaligned variants. Hidden: the kernel
// objects bind to them inside the library. Plain accesses are recorded with the hook's return address;
// atomics are performed (the instrumented code no longer contains the instruction) but not recorded
// (the shim records each atomic call once, see profile_atomic); fences are performed.
#define CC_PROF_HOOK extern "C" __attribute__((visibility("hidden"), noinline))

#define CC_PROF_ACCESS_HOOKS(N)                                                                                      \
    CC_PROF_HOOK void __tsan_read##N(void* a) { cc_emu::prof::record(a, N, cc_emu::prof::kLoad, __builtin_return_address(0)); } \
    CC_PROF_HOOK void __tsan_write##N(void* a) { cc_emu::prof::record(a, N, cc_emu::prof::kStore, __builtin_return_address(0)); } \
    CC_PROF_HOOK void __tsan_volatile_read##N(void* a) { cc_emu::prof::record(a, N, cc_emu::prof::kLoad, __builtin_return_address(0)); } \
    CC_PROF_HOOK void __tsan_volatile_write##N(void* a) { cc_emu::prof::record(a, N, cc_emu::prof::kStore, __builtin_return_address(0)); }
CC_PROF_ACCESS_HOOKS(1)
CC_PROF_ACCESS_HOOKS(2)
CC_PROF_ACCESS_HOOKS(4)
CC_PROF_ACCESS_HOOKS(8)
CC_PROF_ACCESS_HOOKS(16)
#undef CC_PROF_ACCESS_HOOKS

#define CC_PROF_UNALIGNED_HOOKS(N)                                                                                   \
    CC_PROF_HOOK void __tsan_unaligned_read##N(const void* a) { cc_emu::prof::record(a, N, cc_emu::prof::kLoad, __builtin_return_address(0)); } \
    CC_PROF_HOOK void __tsan_unaligned_write##N(void* a) { cc_emu::prof::record(a, N, cc_emu::prof::kStore, __builtin_return_address(0)); }
CC_PROF_UNALIGNED_HOOKS(2)
CC_PROF_UNALIGNED_HOOKS(4)
CC_PROF_UNALIGNED_HOOKS(8)
CC_PROF_UNALIGNED_HOOKS(16)
#undef CC_PROF_UNALIGNED_HOOKS

// Accesses that are not a power of two up to 16 bytes (aggregates, bit-fields): one access of `size` bytes.
CC_PROF_HOOK void __tsan_read_range(void* a, std::size_t size) {
    cc_emu::prof::record(a, size, cc_emu::prof::kLoad, __builtin_return_address(0));
}
CC_PROF_HOOK void __tsan_write_range(void* a, std::size_t size) {
    cc_emu::prof::record(a, size, cc_emu::prof::kStore, __builtin_return_address(0));
}
// A store of a vtable pointer; kernels have none, recorded as the 8-byte store it is.
CC_PROF_HOOK void __tsan_vptr_update(void** slot, void*) {
    cc_emu::prof::record(slot, sizeof(void*), cc_emu::prof::kStore, __builtin_return_address(0));
}
CC_PROF_HOOK void __tsan_init() {}
CC_PROF_HOOK void __tsan_func_entry(void*) {}
CC_PROF_HOOK void __tsan_func_exit() {}

// Atomics. The memory order argument is ignored: sequentially consistent is always correct.
#define CC_PROF_ATOMIC_HOOKS(BITS, T)                                                                                \
    CC_PROF_HOOK T __tsan_atomic##BITS##_load(const volatile T* a, int) { return __atomic_load_n(a, __ATOMIC_SEQ_CST); } \
    CC_PROF_HOOK void __tsan_atomic##BITS##_store(volatile T* a, T v, int) { __atomic_store_n(a, v, __ATOMIC_SEQ_CST); } \
    CC_PROF_HOOK T __tsan_atomic##BITS##_exchange(volatile T* a, T v, int) { return __atomic_exchange_n(a, v, __ATOMIC_SEQ_CST); } \
    CC_PROF_HOOK T __tsan_atomic##BITS##_fetch_add(volatile T* a, T v, int) { return __atomic_fetch_add(a, v, __ATOMIC_SEQ_CST); } \
    CC_PROF_HOOK T __tsan_atomic##BITS##_fetch_sub(volatile T* a, T v, int) { return __atomic_fetch_sub(a, v, __ATOMIC_SEQ_CST); } \
    CC_PROF_HOOK T __tsan_atomic##BITS##_fetch_and(volatile T* a, T v, int) { return __atomic_fetch_and(a, v, __ATOMIC_SEQ_CST); } \
    CC_PROF_HOOK T __tsan_atomic##BITS##_fetch_or(volatile T* a, T v, int) { return __atomic_fetch_or(a, v, __ATOMIC_SEQ_CST); } \
    CC_PROF_HOOK T __tsan_atomic##BITS##_fetch_xor(volatile T* a, T v, int) { return __atomic_fetch_xor(a, v, __ATOMIC_SEQ_CST); } \
    CC_PROF_HOOK T __tsan_atomic##BITS##_fetch_nand(volatile T* a, T v, int) { return __atomic_fetch_nand(a, v, __ATOMIC_SEQ_CST); } \
    CC_PROF_HOOK bool __tsan_atomic##BITS##_compare_exchange_strong(volatile T* a, T* expected, T v, int, int) {     \
        return __atomic_compare_exchange_n(a, expected, v, false, __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST);              \
    }                                                                                                                \
    CC_PROF_HOOK bool __tsan_atomic##BITS##_compare_exchange_weak(volatile T* a, T* expected, T v, int, int) {       \
        return __atomic_compare_exchange_n(a, expected, v, true, __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST);               \
    }
CC_PROF_ATOMIC_HOOKS(8, unsigned char)
CC_PROF_ATOMIC_HOOKS(16, unsigned short)
CC_PROF_ATOMIC_HOOKS(32, unsigned int)
CC_PROF_ATOMIC_HOOKS(64, unsigned long long)
#undef CC_PROF_ATOMIC_HOOKS

// 128-bit atomics without cmpxchg16b (which would need -mcx16 or libatomic): one lock for all of them.
namespace {
std::mutex atomic128_mu;
using u128 = unsigned __int128;
template <class F>
u128 atomic128(volatile u128* a, F f) {
    std::lock_guard<std::mutex> lock(atomic128_mu);
    const u128 old = *a;
    *a = f(old);
    return old;
}
} // namespace
CC_PROF_HOOK u128 __tsan_atomic128_load(const volatile u128* a, int) {
    std::lock_guard<std::mutex> lock(atomic128_mu);
    return *a;
}
CC_PROF_HOOK void __tsan_atomic128_store(volatile u128* a, u128 v, int) { atomic128(a, [v](u128) { return v; }); }
CC_PROF_HOOK u128 __tsan_atomic128_exchange(volatile u128* a, u128 v, int) { return atomic128(a, [v](u128) { return v; }); }
CC_PROF_HOOK u128 __tsan_atomic128_fetch_add(volatile u128* a, u128 v, int) { return atomic128(a, [v](u128 o) { return o + v; }); }
CC_PROF_HOOK u128 __tsan_atomic128_fetch_sub(volatile u128* a, u128 v, int) { return atomic128(a, [v](u128 o) { return o - v; }); }
CC_PROF_HOOK u128 __tsan_atomic128_fetch_and(volatile u128* a, u128 v, int) { return atomic128(a, [v](u128 o) { return o & v; }); }
CC_PROF_HOOK u128 __tsan_atomic128_fetch_or(volatile u128* a, u128 v, int) { return atomic128(a, [v](u128 o) { return o | v; }); }
CC_PROF_HOOK u128 __tsan_atomic128_fetch_xor(volatile u128* a, u128 v, int) { return atomic128(a, [v](u128 o) { return o ^ v; }); }
CC_PROF_HOOK u128 __tsan_atomic128_fetch_nand(volatile u128* a, u128 v, int) { return atomic128(a, [v](u128 o) { return ~(o & v); }); }
CC_PROF_HOOK bool __tsan_atomic128_compare_exchange_strong(volatile u128* a, u128* expected, u128 v, int, int) {
    std::lock_guard<std::mutex> lock(atomic128_mu);
    if (*a == *expected) {
        *a = v;
        return true;
    }
    *expected = *a;
    return false;
}
CC_PROF_HOOK bool __tsan_atomic128_compare_exchange_weak(volatile u128* a, u128* expected, u128 v, int mo, int fmo) {
    return __tsan_atomic128_compare_exchange_strong(a, expected, v, mo, fmo);
}

CC_PROF_HOOK void __tsan_atomic_thread_fence(int) { __atomic_thread_fence(__ATOMIC_SEQ_CST); }
CC_PROF_HOOK void __tsan_atomic_signal_fence(int) { __atomic_signal_fence(__ATOMIC_SEQ_CST); }

#undef CC_PROF_HOOK

// ---- C API (profile.h) -------------------------------------------------------------------------------------------

extern "C" {

CC_PROF_API int cc_prof_version(void) { return CC_PROF_VERSION; }

CC_PROF_API int cc_prof_begin(unsigned long long sample_blocks, unsigned flags) {
    if (flags & ~static_cast<unsigned>(CC_PROF_EXECUTE_ALL_BLOCKS)) return CC_EMU_ERROR_INVALID_VALUE;
    auto& s = cc_emu::prof::session();
    std::lock_guard<std::mutex> lock(s.mu);
    s.launches.clear();
    s.generation += 1;
    s.sample_blocks = sample_blocks;
    s.flags = flags;
    s.resolved = false;
    s.active = true;
    return CC_EMU_SUCCESS;
}

CC_PROF_API int cc_prof_end(void) {
    auto& s = cc_emu::prof::session();
    std::lock_guard<std::mutex> lock(s.mu);
    s.active = false;
    if (!s.resolved) {
        cc_emu::prof::resolve_sources(s);
        s.resolved = true;
    }
    return CC_EMU_SUCCESS;
}

CC_PROF_API int cc_prof_launch_count(void) {
    auto& s = cc_emu::prof::session();
    std::lock_guard<std::mutex> lock(s.mu);
    return static_cast<int>(s.launches.size());
}

CC_PROF_API int cc_prof_launch(int index, cc_prof_launch_info* out) {
    auto& s = cc_emu::prof::session();
    std::lock_guard<std::mutex> lock(s.mu);
    if (!out || index < 0 || static_cast<std::size_t>(index) >= s.launches.size()) return CC_EMU_ERROR_INVALID_VALUE;
    const auto& r = *s.launches[static_cast<std::size_t>(index)];
    *out = r.info;
    out->kernel = r.kernel.c_str();
    return CC_EMU_SUCCESS;
}

CC_PROF_API int cc_prof_instruction(int launch, int index, cc_prof_instruction_info* out) {
    auto& s = cc_emu::prof::session();
    std::lock_guard<std::mutex> lock(s.mu);
    if (!out || launch < 0 || static_cast<std::size_t>(launch) >= s.launches.size()) return CC_EMU_ERROR_INVALID_VALUE;
    const auto& r = *s.launches[static_cast<std::size_t>(launch)];
    if (index < 0 || static_cast<std::size_t>(index) >= r.instructions.size()) return CC_EMU_ERROR_INVALID_VALUE;
    const auto& ir = r.instructions[static_cast<std::size_t>(index)];
    *out = ir.info;
    out->function = ir.function.c_str();
    out->file = ir.file.c_str();
    return CC_EMU_SUCCESS;
}

} // extern "C"
