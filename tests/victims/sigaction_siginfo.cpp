// State: signal dispositions: SIGUSR1 -> SA_SIGINFO|SA_RESTART handler with
// SIGUSR2 in sa_mask; SIGUSR2 -> plain handler with SA_RESETHAND|SA_NODEFER;
// SIGPIPE ignored; SIGRTMIN+3 -> SA_SIGINFO handler; SIGTERM explicitly
// default.
// Checks: sigaction() reports the same handler, flags and mask for each;
// sigqueue(SIGUSR1, 1234) runs the handler with si_value 1234, si_code
// SI_QUEUE, our pid, and SIGUSR2 blocked inside it; SIGUSR2 runs once and
// its disposition resets to default; a write to a pipe without readers fails
// with EPIPE instead of killing us; SIGRTMIN+3 gets its value.
#include "victim.h"

#include <csignal>
#include <unistd.h>

namespace {

volatile sig_atomic_t usr1_runs = 0, usr1_value = 0, usr1_code = 0, usr1_pid = 0, usr1_usr2_blocked = 0;
volatile sig_atomic_t usr2_runs = 0, rt_runs = 0, rt_value = 0;

void on_usr1(int, siginfo_t* si, void*) {
  usr1_runs = usr1_runs + 1;
  usr1_value = si->si_value.sival_int;
  usr1_code = si->si_code;
  usr1_pid = si->si_pid;
  sigset_t cur;
  pthread_sigmask(SIG_BLOCK, nullptr, &cur);
  usr1_usr2_blocked = sigismember(&cur, SIGUSR2);
}
void on_usr2(int) { usr2_runs = usr2_runs + 1; }
void on_rt(int, siginfo_t* si, void*) {
  rt_runs = rt_runs + 1;
  rt_value = si->si_value.sival_int;
}

struct Expect {
  int sig;
  struct sigaction act;
};

bool same_mask(const sigset_t& a, const sigset_t& b) {
  for (int s = 1; s < NSIG; ++s)
    if (sigismember(&a, s) != sigismember(&b, s)) return false;
  return true;
}

}  // namespace

int main() {
  const int rt = SIGRTMIN + 3;
  struct sigaction a {};
  a.sa_sigaction = on_usr1;
  a.sa_flags = SA_SIGINFO | SA_RESTART;
  sigemptyset(&a.sa_mask);
  sigaddset(&a.sa_mask, SIGUSR2);
  victim_sys(sigaction(SIGUSR1, &a, nullptr));
  a = {};
  a.sa_handler = on_usr2;
  a.sa_flags = SA_RESETHAND | SA_NODEFER;
  sigemptyset(&a.sa_mask);
  victim_sys(sigaction(SIGUSR2, &a, nullptr));
  a = {};
  a.sa_handler = SIG_IGN;
  sigemptyset(&a.sa_mask);
  victim_sys(sigaction(SIGPIPE, &a, nullptr));
  a = {};
  a.sa_sigaction = on_rt;
  a.sa_flags = SA_SIGINFO;
  sigfillset(&a.sa_mask);
  sigdelset(&a.sa_mask, SIGKILL);
  sigdelset(&a.sa_mask, SIGSTOP);
  victim_sys(sigaction(rt, &a, nullptr));
  a = {};
  a.sa_handler = SIG_DFL;
  sigemptyset(&a.sa_mask);
  victim_sys(sigaction(SIGTERM, &a, nullptr));

  // What the kernel reports now (with glibc's SA_RESTORER and restorer).
  Expect saved[] = {{SIGUSR1, {}}, {SIGUSR2, {}}, {SIGPIPE, {}}, {rt, {}}, {SIGTERM, {}}};
  for (Expect& e : saved) victim_sys(sigaction(e.sig, nullptr, &e.act));
  int pipefd[2];
  victim_sys(pipe(pipefd));
  close(pipefd[0]);

  victim_ready();
  victim_wait_go();

  for (const Expect& e : saved) {
    struct sigaction now {};
    victim_sys(sigaction(e.sig, nullptr, &now));
    victim_check(now.sa_handler == e.act.sa_handler, "signal %d: handler %p, was %p", e.sig,
                 reinterpret_cast<void*>(now.sa_handler), reinterpret_cast<void*>(e.act.sa_handler));
    victim_check(now.sa_flags == e.act.sa_flags, "signal %d: flags %#x, were %#x", e.sig, now.sa_flags, e.act.sa_flags);
    victim_check(now.sa_restorer == e.act.sa_restorer, "signal %d: sa_restorer changed", e.sig);
    victim_check(same_mask(now.sa_mask, e.act.sa_mask), "signal %d: sa_mask changed", e.sig);
  }
  victim_check(usr1_runs == 0 && usr2_runs == 0 && rt_runs == 0, "a handler ran before go");

  sigval v{};
  v.sival_int = 1234;
  victim_sys(sigqueue(getpid(), SIGUSR1, v));
  victim_check(usr1_runs == 1, "SIGUSR1 handler ran %d times", static_cast<int>(usr1_runs));
  victim_check(usr1_value == 1234, "SIGUSR1 si_value %d", static_cast<int>(usr1_value));
  victim_check(usr1_code == SI_QUEUE, "SIGUSR1 si_code %d", static_cast<int>(usr1_code));
  victim_check(usr1_pid == getpid(), "SIGUSR1 si_pid %d", static_cast<int>(usr1_pid));
  victim_check(usr1_usr2_blocked == 1, "sa_mask (SIGUSR2) not applied inside the SIGUSR1 handler");

  victim_sys(raise(SIGUSR2));
  victim_check(usr2_runs == 1, "SIGUSR2 handler ran %d times", static_cast<int>(usr2_runs));
  struct sigaction after {};
  victim_sys(sigaction(SIGUSR2, nullptr, &after));
  victim_check(after.sa_handler == SIG_DFL, "SA_RESETHAND did not reset SIGUSR2");

  victim_check(write(pipefd[1], "x", 1) == -1 && errno == EPIPE, "write to a pipe without readers: not EPIPE");

  v.sival_int = 99;
  victim_sys(sigqueue(getpid(), rt, v));
  victim_check(rt_runs == 1 && rt_value == 99, "SIGRTMIN+3 handler runs %d value %d", static_cast<int>(rt_runs),
               static_cast<int>(rt_value));
  victim_pass();
}
