/* An AVX2-only CPU, simulated for one process tree (bench/model_bench.py --simulate-avx2).
 *
 * LD_PRELOAD this library: its constructor turns on Linux's CPUID faulting (arch_prctl ARCH_SET_CPUID,
 * needs the "cpuid_fault" CPU flag) and handles the SIGSEGV that every CPUID instruction then raises:
 * it runs the real CPUID and clears the feature bits newer than AVX2 + FMA (AVX-512 of every kind,
 * AVX-512/AVX VNNI, AVX-512 BF16/FP16, AMX) before handing the registers back.  Every library that
 * picks its kernels from CPUID at run time (ONNX Runtime's MLAS, oneDNN, fbgemm, ATen, MKL, numpy)
 * then sees a Haswell-class CPU, which neither ORT nor fbgemm let an environment variable do.
 * glibc's own string functions were chosen before the constructor runs; that does not touch matmuls.
 *
 * Build: gcc -O2 -shared -fPIC -o avx2_only.so avx2_only.c
 */
#define _GNU_SOURCE
#include <signal.h>
#include <stdint.h>
#include <string.h>
#include <sys/syscall.h>
#include <ucontext.h>
#include <unistd.h>

#define ARCH_GET_CPUID 0x1011
#define ARCH_SET_CPUID 0x1012

/* leaf 7, subleaf 0 */
#define B7 ((1u << 16) | (1u << 17) | (1u << 21) | (1u << 26) | (1u << 27) | (1u << 28) | (1u << 30) | (1u << 31))
#define C7 ((1u << 1) | (1u << 6) | (1u << 11) | (1u << 12) | (1u << 14))
#define D7 ((1u << 2) | (1u << 3) | (1u << 8) | (1u << 22) | (1u << 23) | (1u << 24) | (1u << 25))
/* leaf 7, subleaf 1: AVX-VNNI, AVX512_BF16, AMX-FP16, AVX-IFMA; EDX: AVX-VNNI-INT8, AVX-NE-CONVERT */
#define A71 ((1u << 4) | (1u << 5) | (1u << 21) | (1u << 23))
#define D71 ((1u << 4) | (1u << 5))

static void on_segv(int sig, siginfo_t *info, void *raw) {
    ucontext_t *ctx = (ucontext_t *)raw;
    greg_t *g = ctx->uc_mcontext.gregs;
    const unsigned char *ip = (const unsigned char *)g[REG_RIP];
    (void)info;
    if (ip[0] != 0x0f || ip[1] != 0xa2) { /* a real crash: default action on return */
        signal(sig, SIG_DFL);
        return;
    }
    uint32_t leaf = (uint32_t)g[REG_RAX], sub = (uint32_t)g[REG_RCX], a, b, c, d;
    syscall(SYS_arch_prctl, ARCH_SET_CPUID, 1);
    __asm__ volatile("cpuid" : "=a"(a), "=b"(b), "=c"(c), "=d"(d) : "a"(leaf), "c"(sub));
    syscall(SYS_arch_prctl, ARCH_SET_CPUID, 0);
    if (leaf == 7 && sub == 0) {
        b &= ~B7;
        c &= ~C7;
        d &= ~D7;
    } else if (leaf == 7 && sub == 1) {
        a &= ~A71;
        d &= ~D71;
    }
    g[REG_RAX] = a;
    g[REG_RBX] = b;
    g[REG_RCX] = c;
    g[REG_RDX] = d;
    g[REG_RIP] += 2;
}

__attribute__((constructor)) static void avx2_only(void) {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = on_segv;
    sa.sa_flags = SA_SIGINFO | SA_NODEFER;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGSEGV, &sa, NULL);
    syscall(SYS_arch_prctl, ARCH_SET_CPUID, 0); /* per thread, inherited by threads made later */
}
