/* cheapconv/profile.h — the memory-traffic profile of the CUDA emulator (C API).
 *
 * Exported only by the profiling library, native/build/lib/libcheapconv_emu_profile.so (make -C native
 * profile). That library is the emulator library rebuilt with every kernel instrumented: it also exports
 * the whole C ABI of cheapconv.h and the cc_emu_* API of native/emu/cc_emu.h, so anything that runs on
 * libcheapconv_emu.so (the C ABI, the C# EmulatedDevice, a whole training step) runs on it unchanged and
 * can be profiled. The production libraries do not contain this API.
 *
 * What is measured: every global and shared memory access of every CUDA thread, grouped into warp-level
 * instructions and counted with Nsight Compute's definitions:
 *   - request: one execution of a memory instruction by a warp with at least one active lane
 *     (l1tex__t_requests_pipe_lsu_mem_global_op_{ld,st,atom}, smsp__inst_executed_op_shared_{ld,st}).
 *   - sector: an aligned 32-byte piece of global memory. A request's sectors are the distinct sectors
 *     that the byte ranges of its active lanes touch (l1tex__t_sectors_pipe_lsu_mem_global_op_*):
 *     a coalesced fp32 warp load is 4, a float4 one 16, fp32 at a stride of 32 elements 32, a broadcast 1.
 *     Sectors are counted on the emulator's host addresses: give the kernels buffers aligned to at least 32
 *     bytes, as cudaMalloc's (256) and the C# EmulatedDevice's are, or the counts are a misaligned tensor's.
 *   - wavefront (shared memory; 32 banks of 4 bytes): a request is split into phases — one for accesses
 *     of at most 4 bytes, two half-warps (lanes 0-15, 16-31) for 8-byte accesses, four quarter-warps for
 *     16-byte accesses — and each phase with an active lane costs max over the 32 banks of the number of
 *     distinct 4-byte words that its lanes address in that bank (several lanes reading the same word:
 *     a broadcast, free; for 16-byte accesses the broadcast reaches across the two quarter-warps of a
 *     half-warp: the second costs only the words the first did not address — a float4 read by lanes 0-15
 *     at one address and by 16-31 at another is 2 wavefronts, as Nsight Compute counted it on an H100 in a
 *     report on NVIDIA's developer forum, not 4). Ideal wavefronts: per active phase, ceil(distinct words / 32), i.e. 1 for every
 *     ordinary access; bank conflicts = wavefronts - ideal wavefronts
 *     (l1tex__data_bank_conflicts_pipe_lsu_mem_shared_op_{ld,st}).
 *   - unique bytes: the distinct bytes (and distinct sectors) of global memory that the recorded blocks
 *     read (loads and atomics) and wrote (stores and atomics) over the whole launch: the compulsory
 *     traffic, each byte counted once however often it is touched.
 *   - atomics (atomicAdd, atomicCAS, ...): counted separately, never as loads or stores.
 *   - cp.async (cc_cp_async_*): one global load of the source and one shared store of the destination, both
 *     at the issuing instruction (what the GPU's LDGSTS moves), whatever the emulator does to model it.
 *   - ldmatrix: a 16-byte shared load by each lane that supplies a row address (8 per matrix), so a .x4 is
 *     four quarter-warp phases, one 8×16-byte matrix each, as the hardware reads it.
 *   - mma.sync: tensor_mma_requests, one per warp-level execution (no memory).
 * How a GPU's warp is reconstructed from the emulator's fibers, what counts as shared, global or neither,
 * and the limits of the method: see native/emu/profile.cpp.
 *
 * Sampling: a profile session may record a deterministic sample of each launch's blocks — S blocks,
 * evenly spaced over the linear block index (block floor(i * total / S) for i = 0..S-1) — and scale the
 * counts by total / S. By default the blocks outside the sample are SKIPPED, not run: profiling a
 * batch-128 layer then takes seconds, but the launch's outputs hold partial results (the C ABI's result
 * buffers included) and later launches compute on them. CC_PROF_EXECUTE_ALL_BLOCKS runs them unrecorded
 * instead (complete outputs, the time of an unprofiled emulator run). Every record says which it was.
 *
 * Threads: the calls below are thread-safe; a session collects the launches of every thread of the
 * process. Strings in the records belong to the library and stay valid until the next cc_prof_begin.
 */
