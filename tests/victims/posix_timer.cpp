// State: POSIX timers: timer A on CLOCK_MONOTONIC signalling the process
// with SIGRTMIN+2 and value 77, armed 1000 s then every 100 s; timer B on
// CLOCK_REALTIME signalling one thread (SIGEV_THREAD_ID) with SIGRTMIN+4,
// armed 2000 s one-shot. The timer ids are saved.
// Checks: timer_gettime() on the saved ids gives the same intervals and a
// remaining time in (0, before]; no signal came early; re-armed for 20 ms,
// A delivers SIGRTMIN+2 with value 77 and si_code SI_TIMER, and B delivers
// SIGRTMIN+4 to its thread.
#include "victim.h"

#include <atomic>
#include <csignal>
#include <ctime>
#include <pthread.h>
#include <unistd.h>

namespace {

std::atomic<int> a_count{0}, a_value{0}, a_code{0}, b_count{0};
std::atomic<pid_t> b_tid{0}, worker_tid{0};
std::atomic<bool> stop{false};

void on_a(int, siginfo_t* si, void*) {
  a_value = si->si_value.sival_int;
  a_code = si->si_code;
  a_count++;
}
void on_b(int, siginfo_t*, void*) {
  b_tid = gettid();
  b_count++;
}

void* worker(void*) {
  sigset_t s;
  sigemptyset(&s);
  sigaddset(&s, SIGRTMIN + 4);
  pthread_sigmask(SIG_UNBLOCK, &s, nullptr);
  sigemptyset(&s);
  sigaddset(&s, SIGRTMIN + 2);
  pthread_sigmask(SIG_BLOCK, &s, nullptr);
  worker_tid = gettid();
  while (!stop) usleep(1000);
  return nullptr;
}

long long ns(const timespec& t) { return static_cast<long long>(t.tv_sec) * 1000000000LL + t.tv_nsec; }

}  // namespace

int main() {
  const int sig_a = SIGRTMIN + 2, sig_b = SIGRTMIN + 4;
  struct sigaction sa {};
  sa.sa_flags = SA_SIGINFO;
  sigemptyset(&sa.sa_mask);
  sa.sa_sigaction = on_a;
  victim_sys(sigaction(sig_a, &sa, nullptr));
  sa.sa_sigaction = on_b;
  victim_sys(sigaction(sig_b, &sa, nullptr));
  // Only the worker takes sig_b; only the main thread takes sig_a.
  sigset_t b_only;
  sigemptyset(&b_only);
  sigaddset(&b_only, sig_b);
  pthread_sigmask(SIG_BLOCK, &b_only, nullptr);
  pthread_t t;
  victim_check(pthread_create(&t, nullptr, worker, nullptr) == 0, "pthread_create");
  while (worker_tid == 0) sched_yield();

  sigevent ev{};
  ev.sigev_notify = SIGEV_SIGNAL;
  ev.sigev_signo = sig_a;
  ev.sigev_value.sival_int = 77;
  timer_t a{}, b{};
  victim_sys(timer_create(CLOCK_MONOTONIC, &ev, &a));
  ev = {};
  ev.sigev_notify = SIGEV_THREAD_ID;
  ev.sigev_signo = sig_b;
  ev._sigev_un._tid = worker_tid;
  victim_sys(timer_create(CLOCK_REALTIME, &ev, &b));
  itimerspec spec_a{{100, 0}, {1000, 0}}, spec_b{{0, 0}, {2000, 0}};
  victim_sys(timer_settime(a, 0, &spec_a, nullptr));
  victim_sys(timer_settime(b, 0, &spec_b, nullptr));
  itimerspec saved_a{}, saved_b{};
  victim_sys(timer_gettime(a, &saved_a));
  victim_sys(timer_gettime(b, &saved_b));

  victim_ready();
  victim_wait_go();

  victim_check(a_count == 0 && b_count == 0, "a timer signal arrived before go");
  struct {
    timer_t id;
    const char* name;
    itimerspec saved;
  } timers[] = {{a, "timer A", saved_a}, {b, "timer B", saved_b}};
  for (const auto& tm : timers) {
    itimerspec now{};
    victim_check(timer_gettime(tm.id, &now) == 0, "%s: timer_gettime on the saved id: %s", tm.name,
                 std::strerror(errno));
    victim_check(ns(now.it_interval) == ns(tm.saved.it_interval), "%s interval %lld ns, was %lld ns", tm.name,
                 ns(now.it_interval), ns(tm.saved.it_interval));
    victim_check(ns(now.it_value) > 0 && ns(now.it_value) <= ns(tm.saved.it_value),
                 "%s has %lld ns left, had %lld ns before", tm.name, ns(now.it_value), ns(tm.saved.it_value));
    victim_check(timer_getoverrun(tm.id) == 0, "%s overrun", tm.name);
  }
  itimerspec shot{{0, 0}, {0, 20 * 1000 * 1000}};
  victim_sys(timer_settime(a, 0, &shot, nullptr));
  victim_sys(timer_settime(b, 0, &shot, nullptr));
  for (int i = 0; i < 500 && (a_count == 0 || b_count == 0); ++i) usleep(10000);
  stop = true;
  pthread_join(t, nullptr);
  victim_check(a_count == 1, "timer A fired %d times", a_count.load());
  victim_check(a_value == 77 && a_code == SI_TIMER, "timer A: value %d code %d", a_value.load(), a_code.load());
  victim_check(b_count == 1 && b_tid == worker_tid, "timer B fired %d times, in tid %d (expected %d)", b_count.load(),
               b_tid.load(), worker_tid.load());
  victim_pass();
}
