// State: pending signals, blocked in every thread: SIGUSR1 sent twice to the
// process (shared pending, standard signals do not queue), SIGRTMIN queued
// three times with values 1, 2, 3 (shared, real-time signals queue),
// SIGUSR2 sent to the main thread only and SIGRTMIN+1 (value 7) to the
// second thread only (per-thread pending).
// Checks: sigpending() in each thread shows its signals; unblocking delivers
// SIGUSR1 once, SIGRTMIN three times with values 1, 2, 3 in that order,
// SIGUSR2 once to the main thread, SIGRTMIN+1 once to the second thread with
// its value; nothing was delivered before go.
#include "victim.h"

#include <atomic>
#include <csignal>
#include <pthread.h>
#include <sys/syscall.h>
#include <unistd.h>

namespace {

volatile sig_atomic_t usr1 = 0, usr2 = 0, rt_count = 0, rt1_count = 0, rt1_value = 0;
volatile sig_atomic_t rt_values[8];
std::atomic<pid_t> usr2_tid{0}, rt1_tid{0}, worker_tid{0};
pthread_barrier_t started, go, done;
std::atomic<bool> thread_pending_ok{false};

void handler(int sig, siginfo_t* si, void*) {
  if (sig == SIGUSR1) usr1 = usr1 + 1;
  if (sig == SIGUSR2) {
    usr2 = usr2 + 1;
    usr2_tid = gettid();
  }
  if (sig == SIGRTMIN) {
    if (rt_count < 8) rt_values[rt_count] = si->si_value.sival_int;
    rt_count = rt_count + 1;
  }
  if (sig == SIGRTMIN + 1) {
    rt1_count = rt1_count + 1;
    rt1_value = si->si_value.sival_int;
    rt1_tid = gettid();
  }
}

sigset_t our_signals() {
  sigset_t s;
  sigemptyset(&s);
  for (int sig : {SIGUSR1, SIGUSR2, SIGRTMIN, SIGRTMIN + 1}) sigaddset(&s, sig);
  return s;
}

void* worker(void*) {
  worker_tid = gettid();
  pthread_barrier_wait(&started);  // the main thread queues our signal now
  pthread_barrier_wait(&started);
  pthread_barrier_wait(&go);
  sigset_t p;
  sigpending(&p);  // the thread's own plus what is left of the process's
  thread_pending_ok = sigismember(&p, SIGRTMIN + 1) && !sigismember(&p, SIGUSR2);
  sigset_t only;
  sigemptyset(&only);
  sigaddset(&only, SIGRTMIN + 1);
  pthread_sigmask(SIG_UNBLOCK, &only, nullptr);
  pthread_barrier_wait(&done);
  return nullptr;
}

}  // namespace

int main() {
  struct sigaction a {};
  a.sa_sigaction = handler;
  a.sa_flags = SA_SIGINFO;
  sigemptyset(&a.sa_mask);
  for (int sig : {SIGUSR1, SIGUSR2, SIGRTMIN, SIGRTMIN + 1}) victim_sys(sigaction(sig, &a, nullptr));
  sigset_t block = our_signals();
  pthread_sigmask(SIG_BLOCK, &block, nullptr);  // inherited by the thread
  pthread_barrier_init(&started, nullptr, 2);
  pthread_barrier_init(&go, nullptr, 2);
  pthread_barrier_init(&done, nullptr, 2);
  pthread_t t;
  victim_check(pthread_create(&t, nullptr, worker, nullptr) == 0, "pthread_create");
  pthread_barrier_wait(&started);

  victim_sys(kill(getpid(), SIGUSR1));
  victim_sys(kill(getpid(), SIGUSR1));
  for (int v = 1; v <= 3; ++v) {
    sigval sv{};
    sv.sival_int = v;
    victim_sys(sigqueue(getpid(), SIGRTMIN, sv));
  }
  victim_sys(syscall(SYS_tgkill, getpid(), gettid(), SIGUSR2));
  siginfo_t si{};
  si.si_signo = SIGRTMIN + 1;
  si.si_code = SI_QUEUE;
  si.si_pid = getpid();
  si.si_uid = getuid();
  si.si_value.sival_int = 7;
  const pid_t thread_tid = worker_tid;
  victim_sys(syscall(SYS_rt_tgsigqueueinfo, getpid(), thread_tid, SIGRTMIN + 1, &si));
  pthread_barrier_wait(&started);

  victim_ready();
  victim_wait_go();

  victim_check(usr1 == 0 && usr2 == 0 && rt_count == 0 && rt1_count == 0, "a signal was delivered before go");
  sigset_t p;
  sigpending(&p);
  for (int sig : {SIGUSR1, SIGUSR2, SIGRTMIN})
    victim_check(sigismember(&p, sig), "signal %d no longer pending in the main thread", sig);
  victim_check(!sigismember(&p, SIGRTMIN + 1), "the second thread's SIGRTMIN+1 is pending in the main thread");

  sigset_t unblock;
  sigemptyset(&unblock);
  for (int sig : {SIGUSR1, SIGUSR2, SIGRTMIN}) sigaddset(&unblock, sig);
  pthread_sigmask(SIG_UNBLOCK, &unblock, nullptr);
  victim_check(usr1 == 1, "SIGUSR1 delivered %d times, expected 1", static_cast<int>(usr1));
  victim_check(usr2 == 1 && usr2_tid == gettid(), "SIGUSR2 delivered %d times (tid %d)", static_cast<int>(usr2),
               usr2_tid.load());
  victim_check(rt_count == 3, "SIGRTMIN delivered %d times, expected 3", static_cast<int>(rt_count));
  for (int i = 0; i < 3; ++i)
    victim_check(rt_values[i] == i + 1, "SIGRTMIN #%d carried %d, expected %d", i, static_cast<int>(rt_values[i]),
                 i + 1);

  pthread_barrier_wait(&go);
  pthread_barrier_wait(&done);
  pthread_join(t, nullptr);
  victim_check(thread_pending_ok, "the second thread's pending set was wrong");
  victim_check(rt1_count == 1 && rt1_tid == thread_tid && rt1_value == 7,
               "SIGRTMIN+1: delivered %d times to tid %d value %d, expected once to %d value 7",
               static_cast<int>(rt1_count), rt1_tid.load(), static_cast<int>(rt1_value), thread_tid);
  victim_pass();
}
