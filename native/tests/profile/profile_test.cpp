// The memory-traffic profile (cheapconv/profile.h) against hand-computed counts: `make -C native
// profile-test`, and tests/CheapConv.Tests/Profiling/MemoryProfileTests.cs runs it too.
//   cc_emu_profile_test [path/to/libcheapconv_emu_profile.so] [-v]
// Linked against the profiling library (the library argument only locates the sources for the file:line
// check). Runs the microkernels of micro.cu and asserts every count exactly; each expected value is
// derived in the comment beside it. Then profiles one production launch through the C ABI — a sampled
// pointwise forward at batch 128 — and prints how long it took. Prints "N passed, M failed"; exit status 0
// only when nothing failed.
#include "cc_emu.h"
#include "cheapconv.h"
#include "cheapconv/profile.h"

#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <string>
#include <vector>

// The layouts the C# twins (src/CheapConv/Devices/EmulatorProfile.cs) are checked against.
static_assert(sizeof(cc_prof_counters) == 24 * 8, "24 64-bit counters");
static_assert(sizeof(cc_prof_launch_info) == 464, "8 + 2 * 12 + 2 * 4 + 3 * 8 + 2 * 4 + 8 + 2 * 192, no padding");
static_assert(sizeof(cc_prof_instruction_info) == 88, "3 * 8 + 4 * 4 + 6 * 8, no padding");

