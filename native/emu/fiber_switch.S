/* x86-64 System V context switch for the emulator's fibers (see fiber.h).
 *
 * Why hand-written: ucontext's swapcontext makes a sigprocmask syscall on every switch (~16x slower),
 * and a CUDA thread switches at every __syncthreads and warp op. A switch only has to preserve what
 * the ABI says a callee preserves: rbx, rbp, r12-r15, the stack pointer, and the floating-point control
 * state (MXCSR control bits and the x87 control word), which we save per fiber so a kernel that changes
 * rounding or flush-to-zero cannot leak it into another fiber or into the scheduler.
 *
 * void cc_emu_fiber_switch(void** save_sp, void* load_sp)
 *   Saves the current context on the current stack, stores that stack pointer in *save_sp, and resumes
 *   the context whose stack pointer is load_sp.
 *
 * Saved frame, from the saved stack pointer upwards:
 *   [sp+0]  MXCSR (4 bytes)  [sp+4] x87 control word (2 bytes, 2 padding)
 *   [sp+8]  r15  [sp+16] r14  [sp+24] r13  [sp+32] r12  [sp+40] rbx  [sp+48] rbp  [sp+56] return address
 * fiber.cpp builds the same frame by hand to start a new fiber, with cc_emu_fiber_trampoline as the
 * return address, the fiber object in r12 and its entry function in r13.
 */
    .text
    .globl  cc_emu_fiber_switch
    .hidden cc_emu_fiber_switch
    .type   cc_emu_fiber_switch, @function
    .p2align 4
cc_emu_fiber_switch:
    .cfi_startproc
    pushq   %rbp
    pushq   %rbx
    pushq   %r12
    pushq   %r13
    pushq   %r14
    pushq   %r15
    subq    $8, %rsp
    stmxcsr (%rsp)
    fnstcw  4(%rsp)
    movq    %rsp, (%rdi)
    movq    %rsi, %rsp
    ldmxcsr (%rsp)
    fldcw   4(%rsp)
    addq    $8, %rsp
    popq    %r15
    popq    %r14
    popq    %r13
    popq    %r12
    popq    %rbx
    popq    %rbp
    ret
    .cfi_endproc
    .size   cc_emu_fiber_switch, .-cc_emu_fiber_switch

/* First code a new fiber runs (reached by the `ret` above). The stack pointer is 16-byte aligned here,
 * so the call leaves it at 8 mod 16 on entry, as the ABI requires. The entry function never returns
 * (a finished fiber switches away for good); ud2 traps if it ever does. The return address is marked
 * undefined so unwinders and sanitizer stack traces stop here instead of walking into garbage. */
    .globl  cc_emu_fiber_trampoline
    .hidden cc_emu_fiber_trampoline
    .type   cc_emu_fiber_trampoline, @function
    .p2align 4
cc_emu_fiber_trampoline:
    .cfi_startproc
    .cfi_undefined rip
    movq    %r12, %rdi
    callq   *%r13
    ud2
    .cfi_endproc
    .size   cc_emu_fiber_trampoline, .-cc_emu_fiber_trampoline

    .section .note.GNU-stack,"",@progbits
