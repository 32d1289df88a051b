// State: a different blocked-signal mask in each of 8 threads and in the main
// thread (SIGRTMIN+i, SIGUSR1 in odd threads, SIGUSR2 in all but thread 5,
// SIGHUP in the main thread), threads parked in a barrier.
// Checks: every thread's mask equals what it set (pthread_sigmask and the
// SigBlk line of /proc/self/task/TID/status); a process-directed SIGUSR2,
// blocked everywhere but thread 5, is delivered to thread 5.
#include "victim.h"

#include <atomic>
#include <csignal>
#include <cstdlib>
#include <pthread.h>
#include <unistd.h>

namespace {

constexpr int N = 8;
pthread_barrier_t started, go, done;
std::atomic<pid_t> usr2_tid{0};
pid_t tids[N];
std::atomic<int> bad_thread{-1};

void on_usr2(int) { usr2_tid = gettid(); }

sigset_t mask_for(int i) {
  sigset_t s;
  sigemptyset(&s);
  if (i < 0) {
    sigaddset(&s, SIGHUP);
    sigaddset(&s, SIGUSR2);
    return s;
  }
  sigaddset(&s, SIGRTMIN + i);
  if (i % 2 == 1) sigaddset(&s, SIGUSR1);
  if (i != 5) sigaddset(&s, SIGUSR2);
  return s;
}

bool mask_ok(int i) {
  sigset_t want = mask_for(i), cur;
  pthread_sigmask(SIG_BLOCK, nullptr, &cur);
  for (int s = 1; s < NSIG; ++s)
    if (sigismember(&want, s) != sigismember(&cur, s)) return false;
  // The kernel's view too.
  std::string status = victim_read_file("/proc/thread-self/status");
  std::size_t at = status.find("SigBlk:\t");
  if (at == std::string::npos) return false;
  unsigned long long blk = std::strtoull(status.c_str() + at + 8, nullptr, 16);
  unsigned long long expect = 0;
  for (int s = 1; s <= 64; ++s)
    if (sigismember(&want, s)) expect |= 1ULL << (s - 1);
  return blk == expect;
}

void* worker(void* arg) {
  int i = static_cast<int>(reinterpret_cast<std::intptr_t>(arg));
  sigset_t m = mask_for(i);
  pthread_sigmask(SIG_SETMASK, &m, nullptr);
  tids[i] = gettid();
  pthread_barrier_wait(&started);
  pthread_barrier_wait(&go);
  if (!mask_ok(i)) bad_thread = i;
  pthread_barrier_wait(&done);  // wait here while SIGUSR2 is delivered
  pthread_barrier_wait(&done);
  return nullptr;
}

}  // namespace

int main() {
  struct sigaction a {};
  a.sa_handler = on_usr2;
  sigemptyset(&a.sa_mask);
  victim_sys(sigaction(SIGUSR2, &a, nullptr));
  sigset_t m = mask_for(-1);
  pthread_sigmask(SIG_SETMASK, &m, nullptr);
  pthread_barrier_init(&started, nullptr, N + 1);
  pthread_barrier_init(&go, nullptr, N + 1);
  pthread_barrier_init(&done, nullptr, N + 1);
  pthread_t t[N];
  for (int i = 0; i < N; ++i)
    victim_check(pthread_create(&t[i], nullptr, worker, reinterpret_cast<void*>(static_cast<std::intptr_t>(i))) == 0,
                 "pthread_create");
  pthread_barrier_wait(&started);

  victim_ready();
  victim_wait_go();

  victim_check(mask_ok(-1), "main thread's signal mask differs");
  pthread_barrier_wait(&go);
  pthread_barrier_wait(&done);
  victim_check(bad_thread < 0, "thread %d's signal mask differs", bad_thread.load());
  victim_sys(kill(getpid(), SIGUSR2));
  for (int i = 0; i < 1000 && usr2_tid == 0; ++i) usleep(1000);
  victim_check(usr2_tid == tids[5], "SIGUSR2 was handled by tid %d, expected thread 5 (tid %d)", usr2_tid.load(),
               tids[5]);
  pthread_barrier_wait(&done);
  for (pthread_t& x : t) pthread_join(x, nullptr);
  victim_pass();
}