namespace {

bool verbose = false;
int passed = 0, failed = 0;
std::string library_dir = ".";

void check(bool ok, const std::string& what) {
    ++(ok ? passed : failed);
    if (!ok || verbose) std::printf("%s %s\n", ok ? "ok  " : "FAIL", what.c_str());
}

void expect(const std::string& what, unsigned long long measured, unsigned long long expected) {
    check(measured == expected, what + ": " + std::to_string(measured) + (measured == expected ? "" : " (expected " + std::to_string(expected) + ")"));
}

// Buffers aligned as cudaMalloc's, so that sector counts are a GPU's.
struct Buffer {
    explicit Buffer(std::size_t bytes) : size(bytes) {
        data = std::aligned_alloc(256, (bytes + 255) / 256 * 256);
        std::memset(data, 0xff, bytes); // NaN: unwritten outputs stay visible
    }
    ~Buffer() { std::free(data); }
    Buffer(const Buffer&) = delete;
    Buffer& operator=(const Buffer&) = delete;
    float* f() const { return static_cast<float*>(data); }
    int* i() const { return static_cast<int*>(data); }
    void* data;
    std::size_t size;
};

// A launch's record, its strings copied (the library's last only until the next cc_prof_begin).
struct Instruction : cc_prof_instruction_info {
    std::string file_name, function_name;
};
// The (in, out, n) arguments of the copy kernels over n floats: in holds 0, 1, 2, ... and `slack` more
// floats for shifted reads; out starts as NaN.
struct CopyArgs {
    explicit CopyArgs(int count, int slack = 0) : n(count), in((count + slack) * 4ull), out(count * 4ull) {
        for (int i = 0; i < count + slack; ++i) in.f()[i] = static_cast<float>(i);
    }
    int n;
    Buffer in, out;
    const float* pin = in.f();
    float* pout = out.f();
    void* args[3] = {&pin, &pout, &n};
};

struct Profiled {
    int status = -1;
    cc_prof_launch_info launch{};
    std::string kernel;
    std::vector<Instruction> instructions;
};

// Runs one launch inside its own profile session and returns its record.
Profiled profile(const char* kernel, cc_dim3 grid, cc_dim3 block, unsigned shared, void** args,
                 unsigned long long sample = 0, unsigned flags = 0) {
    Profiled p;
    if (cc_prof_begin(sample, flags) != 0) return p;
    char message[1024];
    p.status = cc_emu_launch(kernel, grid, block, shared, args, message, sizeof message);
    if (p.status != 0) std::printf("     %s: %s\n", kernel, message);
    cc_prof_end();
    if (cc_prof_launch_count() != 1 || cc_prof_launch(0, &p.launch) != 0) {
        p.status = -2;
        return p;
    }
    p.kernel = p.launch.kernel;
    p.launch.kernel = nullptr;
    for (int j = 0; j < p.launch.instruction_count; ++j) {
        Instruction i{};
        cc_prof_instruction(0, j, &i);
        i.file_name = i.file;
        i.function_name = i.function;
        i.file = i.function = nullptr;
        p.instructions.push_back(std::move(i));
    }
    return p;
}

// The launch's instructions of one kind.
std::vector<Instruction> of_kind(const Profiled& p, int kind) {
    std::vector<Instruction> out;
    for (const auto& i : p.instructions)
        if (i.kind == kind) out.push_back(i);
    return out;
}

// The source line an instruction record names, read from the file (paths are relative to native/, where
// make compiles; the library is native/build/lib/).
std::string source_line(const Instruction& i) {
    std::string path = i.file_name;
    if (!path.empty() && path[0] != '/') path = library_dir + "/../../" + path;
    std::ifstream in(path);
    std::string text;
    for (unsigned n = 1; std::getline(in, text); ++n)
        if (n == i.line) return text;
    return "";
}

void expect_no_shared_or_atomics(const std::string& name, const cc_prof_counters& c) {
    expect(name + ": shared load requests", c.shared_load_requests, 0);
    expect(name + ": shared store requests", c.shared_store_requests, 0);
    expect(name + ": global atomic requests", c.global_atomic_requests, 0);
    expect(name + ": shared atomic requests", c.shared_atomic_requests, 0);
}

// cc_prof_copy over n floats (in shifted by `offset` floats), 256 threads per block.
void test_copy(const std::string& name, int n, int offset, unsigned long long load_sectors, unsigned long long unique_read_sectors) {
    CopyArgs a(n, 8);
    a.pin += offset;
    const unsigned blocks = static_cast<unsigned>((n + 255) / 256);
    const Profiled p = profile("cc_prof_copy", {blocks, 1, 1}, {256, 1, 1}, 0, a.args);
    expect(name + ": status", static_cast<unsigned long long>(p.status), 0);
    bool copied = true;
    for (int i = 0; i < n; ++i) copied = copied && a.out.f()[i] == static_cast<float>(i + offset);
    check(copied, name + ": output is the copy");
    const cc_prof_counters& c = p.launch.raw;
    // A request per warp with at least one active lane: ceil(n / 32).
    const unsigned long long warps = static_cast<unsigned long long>((n + 31) / 32);
    expect(name + ": global load requests", c.global_load_requests, warps);
    expect(name + ": global load sectors", c.global_load_sectors, load_sectors);
    expect(name + ": global load bytes", c.global_load_bytes, 4ull * n);
    expect(name + ": global store requests", c.global_store_requests, warps);
    // Stores are aligned: every full warp writes 128 contiguous bytes (4 sectors); a partial last warp
    // of r lanes writes ceil(4r / 32) sectors.
    const unsigned long long rest = static_cast<unsigned long long>(n % 32);
    expect(name + ": global store sectors", c.global_store_sectors, (n / 32) * 4ull + (rest * 4 + 31) / 32);
    expect(name + ": unique read bytes", c.unique_read_bytes, 4ull * n);
    expect(name + ": unique read sectors", c.unique_read_sectors, unique_read_sectors);
    expect(name + ": unique write bytes", c.unique_write_bytes, 4ull * n);
    expect(name + ": unique write sectors", c.unique_write_sectors, (4ull * n + 31) / 32);
    expect_no_shared_or_atomics(name, c);
    expect(name + ": blocks sampled", p.launch.blocks_sampled, blocks);
    check(p.launch.scale == 1.0 && p.launch.outputs_complete == 1, name + ": not sampled, outputs complete");
}

void test_copies() {
    // 4096 floats, 128 full warps: each request reads 128 aligned bytes = 4 sectors.
    test_copy("coalesced copy", 4096, 0, 128 * 4, 4096 * 4 / 32);
    // Offset by one float: each warp's 128 bytes start 4 bytes into a sector, so they span 5 sectors;
    // the whole input [4, 16388) spans sectors 0..512.
    test_copy("misaligned copy", 4096, 1, 128 * 5, 513);
    // 1000 floats: 31 full warps (4 sectors each) and one of 8 lanes (32 bytes, 1 sector).
    test_copy("partial warp copy", 1000, 0, 31 * 4 + 1, 125);
}

// cc_prof_gather: out[i] = in[i * stride] over 1024 threads (4 blocks of 256, 32 warps).
void test_gather(const std::string& name, int stride, unsigned long long sectors_per_request, unsigned long long unique_read_bytes,
                 unsigned long long unique_read_sectors) {
    const int threads = 1024;
    Buffer in(static_cast<std::size_t>(threads) * (stride ? stride : 1) * 4), out(threads * 4);
    const float* pin = in.f();
    float* pout = out.f();
    void* args[] = {&pin, &pout, const_cast<int*>(&stride)};
    const Profiled p = profile("cc_prof_gather", {4, 1, 1}, {256, 1, 1}, 0, args);
    const cc_prof_counters& c = p.launch.raw;
    expect(name + ": status", static_cast<unsigned long long>(p.status), 0);
    expect(name + ": global load requests", c.global_load_requests, 32);
    expect(name + ": global load sectors", c.global_load_sectors, 32 * sectors_per_request);
    expect(name + ": global store sectors", c.global_store_sectors, 32 * 4);
    expect(name + ": unique read bytes", c.unique_read_bytes, unique_read_bytes);
    expect(name + ": unique read sectors", c.unique_read_sectors, unique_read_sectors);
    const auto loads = of_kind(p, CC_PROF_GLOBAL_LOAD);
    check(loads.size() == 1 && loads[0].requests == 32 && loads[0].sectors == 32 * sectors_per_request && loads[0].width == 4 &&
              loads[0].lane_accesses == 1024 && loads[0].bytes == 4096,
          name + ": one load instruction with those counts");
}

void test_gathers() {
    // Stride 32 floats = 128 bytes: every lane reads its own sector, 32 per request; each thread's float
    // is distinct, 1024 floats in 1024 sectors.
    test_gather("stride-32 loads", 32, 32, 1024 * 4, 1024);
    // Stride 0: all lanes read in[0], one sector per request; one float in one sector for the launch.
    test_gather("broadcast load", 0, 1, 4, 1);
}

void test_float4() {
    // cc_prof_copy4 over 1024 float4 (4 blocks of 256, 32 warps): each request moves 32 x 16 = 512
    // aligned bytes = 16 sectors, as one 16-byte access per lane.
    int n = 1024;
    Buffer in(n * 16ull), out(n * 16ull);
    for (int i = 0; i < 4 * n; ++i) in.f()[i] = static_cast<float>(i);
    const void* pin = in.data;
    void* pout = out.data;
    void* args[] = {&pin, &pout, &n};
    const Profiled p = profile("cc_prof_copy4", {4, 1, 1}, {256, 1, 1}, 0, args);
    const cc_prof_counters& c = p.launch.raw;
    expect("float4 copy: status", static_cast<unsigned long long>(p.status), 0);
    check(std::memcmp(in.data, out.data, n * 16ull) == 0, "float4 copy: output is the copy");
    expect("float4 copy: global load requests", c.global_load_requests, 32);
    expect("float4 copy: global load sectors", c.global_load_sectors, 32 * 16);
    expect("float4 copy: global load bytes", c.global_load_bytes, 16384);
    expect("float4 copy: global store requests", c.global_store_requests, 32);
    expect("float4 copy: global store sectors", c.global_store_sectors, 32 * 16);
    expect("float4 copy: unique read bytes", c.unique_read_bytes, 16384);
    const auto loads = of_kind(p, CC_PROF_GLOBAL_LOAD);
    check(loads.size() == 1 && loads[0].width == 16, "float4 copy: one 16-byte load instruction");
}

void test_loop() {
    // cc_prof_copy_loop, n = 4000 over 2 blocks of 256 (a step of 512): thread i runs ceil((4000 - i) /
    // 512) iterations, 8 for i < 416 and 7 otherwise. The k-th iterations of a warp's lanes form one
    // request: 16 warps x 7 + 13 warps (416 / 32) x 1 = 125 requests, each 128 aligned bytes, 4 sectors.
    CopyArgs a(4000);
    const Profiled p = profile("cc_prof_copy_loop", {2, 1, 1}, {256, 1, 1}, 0, a.args);
    const cc_prof_counters& c = p.launch.raw;
    expect("grid-stride loop: global load requests", c.global_load_requests, 125);
    expect("grid-stride loop: global load sectors", c.global_load_sectors, 500);
    expect("grid-stride loop: global store requests", c.global_store_requests, 125);
    expect("grid-stride loop: global store sectors", c.global_store_sectors, 500);
    expect("grid-stride loop: unique read bytes", c.unique_read_bytes, 16000);
}

// cc_prof_shared_stride (static) or cc_prof_dynamic_shared_stride with 64 threads (2 warps): thread t
// stores word t*stride of shared memory and loads word (t^1)*stride (the same words, permuted).
void test_shared(bool dynamic, int stride, unsigned long long wavefronts_per_request) {
    const std::string name = std::string(dynamic ? "dynamic" : "static") + " shared stride " + std::to_string(stride);
    Buffer out(64 * 4);
    float* pout = out.f();
    void* args[] = {&pout, &stride};
    const unsigned shared = dynamic ? 4u * 64u * static_cast<unsigned>(stride ? stride : 1) : 0u;
    const Profiled p = profile(dynamic ? "cc_prof_dynamic_shared_stride" : "cc_prof_shared_stride", {1, 1, 1}, {64, 1, 1}, shared, args);
    const cc_prof_counters& c = p.launch.raw;
    expect(name + ": status", static_cast<unsigned long long>(p.status), 0);
    if (stride > 0) {
        bool right = true;
        for (int t = 0; t < 64; ++t) right = right && out.f()[t] == static_cast<float>(t ^ 1);
        check(right, name + ": output read back");
    }
    expect(name + ": shared load requests", c.shared_load_requests, 2);
    expect(name + ": shared load wavefronts", c.shared_load_wavefronts, 2 * wavefronts_per_request);
    expect(name + ": shared load ideal wavefronts", c.shared_load_ideal_wavefronts, 2);
    expect(name + ": shared load bytes", c.shared_load_bytes, 256);
    expect(name + ": shared store requests", c.shared_store_requests, 2);
    expect(name + ": shared store wavefronts", c.shared_store_wavefronts, 2 * wavefronts_per_request);
    // Shared memory is never global traffic; the only global access is the store of out.
    expect(name + ": global load requests", c.global_load_requests, 0);
    expect(name + ": global store requests", c.global_store_requests, 2);
    expect(name + ": global store sectors", c.global_store_sectors, 8);
}

void test_shared_strides() {
    for (bool dynamic : {false, true}) {
        test_shared(dynamic, 1, 1);   // 32 consecutive words, one per bank
        test_shared(dynamic, 2, 2);   // words 0, 2, ..., 62: each even bank holds two of them (2-way)
        test_shared(dynamic, 32, 32); // words 0, 32, ..., 992: all in bank 0 (32-way)
        test_shared(dynamic, 0, 1);   // every lane word 0: a broadcast, no conflict
    }
}

void test_shared_vector(int stride, unsigned long long float2_wavefronts, unsigned long long float4_wavefronts,
                        unsigned long long float4_ideal) {
    const std::string name = "shared float2/float4 stride " + std::to_string(stride);
    Buffer out(32 * 6 * 4);
    float* pout = out.f();
    void* args[] = {&pout, &stride};
    const Profiled p = profile("cc_prof_shared_vector", {1, 1, 1}, {32, 1, 1}, 0, args);
    expect(name + ": status", static_cast<unsigned long long>(p.status), 0);
    bool right = true;
    for (int t = 0; t < 32 && stride > 0; ++t)
        for (int j = 0; j < 6; ++j) right = right && out.f()[6 * t + j] == static_cast<float>((t ^ 1) + (j < 2 ? j : j - 2));
    check(right, name + ": output read back");
    // One request per instruction (one warp); 2 phases for 8 bytes, 4 for 16 bytes.
    for (int kind : {CC_PROF_SHARED_STORE, CC_PROF_SHARED_LOAD}) {
        const auto ins = of_kind(p, kind);
        const char* what = kind == CC_PROF_SHARED_LOAD ? "load" : "store";
        const Instruction* w8 = nullptr;
        const Instruction* w16 = nullptr;
        for (const auto& i : ins) {
            if (i.width == 8) w8 = &i;
            if (i.width == 16) w16 = &i;
        }
        check(ins.size() == 2 && w8 && w16, name + ": one 8-byte and one 16-byte shared " + what);
        if (!w8 || !w16) continue;
        expect(name + ": float2 " + what + " requests", w8->requests, 1);
        expect(name + ": float2 " + what + " wavefronts", w8->wavefronts, float2_wavefronts);
        expect(name + ": float2 " + what + " ideal wavefronts", w8->ideal_wavefronts, 2);
        expect(name + ": float4 " + what + " requests", w16->requests, 1);
        expect(name + ": float4 " + what + " wavefronts", w16->wavefronts, float4_wavefronts);
        expect(name + ": float4 " + what + " ideal wavefronts", w16->ideal_wavefronts, float4_ideal);
    }
}

void test_shared_vectors() {
    // float2, stride 1: two half-warp phases of 16 x 8 = 128 contiguous bytes, 1 wavefront each.
    // float4, stride 1: four quarter-warp phases of 8 x 16 bytes, 1 wavefront each.
    test_shared_vector(1, 2, 4, 4);
    // float2, stride 2: a half-warp's 16 lanes are 16 bytes apart, so lanes l and l + 8 share banks with
    // different words: 2 per phase. float4, stride 2: 8 lanes 32 bytes apart, lanes l and l + 4 share
    // banks: 2 per phase.
    test_shared_vector(2, 4, 8, 4);
    // Stride 0, every lane the same element: a broadcast in each phase, but every half-warp still costs one
    // wavefront: 2 for float2, and 2 for float4, whose second quarter-warp of each half reads only what the
    // first did (4 if every quarter-warp paid; a single 32-lane phase would be 1).
    test_shared_vector(0, 2, 2, 2);
}

// LDS.128 whose quarter-warps repeat each other's addresses (cc_prof_shared_float4_halves): the counts Nsight Compute
// gave for the same two patterns on an H100 and an A10 (see profile.cpp). Within a half-warp the second quarter-warp
// reads what the first did, a broadcast: 1 wavefront per half-warp, 2 in all. Lanes l and l + 16 alike, but in
// different half-warps: no broadcast; each quarter-warp's 8 float4s 32 bytes apart put 2 words in each of 16 banks:
// 2 wavefronts per quarter-warp, 8 in all.
void test_shared_float4_halves(bool same_half, unsigned long long wavefronts, unsigned long long ideal) {
    const std::string name = std::string("shared float4 read ") + (same_half ? "once per half-warp" : "by lanes l and l + 16");
    Buffer out(32 * 4 * 4);
    float* pout = out.f();
    int flag = same_half ? 1 : 0;
    void* args[] = {&pout, &flag};
    const Profiled p = profile("cc_prof_shared_float4_halves", {1, 1, 1}, {32, 1, 1}, 0, args);
    expect(name + ": status", static_cast<unsigned long long>(p.status), 0);
    bool right = true;
    for (int t = 0; t < 32; ++t) {
        const int source = same_half ? 2 * (t / 16) : 2 * (t % 16);
        for (int i = 0; i < 4; ++i) right = right && out.f()[4 * t + i] == static_cast<float>(source + i);
    }
    check(right, name + ": output read back");
    const auto loads = of_kind(p, CC_PROF_SHARED_LOAD);
    check(loads.size() == 1 && loads[0].width == 16 && loads[0].requests == 1, name + ": one 16-byte shared load request");
    if (loads.size() != 1) return;
    expect(name + ": wavefronts", loads[0].wavefronts, wavefronts);
    expect(name + ": ideal wavefronts", loads[0].ideal_wavefronts, ideal);
}

void test_atomics() {
    // cc_prof_atomics on 4 blocks of 64 threads (2 warps each): every thread does one shared and one
    // global atomicAdd: 8 requests of each (one per warp), 256 lane operations, and each global request
    // touches the one sector of counter[0]. Thread 0 of each block also zeroes and reads block_count
    // (4 shared store and 4 shared load requests of one lane) and stores counter[1 + b] (4 requests,
    // 1 sector each). Unique: counter[0] read and written (4 bytes), counter[1..4] written: 20 bytes,
    // all in the first sector.
    Buffer counter(5 * 4);
    std::memset(counter.data, 0, 20);
    int* pc = counter.i();
    void* args[] = {&pc};
    const Profiled p = profile("cc_prof_atomics", {4, 1, 1}, {64, 1, 1}, 0, args);
    const cc_prof_counters& c = p.launch.raw;
    expect("atomics: status", static_cast<unsigned long long>(p.status), 0);
    check(counter.i()[0] == 256 && counter.i()[1] == 64 && counter.i()[4] == 64, "atomics: results (256, 64 per block)");
    expect("atomics: global atomic requests", c.global_atomic_requests, 8);
    expect("atomics: global atomic ops", c.global_atomic_ops, 256);
    expect("atomics: global atomic sectors", c.global_atomic_sectors, 8);
    expect("atomics: shared atomic requests", c.shared_atomic_requests, 8);
    expect("atomics: shared atomic ops", c.shared_atomic_ops, 256);
    expect("atomics: shared store requests", c.shared_store_requests, 4);
    expect("atomics: shared load requests", c.shared_load_requests, 4);
    expect("atomics: global load requests", c.global_load_requests, 0);
    expect("atomics: global store requests", c.global_store_requests, 4);
    expect("atomics: global store sectors", c.global_store_sectors, 4);
    expect("atomics: unique read bytes", c.unique_read_bytes, 4);
    expect("atomics: unique write bytes", c.unique_write_bytes, 20);
    expect("atomics: unique write sectors", c.unique_write_sectors, 1);
    // The atomic is the kernel's instruction, at the atomicAdd's line (not the shim's).
    const auto atomics = of_kind(p, CC_PROF_GLOBAL_ATOMIC);
    check(atomics.size() == 1 && source_line(atomics[0]).find("atomicAdd(&counter[0], 1)") != std::string::npos,
          "atomics: the global atomic's line is micro.cu's atomicAdd(&counter[0], 1) (" +
              (atomics.empty() ? std::string("none") : atomics[0].file_name + ":" + std::to_string(atomics[0].line)) + ")");
}

void test_tensor_core(int row_stride, unsigned long long wavefronts) {
    const std::string name = "tensor core, row stride " + std::to_string(row_stride);
    Buffer in(512), out(512);
    for (int i = 0; i < 128; ++i) in.f()[i] = 1.0f;
    const float* pin = in.f();
    float* pout = out.f();
    void* args[] = {&pin, &pout, &row_stride};
    const Profiled p = profile("cc_prof_tensor_core", {1, 1, 1}, {32, 1, 1}, 0, args);
    const cc_prof_counters& c = p.launch.raw;
    expect(name + ": status", static_cast<unsigned long long>(p.status), 0);
    // A is all ones and so is B (its registers are A's): every D element is the sum of 8 products, 8.
    bool right = true;
    for (int i = 0; i < 128; ++i) right = right && out.f()[i] == 8.0f;
    check(right, name + ": D = 8 everywhere");
    // cp.async: what the GPU moves, one global load of the 512 contiguous bytes (16 sectors, one request) and one
    // shared store of 16 bytes per lane (four quarter-warp phases); the emulator's poison and deferred copy are
    // not counted.
    expect(name + ": global load requests", c.global_load_requests, 1);
    expect(name + ": global load sectors", c.global_load_sectors, 16);
    expect(name + ": global load bytes", c.global_load_bytes, 512);
    expect(name + ": shared store requests", c.shared_store_requests, 1);
    expect(name + ": shared store bytes", c.shared_store_bytes, 512);
    expect(name + ": shared store ideal wavefronts", c.shared_store_ideal_wavefronts, 4);
    // Row stride 4 words: each phase's 8 rows are 128 contiguous bytes, 1 wavefront; stride 8: rows l and l + 4 of a
    // phase are 128 bytes apart, the same banks: 2 wavefronts per phase.
    expect(name + ": shared store wavefronts", c.shared_store_wavefronts, wavefronts);
    // ldmatrix.x4: every lane supplies one 16-byte row: one request, the same four phases.
    expect(name + ": shared load requests", c.shared_load_requests, 1);
    expect(name + ": shared load bytes", c.shared_load_bytes, 512);
    expect(name + ": shared load ideal wavefronts", c.shared_load_ideal_wavefronts, 4);
    expect(name + ": shared load wavefronts", c.shared_load_wavefronts, wavefronts);
    expect(name + ": tensor mma requests", c.tensor_mma_requests, 1);
    const auto mma = of_kind(p, CC_PROF_TENSOR_MMA);
    check(mma.size() == 1 && mma[0].requests == 1 && mma[0].lane_accesses == 32 &&
              source_line(mma[0]).find("cc_mma_tf32_m16n8k8(d, a, b, d)") != std::string::npos,
          name + ": one mma instruction, one warp-level request of 32 lanes, at micro.cu's cc_mma_tf32_m16n8k8 line");
}

void test_tensor_cores() {
    test_tensor_core(4, 4);
    test_tensor_core(8, 8);
}

void test_sources() {
    // The copy's two instructions name cc_prof_copy's line in micro.cu, with stable ids.
    CopyArgs copy(256);
    const Profiled a = profile("cc_prof_copy", {1, 1, 1}, {256, 1, 1}, 0, copy.args);
    const Profiled b = profile("cc_prof_copy", {1, 1, 1}, {256, 1, 1}, 0, copy.args);
    check(a.instructions.size() == 2 && b.instructions.size() == 2, "sources: the copy has two instructions");
    if (a.instructions.size() != 2 || b.instructions.size() != 2) return;
    for (std::size_t j = 0; j < 2; ++j) {
        const Instruction& i = a.instructions[j];
        const std::string where = i.file_name + ":" + std::to_string(i.line) + " in " + i.function_name;
        check(i.file_name.ends_with("tests/profile/micro.cu") && source_line(i).find("if (i < n) out[i] = in[i];") != std::string::npos &&
                  i.function_name == "cc_prof_copy",
              "sources: instruction " + std::to_string(j) + " is cc_prof_copy's copy line (" + where + ")");
        check(i.id == b.instructions[j].id && i.id != 0, "sources: instruction " + std::to_string(j) + " has the same id in both runs");
    }
}

void test_sampling() {
    // 10 blocks of 256 threads over n = 2336 floats: blocks 0-8 full (8 warps each), block 9 has one
    // active warp. A sample of 9 is floor(i * 10 / 9) = blocks 0..8: 72 requests, scale 10/9.
    const int n = 2336;
    CopyArgs a(n);
    const Buffer& out = a.out;
    void** args = a.args;
    const Profiled skip = profile("cc_prof_copy", {10, 1, 1}, {256, 1, 1}, 0, args, 9);
    expect("sample 9 of 10: blocks sampled", skip.launch.blocks_sampled, 9);
    expect("sample 9 of 10: blocks executed", skip.launch.blocks_executed, 9);
    expect("sample 9 of 10: global load requests", skip.launch.raw.global_load_requests, 72);
    expect("sample 9 of 10: scaled global load requests (72 * 10 / 9)", skip.launch.scaled.global_load_requests, 80);
    check(skip.launch.outputs_complete == 0 && std::fabs(skip.launch.scale - 10.0 / 9.0) < 1e-12, "sample 9 of 10: outputs partial, scale 10/9");
    check(std::isnan(out.f()[9 * 256]) && out.f()[8 * 256] == 8.0f * 256, "sample 9 of 10: block 9 skipped, block 8 ran");
    const Profiled all = profile("cc_prof_copy", {10, 1, 1}, {256, 1, 1}, 0, args, 9, CC_PROF_EXECUTE_ALL_BLOCKS);
    expect("sample 9 of 10, all executed: blocks sampled", all.launch.blocks_sampled, 9);
    expect("sample 9 of 10, all executed: blocks executed", all.launch.blocks_executed, 10);
    expect("sample 9 of 10, all executed: global load requests", all.launch.raw.global_load_requests, 72);
    check(all.launch.outputs_complete == 1 && out.f()[9 * 256] == 9.0f * 256 && out.f()[n - 1] == static_cast<float>(n - 1),
          "sample 9 of 10, all executed: outputs complete");
    // A sample of 4 is blocks 0, 2, 5, 7 (floor(i * 2.5)): four full blocks, 32 requests; scale 2.5;
    // their footprint is 4 * 1024 bytes read, scaled to 10240.
    const Profiled four = profile("cc_prof_copy", {10, 1, 1}, {256, 1, 1}, 0, args, 4);
    expect("sample 4 of 10: global load requests", four.launch.raw.global_load_requests, 32);
    expect("sample 4 of 10: unique read bytes (raw)", four.launch.raw.unique_read_bytes, 4096);
    expect("sample 4 of 10: unique read bytes (scaled)", four.launch.scaled.unique_read_bytes, 10240);
    // A sample larger than the grid is the whole grid.
    const Profiled whole = profile("cc_prof_copy", {10, 1, 1}, {256, 1, 1}, 0, args, 1000);
    expect("sample 1000 of 10: blocks sampled", whole.launch.blocks_sampled, 10);
    expect("sample 1000 of 10: global load requests", whole.launch.raw.global_load_requests, 73);
}

void test_session() {
    CopyArgs a(256);
    void** args = a.args;
    char message[256];
    // Launches outside a session are not recorded; the last session's records stay readable.
    cc_prof_begin(0, 0);
    cc_emu_launch("cc_prof_copy", {1, 1, 1}, {256, 1, 1}, 0, args, message, sizeof message);
    cc_emu_launch("cc_prof_copy", {1, 1, 1}, {256, 1, 1}, 0, args, message, sizeof message);
    cc_prof_end();
    cc_emu_launch("cc_prof_copy", {1, 1, 1}, {256, 1, 1}, 0, args, message, sizeof message);
    expect("session: launches recorded", static_cast<unsigned long long>(cc_prof_launch_count()), 2);
    cc_prof_launch_info info{};
    check(cc_prof_launch(2, &info) == CC_EMU_ERROR_INVALID_VALUE && cc_prof_launch(0, nullptr) == CC_EMU_ERROR_INVALID_VALUE &&
              cc_prof_instruction(0, 99, nullptr) == CC_EMU_ERROR_INVALID_VALUE,
          "session: out-of-range queries are refused");
    check(cc_prof_begin(0, 2) == CC_EMU_ERROR_INVALID_VALUE, "session: unknown flags are refused");
    check(cc_prof_version() == CC_PROF_VERSION, "session: cc_prof_version");
}

// A production launch through the C ABI: the pointwise forward of n=128 c=64 h=w=16 k=128, 32 sampled
// blocks. Prints the time (never asserted) and checks what must hold for any kernel.
void test_pointwise_forward() {
    cc_handle h = nullptr;
    if (cc_create(&h, 0) != CC_SUCCESS) {
        check(false, std::string("pointwise: cc_create: ") + cc_last_error());
        return;
    }
    cc_conv_problem pr{};
    cc_conv_init(&pr, 128, 64, 16, 16, 128, 1, 1, 0, 0, 1, 1, 1);
    Buffer x(128ull * 64 * 256 * 4), w(128ull * 64 * 4), y(128ull * 128 * 256 * 4);
    std::memset(x.data, 0, x.size);
    std::memset(w.data, 0, w.size);
    const auto start = std::chrono::steady_clock::now();
    cc_prof_begin(32, 0);
    const cc_status status = cc_conv_forward(h, &pr, nullptr, x.f(), w.f(), y.f(), nullptr, 0, nullptr);
    cc_prof_end();
    const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    cc_destroy(h);
    check(status == CC_SUCCESS && cc_prof_launch_count() == 1, "pointwise forward n=128 c=64 h=w=16 k=128: one launch");
    cc_prof_launch_info l{};
    if (cc_prof_launch(0, &l) != 0) return;
    const cc_prof_counters& c = l.raw;
    check(l.blocks_sampled == 32 && l.blocks_total > 32 && l.outputs_complete == 0, "pointwise: 32 blocks sampled of " + std::to_string(l.blocks_total));
    check(c.global_load_requests > 0 && c.global_store_requests > 0 && c.shared_load_requests > 0 &&
              c.shared_load_wavefronts >= c.shared_load_ideal_wavefronts,
          "pointwise: global and shared traffic recorded");
    std::printf("     pointwise forward (%s, %llu of %llu blocks) profiled in %.2f s: global load %.2f sectors/request, "
                "store %.2f, shared load %.2f wavefronts/request (ideal %.2f), unique read %llu B (raw)\n",
                l.kernel, l.blocks_sampled, l.blocks_total, seconds,
                static_cast<double>(c.global_load_sectors) / static_cast<double>(c.global_load_requests),
                static_cast<double>(c.global_store_sectors) / static_cast<double>(c.global_store_requests),
                static_cast<double>(c.shared_load_wavefronts) / static_cast<double>(c.shared_load_requests),
                static_cast<double>(c.shared_load_ideal_wavefronts) / static_cast<double>(c.shared_load_requests), c.unique_read_bytes);
}

} // namespace

int main(int argc, char** argv) {
    for (int i = 1; i < argc; ++i) {
        const std::string a = argv[i];
        if (a == "-v") verbose = true;
        else {
            const std::size_t slash = a.rfind('/');
            library_dir = slash == std::string::npos ? "." : a.substr(0, slash);
        }
    }
    test_copies();
    test_gathers();
    test_float4();
    test_loop();
    test_shared_strides();
    test_shared_vectors();
    test_shared_float4_halves(true, 2, 2);
    test_shared_float4_halves(false, 8, 4);
    test_atomics();
    test_tensor_cores();
    test_sources();
    test_sampling();
    test_session();
    test_pointwise_forward();
    std::printf("%d passed, %d failed\n", passed, failed);
    return failed == 0 ? 0 : 1;
}