#ifndef CHEAPCONV_PROFILE_H
#define CHEAPCONV_PROFILE_H

#ifdef __cplusplus
extern "C" {
#endif

#if defined(__GNUC__)
#define CC_PROF_API __attribute__((visibility("default")))
#else
#define CC_PROF_API
#endif

/* Incremented whenever this API, a struct below or a counter's meaning changes. */
#define CC_PROF_VERSION 2

/* cc_prof_begin flags. */
enum {
    /* Run the blocks outside the sample too, without recording them: outputs are complete. */
    CC_PROF_EXECUTE_ALL_BLOCKS = 1
};

/* What a static memory instruction does, and where. */
typedef enum cc_prof_kind {
    CC_PROF_GLOBAL_LOAD = 0,
    CC_PROF_GLOBAL_STORE = 1,
    CC_PROF_GLOBAL_ATOMIC = 2,
    CC_PROF_SHARED_LOAD = 3,
    CC_PROF_SHARED_STORE = 4,
    CC_PROF_SHARED_ATOMIC = 5,
    CC_PROF_TENSOR_MMA = 6      /* a tensor-core mma.sync (cc_mma_tf32_m16n8k8): no memory, counted per warp */
} cc_prof_kind;

typedef struct cc_prof_dim3 { unsigned x, y, z; } cc_prof_dim3;

/* Totals of one launch. All counts are 64-bit; "requests" are warp-level, "ops"/"bytes" thread-level. */
typedef struct cc_prof_counters {
    unsigned long long global_load_requests;
    unsigned long long global_load_sectors;
    unsigned long long global_load_bytes;          /* bytes requested: sum of the lanes' access sizes */
    unsigned long long global_store_requests;
    unsigned long long global_store_sectors;
    unsigned long long global_store_bytes;
    unsigned long long global_atomic_requests;
    unsigned long long global_atomic_sectors;
    unsigned long long global_atomic_ops;          /* lanes that performed an atomic */
    unsigned long long unique_read_bytes;          /* distinct global bytes loaded or atomically updated */
    unsigned long long unique_read_sectors;        /* distinct 32-byte sectors of those */
    unsigned long long unique_write_bytes;         /* distinct global bytes stored or atomically updated */
    unsigned long long unique_write_sectors;
    unsigned long long shared_load_requests;
    unsigned long long shared_load_wavefronts;
    unsigned long long shared_load_ideal_wavefronts;
    unsigned long long shared_load_bytes;
    unsigned long long shared_store_requests;
    unsigned long long shared_store_wavefronts;
    unsigned long long shared_store_ideal_wavefronts;
    unsigned long long shared_store_bytes;
    unsigned long long shared_atomic_requests;
    unsigned long long shared_atomic_ops;
    unsigned long long tensor_mma_requests;        /* warp-level mma.sync m16n8k8 tf32 executions: 2 * 16 * 8 * 8 =
                                                      2048 FLOPs each, on the tensor cores */
} cc_prof_counters;

/* One kernel launch recorded in the session (launches through the C ABI and cc_emu_launch alike). */
typedef struct cc_prof_launch_info {
    const char* kernel;                  /* registered kernel name */
    cc_prof_dim3 grid;
    cc_prof_dim3 block;
    unsigned dynamic_shared_bytes;
    int status;                          /* cc_emu_launch's status (0: success; the counts are then complete) */
    unsigned long long blocks_total;     /* grid.x * grid.y * grid.z */
    unsigned long long blocks_sampled;   /* blocks recorded (= blocks_total when not sampled) */
    unsigned long long blocks_executed;  /* blocks that ran: blocks_sampled, or blocks_total with CC_PROF_EXECUTE_ALL_BLOCKS */
    int outputs_complete;                /* 1 when every block ran (blocks_executed == blocks_total) */
    int instruction_count;               /* records for cc_prof_instruction(launch, 0..instruction_count-1) */
    double scale;                        /* blocks_total / blocks_sampled */
    cc_prof_counters raw;                /* exact counts over the recorded blocks */
    cc_prof_counters scaled;             /* raw * scale, rounded to the nearest integer. unique_*: the sampled
                                            footprint scaled, an estimate that is exact when blocks touch
                                            disjoint data of equal size and too high when they share inputs
                                            (e.g. a GEMM's weights); raw.unique_* is the exact footprint of
                                            the recorded blocks */
} cc_prof_launch_info;

/* One static memory instruction of a launch (raw counts over the recorded blocks; scale by the launch's
 * `scale`). An instruction that touched both global and shared memory (a generic pointer) has one record
 * per kind. */
typedef struct cc_prof_instruction_info {
    unsigned long long id;               /* the instruction's offset in the profiling library (its hook's return
                                            address minus the library's load address): stable for one build */
    const char* function;                /* the function its code was compiled into, demangled: the kernel, or a
                                            __device__ function the host compiler did not inline; "" if unknown */
    const char* file;                    /* source file (relative to native/) and line of the access, through
                                            inlined functions, past cuda_shim.h; "" and 0 if unknown (needs
                                            addr2line from binutils on PATH at cc_prof_end) */
    unsigned line;
    int kind;                            /* cc_prof_kind */
    unsigned width;                      /* bytes one lane accesses (the largest seen) */
    unsigned reserved;                   /* 0 */
    unsigned long long requests;         /* warp-level executions with at least one active lane */
    unsigned long long lane_accesses;    /* thread-level executions */
    unsigned long long bytes;            /* bytes requested */
    unsigned long long sectors;          /* global: 32-byte sectors, summed over requests; shared: 0 */
    unsigned long long wavefronts;       /* shared load/store: wavefronts; otherwise 0 */
    unsigned long long ideal_wavefronts; /* shared load/store: ideal wavefronts; otherwise 0 */
} cc_prof_instruction_info;

/* CC_PROF_VERSION of the loaded library. */
CC_PROF_API int cc_prof_version(void);

/* Starts a session, discarding the previous one's records. sample_blocks: blocks recorded per launch
 * (0: all of them). flags: CC_PROF_EXECUTE_ALL_BLOCKS or 0. Returns 0, or CUDA_ERROR_INVALID_VALUE (1)
 * for unknown flags. Launches already running finish unrecorded. */
CC_PROF_API int cc_prof_begin(unsigned long long sample_blocks, unsigned flags);

/* Ends the session: later launches run normally (every block, unrecorded) and the records stay readable.
 * Resolves every instruction's function and file:line (one addr2line run). Returns 0; 0 as well when no
 * session was active. */
CC_PROF_API int cc_prof_end(void);

/* Launches recorded by the current or last session, in the order they finished. */
CC_PROF_API int cc_prof_launch_count(void);

/* Copies launch `index` (0-based) into *out. Returns 0, or CUDA_ERROR_INVALID_VALUE (1) for an index out
 * of range or a NULL out. */
CC_PROF_API int cc_prof_launch(int index, cc_prof_launch_info* out);

/* Copies instruction `index` of launch `launch` into *out; instructions are sorted by id. Returns 0, or
 * CUDA_ERROR_INVALID_VALUE (1) for an index out of range or a NULL out. */
CC_PROF_API int cc_prof_instruction(int launch, int index, cc_prof_instruction_info* out);

#ifdef __cplusplus
}
#endif

#endif
