// Fiber stacks and switching (the assembly is in fiber_switch.S), with the sanitizer annotations that
// let ASan and TSan follow execution from one fiber stack to another.
#include "emu_internal.h"

#include <sys/mman.h>
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <cstring>

#if defined(CC_EMU_ASAN)
#include <sanitizer/asan_interface.h>
#include <sanitizer/common_interface_defs.h>
#endif
#if defined(CC_EMU_TSAN)
// Declared here rather than included: this file is compiled without -fsanitize=thread in the TSan build.
extern "C" {
void* __tsan_get_current_fiber(void);
void* __tsan_create_fiber(unsigned flags);
void __tsan_destroy_fiber(void* fiber);
void __tsan_switch_to_fiber(void* fiber, unsigned flags);
void __tsan_set_fiber_name(void* fiber, const char* name);
void __tsan_acquire(void* addr);
void __tsan_release(void* addr);
}
static constexpr unsigned kTsanNoSync = 1; // __tsan_switch_to_fiber_no_sync
#endif

extern "C" void cc_emu_fiber_switch(void** save_sp, void* load_sp);
extern "C" void cc_emu_fiber_trampoline();

namespace cc_emu {

// Generous: kernels keep small frames, but sanitizer builds enlarge frames several times, and stacks
// are only committed as they are touched.
static constexpr std::size_t kStackSize = 256 * 1024;

bool fiber_allocate(Fiber& f) {
    const std::size_t page = static_cast<std::size_t>(sysconf(_SC_PAGESIZE));
    const std::size_t size = kStackSize + page;
    void* p = mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | MAP_STACK, -1, 0);
    if (p == MAP_FAILED) return false;
    // Guard page at the low end: a stack overflow faults instead of corrupting the next fiber's stack.
    if (mprotect(p, page, PROT_NONE) != 0) {
        munmap(p, size);
        return false;
    }
    f.map_base = static_cast<char*>(p);
    f.map_size = size;
    f.stack_lo = f.map_base + page;
    f.stack_size = kStackSize;
    return true;
}

void fiber_release(Fiber& f) {
#if defined(CC_EMU_TSAN)
    if (f.tsan_fiber) __tsan_destroy_fiber(f.tsan_fiber);
    f.tsan_fiber = nullptr;
#endif
    if (f.map_base) munmap(f.map_base, f.map_size);
    f.map_base = nullptr;
}

void fiber_prepare(Fiber& f, void (*entry)(Fiber*), unsigned mxcsr, unsigned short fpu_cw) {
    if (f.abandoned) {
        // The previous block was aborted with this fiber suspended mid-kernel. Its frames are simply
        // dropped (kernels hold no resources), but the sanitizers still track them.
#if defined(CC_EMU_ASAN)
        __asan_unpoison_memory_region(f.stack_lo, f.stack_size);
#endif
#if defined(CC_EMU_TSAN)
        if (f.tsan_fiber) __tsan_destroy_fiber(f.tsan_fiber);
        f.tsan_fiber = nullptr;
#endif
        f.asan_fake_stack = nullptr;
        f.abandoned = false;
    }
#if defined(CC_EMU_TSAN)
    if (!f.tsan_fiber) f.tsan_fiber = __tsan_create_fiber(0);
#endif
    // Build the frame cc_emu_fiber_switch pops (see fiber_switch.S). After its `ret` into the trampoline
    // the stack pointer is top - 16, which is 16-byte aligned.
    auto top = reinterpret_cast<std::uintptr_t>(f.stack_lo + f.stack_size) & ~std::uintptr_t{15};
    auto* frame = reinterpret_cast<std::uint64_t*>(top - 80);
    frame[0] = static_cast<std::uint64_t>(mxcsr) | (static_cast<std::uint64_t>(fpu_cw) << 32);
    frame[1] = 0;                                                   // r15
    frame[2] = 0;                                                   // r14
    frame[3] = reinterpret_cast<std::uint64_t>(entry);              // r13: entry function
    frame[4] = reinterpret_cast<std::uint64_t>(&f);                 // r12: its argument
    frame[5] = 0;                                                   // rbx
    frame[6] = 0;                                                   // rbp = 0 ends frame-pointer walks
    frame[7] = reinterpret_cast<std::uint64_t>(&cc_emu_fiber_trampoline); // return address
    frame[8] = 0;
    frame[9] = 0;
    f.sp = frame;
}

