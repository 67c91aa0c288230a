/* Root task entry (ABI 9.4): rsp = HIP address, rdi = boot CPU number. */
.section .text.start, "ax"
.global _start
_start:
    lea stack_top(%rip), %rsp
    call main
1:  ud2
    jmp 1b

.section .bss
.align 16
stack:
    .skip 16384
stack_top:
