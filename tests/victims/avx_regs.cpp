// State: vector and x87 registers live across the checkpoint (x86-64).
// Two threads load every vector register with a distinct pattern (zmm0-31
// and mask registers k1-k7 with AVX-512F, else ymm0-15 with AVX, else
// xmm0-15) and push 8 distinct 80-bit values on the x87 stack, all in one
// asm block that then loops without touching them until the main thread
// sets a flag after go. One thread spins in user space (frozen mid-loop),
// the other loops over nanosleep(1 ms) system calls (frozen in a syscall).
// Checks: after go each thread stores its registers and they equal what it
// loaded: the engine saved and restored the full XSAVE state per thread.
#include "victim.h"

#include <atomic>
#include <pthread.h>
#include <sys/syscall.h>
#include <unistd.h>

#if defined(__x86_64__)

namespace {

#define REGS_0_15(M) M(0) M(1) M(2) M(3) M(4) M(5) M(6) M(7) M(8) M(9) M(10) M(11) M(12) M(13) M(14) M(15)
#define REGS_16_31(M) \
  M(16) M(17) M(18) M(19) M(20) M(21) M(22) M(23) M(24) M(25) M(26) M(27) M(28) M(29) M(30) M(31)
#define CLOB_XMM_0_15                                                                                   \
  "xmm0", "xmm1", "xmm2", "xmm3", "xmm4", "xmm5", "xmm6", "xmm7", "xmm8", "xmm9", "xmm10", "xmm11", "xmm12", \
      "xmm13", "xmm14", "xmm15",
#define CLOB_XMM_16_31                                                                                        \
  "xmm16", "xmm17", "xmm18", "xmm19", "xmm20", "xmm21", "xmm22", "xmm23", "xmm24", "xmm25", "xmm26", "xmm27", \
      "xmm28", "xmm29", "xmm30", "xmm31",
#define CLOB_X87 "st", "st(1)", "st(2)", "st(3)", "st(4)", "st(5)", "st(6)", "st(7)"

#define LD_Z(n) "vmovdqu64 " #n "*64(%[vin]), %%zmm" #n "\n\t"
#define ST_Z(n) "vmovdqu64 %%zmm" #n ", " #n "*64(%[vout])\n\t"
#define LD_Y(n) "vmovdqu " #n "*32(%[vin]), %%ymm" #n "\n\t"
#define ST_Y(n) "vmovdqu %%ymm" #n ", " #n "*32(%[vout])\n\t"
#define LD_X(n) "movdqu " #n "*16(%[vin]), %%xmm" #n "\n\t"
#define ST_X(n) "movdqu %%xmm" #n ", " #n "*16(%[vout])\n\t"
#define LD_K(n) "kmovw " #n "*2(%[kin]), %%k" #n "\n\t"
#define ST_K(n) "kmovw %%k" #n ", " #n "*2(%[kout])\n\t"
#define K1_7(M) M(1) M(2) M(3) M(4) M(5) M(6) M(7)

#define X87_LOAD                                                                                        \
  "fldt 0*16(%[fin])\n\tfldt 1*16(%[fin])\n\tfldt 2*16(%[fin])\n\tfldt 3*16(%[fin])\n\t"              \
  "fldt 4*16(%[fin])\n\tfldt 5*16(%[fin])\n\tfldt 6*16(%[fin])\n\tfldt 7*16(%[fin])\n\t"
#define X87_STORE                                                                                       \
  "fstpt 7*16(%[fout])\n\tfstpt 6*16(%[fout])\n\tfstpt 5*16(%[fout])\n\tfstpt 4*16(%[fout])\n\t"      \
  "fstpt 3*16(%[fout])\n\tfstpt 2*16(%[fout])\n\tfstpt 1*16(%[fout])\n\tfstpt 0*16(%[fout])\n\t"

// Wait loops, entered with all registers loaded; they leave when *flag != 0.
#define SPIN_LOOP "movl $1, (%[loaded])\n\t1: pause\n\tcmpl $0, (%[flag])\n\tje 1b\n\t"
#define SLEEP_LOOP                                                              \
  "movl $1, (%[loaded])\n\t"                                                    \
  "1: movl $35, %%eax\n\tmovq %[ts], %%rdi\n\txorl %%esi, %%esi\n\tsyscall\n\t" \
  "cmpl $0, (%[flag])\n\tje 1b\n\t"

enum class Kind { zmm, ymm, xmm };

struct Regs {
  alignas(64) std::uint8_t vec[32 * 64];
  alignas(16) std::uint8_t x87[8 * 16];
  std::uint16_t k[8];
};

struct Job {
  Kind kind;
  bool in_syscall;
  Regs in{}, out{};
  std::atomic<int> loaded{0};
  volatile int* flag;
};

const timespec one_ms{0, 1000 * 1000};

#define OPERANDS                                                                                              \
  : /* no outputs */ : [vin] "r"(j->in.vec), [vout] "r"(j->out.vec), [kin] "r"(j->in.k), [kout] "r"(j->out.k),                  \
    [fin] "r"(j->in.x87), [fout] "r"(j->out.x87), [flag] "r"(j->flag), [loaded] "r"(&j->loaded), [ts] "r"(&one_ms)

__attribute__((target("avx512f"))) void hold_zmm(Job* j) {
  if (j->in_syscall)
    asm volatile(REGS_0_15(LD_Z) REGS_16_31(LD_Z) K1_7(LD_K) X87_LOAD SLEEP_LOOP REGS_0_15(ST_Z) REGS_16_31(ST_Z)
                     K1_7(ST_K) X87_STORE OPERANDS
                 : CLOB_XMM_0_15 CLOB_XMM_16_31 "k1", "k2", "k3", "k4", "k5", "k6", "k7", CLOB_X87,
                   "rax", "rcx", "rdi", "rsi", "r11", "memory", "cc");
  else
    asm volatile(REGS_0_15(LD_Z) REGS_16_31(LD_Z) K1_7(LD_K) X87_LOAD SPIN_LOOP REGS_0_15(ST_Z) REGS_16_31(ST_Z)
                     K1_7(ST_K) X87_STORE OPERANDS
                 : CLOB_XMM_0_15 CLOB_XMM_16_31 "k1", "k2", "k3", "k4", "k5", "k6", "k7", CLOB_X87,
                   "memory", "cc");
}

__attribute__((target("avx"))) void hold_ymm(Job* j) {
  if (j->in_syscall)
    asm volatile(REGS_0_15(LD_Y) X87_LOAD SLEEP_LOOP REGS_0_15(ST_Y) X87_STORE OPERANDS
                 : CLOB_XMM_0_15 CLOB_X87, "rax", "rcx", "rdi", "rsi", "r11", "memory", "cc");
  else
    asm volatile(REGS_0_15(LD_Y) X87_LOAD SPIN_LOOP REGS_0_15(ST_Y) X87_STORE OPERANDS
                 : CLOB_XMM_0_15 CLOB_X87, "memory", "cc");
}

void hold_xmm(Job* j) {
  if (j->in_syscall)
    asm volatile(REGS_0_15(LD_X) X87_LOAD SLEEP_LOOP REGS_0_15(ST_X) X87_STORE OPERANDS
                 : CLOB_XMM_0_15 CLOB_X87, "rax", "rcx", "rdi", "rsi", "r11", "memory", "cc");
  else
    asm volatile(REGS_0_15(LD_X) X87_LOAD SPIN_LOOP REGS_0_15(ST_X) X87_STORE OPERANDS
                 : CLOB_XMM_0_15 CLOB_X87, "memory", "cc");
}

void* run(void* arg) {
  auto* j = static_cast<Job*>(arg);
  switch (j->kind) {
    case Kind::zmm: hold_zmm(j); break;
    case Kind::ymm: hold_ymm(j); break;
    case Kind::xmm: hold_xmm(j); break;
  }
  return nullptr;
}

void prepare(Job& j, std::uint64_t seed) {
  victim_fill(j.in.vec, sizeof j.in.vec, seed);
  for (int i = 0; i < 8; ++i) {
    long double v = 1.0L / (3.0L + static_cast<long double>(i) + static_cast<long double>(seed));
    std::memcpy(j.in.x87 + 16 * i, &v, 10);
    j.in.k[i] = static_cast<std::uint16_t>(0x1111 * (i + 1) + seed);
  }
}

}  // namespace