void fiber_abandon(Worker& w, Fiber& f, void* release_addr) {
    f.abandoned = true;
#if defined(CC_EMU_TSAN)
    // The fiber never reaches its end-of-kernel release, but the caller will reuse or free the memory
    // it wrote: release on its behalf by entering its TSan context (no stack switch is needed for that).
    __tsan_switch_to_fiber(f.tsan_fiber, kTsanNoSync);
    __tsan_release(release_addr);
    __tsan_switch_to_fiber(w.tsan_sched, kTsanNoSync);
#else
    (void)w;
    (void)release_addr;
#endif
}

void fiber_set_name(Fiber& f, const ThreadContext& c) {
#if defined(CC_EMU_TSAN)
    // TSan copies the name; it appears in race reports ("Thread T5 'block (0,0,0) thread (3,0,0)'").
    char name[64];
    std::snprintf(name, sizeof name, "block (%u,%u,%u) thread (%u,%u,%u)", c.block_idx.x, c.block_idx.y, c.block_idx.z,
                  c.thread_idx.x, c.thread_idx.y, c.thread_idx.z);
    __tsan_set_fiber_name(f.tsan_fiber, name);
#else
    (void)f;
    (void)c;
#endif
}

void worker_bind_thread(Worker& w) {
#if defined(CC_EMU_TSAN)
    w.tsan_sched = __tsan_get_current_fiber();
#endif
    t_worker = &w;
}

void fiber_switch_in(Worker& w, Fiber& f) {
    w.current = &f;
#if defined(CC_EMU_ASAN)
    void* fake_stack = nullptr;
    __sanitizer_start_switch_fiber(&fake_stack, f.stack_lo, f.stack_size);
#endif
#if defined(CC_EMU_TSAN)
    __tsan_switch_to_fiber(f.tsan_fiber, kTsanNoSync);
#endif
    cc_emu_fiber_switch(&w.sched_sp, f.sp);
#if defined(CC_EMU_ASAN)
    __sanitizer_finish_switch_fiber(fake_stack, nullptr, nullptr);
#endif
    w.current = nullptr;
}

void fiber_switch_out(Worker& w, Fiber& f, bool exiting) {
#if defined(CC_EMU_ASAN)
    // A null save slot tells ASan this fiber is finished and its fake stack may be freed.
    __sanitizer_start_switch_fiber(exiting ? nullptr : &f.asan_fake_stack, w.sched_stack_lo, w.sched_stack_size);
#else
    (void)exiting;
#endif
#if defined(CC_EMU_TSAN)
    __tsan_switch_to_fiber(w.tsan_sched, kTsanNoSync);
#endif
    cc_emu_fiber_switch(&f.sp, w.sched_sp);
#if defined(CC_EMU_ASAN)
    __sanitizer_finish_switch_fiber(f.asan_fake_stack, &w.sched_stack_lo, &w.sched_stack_size);
#endif
}

void fiber_first_entry(Worker& w, Fiber& f) {
    (void)w;
    (void)f;
#if defined(CC_EMU_ASAN)
    // Completes the scheduler's start_switch and tells us the scheduler's stack, needed to switch back.
    __sanitizer_finish_switch_fiber(nullptr, &w.sched_stack_lo, &w.sched_stack_size);
#endif
}

void hb_release(void* addr) {
#if defined(CC_EMU_TSAN)
    __tsan_release(addr);
#else
    (void)addr;
#endif
}

void hb_acquire(void* addr) {
#if defined(CC_EMU_TSAN)
    __tsan_acquire(addr);
#else
    (void)addr;
#endif
}

} // namespace cc_emu
