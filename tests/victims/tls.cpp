// State: thread-local storage of 8 threads and the main thread: a
// thread_local array with a per-thread pattern, a thread_local object with
// a constructor, a __thread scalar, and each thread's FS base (the TLS
// pointer), all saved before the threads park in a barrier.
// Checks: in every thread the values are intact, &variable and the FS base
// (arch_prctl ARCH_GET_FS) are unchanged, and TLS is still per thread.
#include "victim.h"

#include <asm/prctl.h>
#include <atomic>
#include <pthread.h>
#include <sys/syscall.h>
#include <unistd.h>

namespace {

constexpr int N = 8;

thread_local std::uint8_t tls_array[4096];
__thread std::uint64_t tls_scalar = 0x1234;
struct Obj {
  std::uint64_t a = 0xabcdef;
  std::uint64_t b = 0;
};
thread_local Obj tls_obj;

struct Saved {
  const void* array_addr = nullptr;
  const void* obj_addr = nullptr;
  unsigned long fs = 0;
};

pthread_barrier_t started, go;
std::atomic<int> failures{0};
std::atomic<int> first_failed{-1};

unsigned long fs_base() {
  unsigned long fs = 0;
  syscall(SYS_arch_prctl, ARCH_GET_FS, &fs);
  return fs;
}

Saved fill(int who) {
  victim_fill(tls_array, sizeof tls_array, 500 + static_cast<std::uint64_t>(who));
  tls_scalar = 0x1000 + static_cast<std::uint64_t>(who);
  tls_obj.b = 0x2000 + static_cast<std::uint64_t>(who);
  return Saved{tls_array, &tls_obj, fs_base()};
}

bool check(int who, const Saved& s) {
  return victim_verify(tls_array, sizeof tls_array, 500 + static_cast<std::uint64_t>(who)) == sizeof tls_array &&
         tls_scalar == 0x1000 + static_cast<std::uint64_t>(who) && tls_obj.a == 0xabcdef &&
         tls_obj.b == 0x2000 + static_cast<std::uint64_t>(who) && s.array_addr == tls_array &&
         s.obj_addr == &tls_obj && s.fs == fs_base();
}

void* worker(void* arg) {
  int who = static_cast<int>(reinterpret_cast<std::intptr_t>(arg));
  Saved s = fill(who);
  pthread_barrier_wait(&started);
  pthread_barrier_wait(&go);
  if (!check(who, s)) {
    failures++;
    first_failed = who;
  }
  return nullptr;
}

}  // namespace

int main() {
  pthread_barrier_init(&started, nullptr, N + 1);
  pthread_barrier_init(&go, nullptr, N + 1);
  pthread_t t[N];
  for (int i = 0; i < N; ++i)
    victim_check(pthread_create(&t[i], nullptr, worker, reinterpret_cast<void*>(static_cast<std::intptr_t>(i + 1))) == 0,
                 "pthread_create");
  Saved mine = fill(0);
  pthread_barrier_wait(&started);

  victim_ready();
  victim_wait_go();

  pthread_barrier_wait(&go);
  for (pthread_t& x : t) pthread_join(x, nullptr);
  victim_check(check(0, mine), "main thread's TLS differs (fs base %#lx, was %#lx)", fs_base(), mine.fs);
  victim_check(failures == 0, "%d threads' TLS differs (e.g. thread %d)", failures.load(), first_failed.load());
  victim_pass();
}
