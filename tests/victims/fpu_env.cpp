// State: per-thread floating-point environment (x86-64): the main thread
// rounds upward with MXCSR flush-to-zero and denormals-are-zero set, x87
// precision 53 bits, FE_INVALID unmasked (trapping) and FE_INEXACT|
// FE_OVERFLOW raised (sticky flags); a second thread rounds toward zero with
// x87 precision 24 bits and FE_UNDERFLOW raised. Both park in a barrier.
// Checks: each thread's MXCSR, x87 control word, rounding mode, enabled
// traps and sticky flags are what it set, and 1.0/3.0 rounds its way.
#include "victim.h"

#include <atomic>
#include <cfenv>
#include <pthread.h>

#if defined(__x86_64__)

namespace {

struct Env {
  unsigned mxcsr;
  std::uint16_t x87cw;
  int round;
  int traps;
  int flags;
  std::uint64_t third;  // bits of 1.0/3.0 in this environment
};

unsigned get_mxcsr() {
  unsigned v;
  asm volatile("stmxcsr %0" : "=m"(v));
  return v;
}
void set_mxcsr(unsigned v) { asm volatile("ldmxcsr %0" : : "m"(v)); }
std::uint16_t get_cw() {
  std::uint16_t v;
  asm volatile("fnstcw %0" : "=m"(v));
  return v;
}
void set_cw(std::uint16_t v) { asm volatile("fldcw %0" : : "m"(v)); }

std::uint64_t third() {
  volatile double one = 1.0, three = 3.0;
  double r = one / three;
  std::uint64_t bits;
  std::memcpy(&bits, &r, 8);
  return bits;
}

Env capture() {
  return Env{get_mxcsr(), get_cw(), fegetround(), fegetexcept(), fetestexcept(FE_ALL_EXCEPT), third()};
}

// Precision control is bits 8-9 of the x87 control word: 00 = 24, 10 = 53.
Env setup(int round, unsigned mxcsr_or, std::uint16_t precision, int trap, int raise) {
  fesetround(round);
  set_mxcsr(get_mxcsr() | mxcsr_or);
  set_cw(static_cast<std::uint16_t>((get_cw() & ~0x0300) | precision));
  if (trap != 0) feenableexcept(trap);
  feclearexcept(FE_ALL_EXCEPT);
  Env e = capture();  // 1.0/3.0 raises FE_INEXACT in every mode
  feclearexcept(FE_ALL_EXCEPT);
  feraiseexcept(raise);
  e.mxcsr = get_mxcsr();
  e.flags = fetestexcept(FE_ALL_EXCEPT);
  return e;
}

bool same(const Env& a, const Env& b, char* why, std::size_t n) {
  std::snprintf(why, n, "mxcsr %#x/%#x cw %#x/%#x round %#x/%#x traps %#x/%#x flags %#x/%#x 1/3 %#lx/%#lx (now/saved)",
                a.mxcsr, b.mxcsr, a.x87cw, b.x87cw, a.round, b.round, a.traps, b.traps, a.flags, b.flags,
                static_cast<unsigned long>(a.third), static_cast<unsigned long>(b.third));
  return a.mxcsr == b.mxcsr && a.x87cw == b.x87cw && a.round == b.round && a.traps == b.traps && a.flags == b.flags &&
         a.third == b.third;
}

pthread_barrier_t started, go;
char thread_why[512];
std::atomic<int> thread_ok{0};

void* worker(void*) {
  Env saved = setup(FE_TOWARDZERO, 0, 0x0000, 0, FE_UNDERFLOW);
  pthread_barrier_wait(&started);
  pthread_barrier_wait(&go);
  // Flags first: computing 1/3 below would add FE_INEXACT.
  Env now{get_mxcsr(), get_cw(), fegetround(), fegetexcept(), fetestexcept(FE_ALL_EXCEPT), 0};
  feclearexcept(FE_ALL_EXCEPT);
  now.third = third();
  thread_ok = same(now, saved, thread_why, sizeof thread_why) ? 1 : 2;
  return nullptr;
}

}  // namespace

int main() {
  pthread_barrier_init(&started, nullptr, 2);
  pthread_barrier_init(&go, nullptr, 2);
  pthread_t t;
  victim_check(pthread_create(&t, nullptr, worker, nullptr) == 0, "pthread_create");
  Env saved = setup(FE_UPWARD, 0x8040 /* FTZ | DAZ */, 0x0200, FE_INVALID, FE_INEXACT | FE_OVERFLOW);
  pthread_barrier_wait(&started);
  victim_check(saved.third == 0x3fd5555555555556ULL, "1/3 rounded upward is %#lx", static_cast<unsigned long>(saved.third));

  victim_ready();
  victim_wait_go();

  Env now{get_mxcsr(), get_cw(), fegetround(), fegetexcept(), fetestexcept(FE_ALL_EXCEPT), 0};
  feclearexcept(FE_ALL_EXCEPT);
  now.third = third();
  // victim_wait_go() does no floating point: even the sticky flags must be
  // exactly the saved ones.
  char why[512];
  victim_check(same(now, saved, why, sizeof why), "main thread's FP environment differs: %s", why);
  pthread_barrier_wait(&go);
  pthread_join(t, nullptr);
  victim_check(thread_ok == 1, "second thread's FP environment differs: %s", thread_why);
  victim_pass();
}

#else

int main() {
  victim_ready();
  victim_wait_go();
  victim_fail("fpu_env is x86-64 only");
}

#endif