int main() {
  __builtin_cpu_init();
  const Kind kind = __builtin_cpu_supports("avx512f") ? Kind::zmm
                    : __builtin_cpu_supports("avx")   ? Kind::ymm
                                                      : Kind::xmm;
  const char* kind_name = kind == Kind::zmm ? "zmm0-31+k1-7" : kind == Kind::ymm ? "ymm0-15" : "xmm0-15";
  const std::size_t vec_bytes = kind == Kind::zmm ? 32 * 64 : kind == Kind::ymm ? 16 * 32 : 16 * 16;
  victim_log("avx_regs: holding %s and x87 st0-7", kind_name);

  volatile int flag = 0;
  Job jobs[2];
  pthread_t t[2];
  for (int i = 0; i < 2; ++i) {
    jobs[i].kind = kind;
    jobs[i].in_syscall = i == 1;
    jobs[i].flag = &flag;
    prepare(jobs[i], 1000 + static_cast<std::uint64_t>(i));
    victim_check(pthread_create(&t[i], nullptr, run, &jobs[i]) == 0, "pthread_create");
  }
  for (Job& j : jobs)
    while (j.loaded == 0) sched_yield();

  victim_ready();
  victim_wait_go();

  flag = 1;
  for (int i = 0; i < 2; ++i) {
    pthread_join(t[i], nullptr);
    const Job& j = jobs[i];
    const char* where = j.in_syscall ? "thread looping in nanosleep" : "thread spinning in user space";
    for (std::size_t b = 0; b < vec_bytes; ++b)
      victim_check(j.in.vec[b] == j.out.vec[b], "%s: vector register %zu (%s) differs at byte %zu", where,
                   b / (vec_bytes / (kind == Kind::zmm ? 32 : 16)), kind_name,
                   b % (vec_bytes / (kind == Kind::zmm ? 32 : 16)));
    for (int r = 0; r < 8; ++r)
      victim_check(std::memcmp(j.in.x87 + 16 * r, j.out.x87 + 16 * r, 10) == 0, "%s: x87 st(%d) differs", where, 7 - r);
    if (kind == Kind::zmm)
      for (int r = 1; r < 8; ++r)
        victim_check(j.in.k[r] == j.out.k[r], "%s: k%d is %#x, was %#x", where, r, j.out.k[r], j.in.k[r]);
  }
  victim_pass();
}

#else

int main() {
  victim_ready();
  victim_wait_go();
  victim_fail("avx_regs is x86-64 only");
}

#endif
