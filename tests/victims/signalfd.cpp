// State: a signalfd for {SIGUSR1, SIGUSR2} (nonblocking), both signals
// blocked, SIGUSR1 queued with value 5 and not yet read; SIGRTMIN blocked
// and pending but not in the signalfd's mask.
// Checks: the signalfd reads SIGUSR1 with value 5 and our pid, then nothing
// (EAGAIN); SIGUSR2 sent after go is read next; SIGRTMIN is not readable
// through it (the fd's mask survived) and is still pending.
#include "victim.h"

#include <csignal>
#include <sys/signalfd.h>
#include <unistd.h>

int main() {
  sigset_t mask;
  sigemptyset(&mask);
  sigaddset(&mask, SIGUSR1);
  sigaddset(&mask, SIGUSR2);
  sigset_t block = mask;
  sigaddset(&block, SIGRTMIN);
  victim_sys(sigprocmask(SIG_BLOCK, &block, nullptr));
  int fd = victim_sys(signalfd(-1, &mask, SFD_NONBLOCK | SFD_CLOEXEC));
  sigval v{};
  v.sival_int = 5;
  victim_sys(sigqueue(getpid(), SIGUSR1, v));
  victim_sys(kill(getpid(), SIGRTMIN));

  victim_ready();
  victim_wait_go();

  signalfd_siginfo si{};
  victim_check(read(fd, &si, sizeof si) == sizeof si, "signalfd read: %s", std::strerror(errno));
  victim_check(si.ssi_signo == SIGUSR1, "read signal %u, expected SIGUSR1", si.ssi_signo);
  victim_check(si.ssi_int == 5 && si.ssi_code == SI_QUEUE, "SIGUSR1 value %d code %d", si.ssi_int, si.ssi_code);
  victim_check(static_cast<pid_t>(si.ssi_pid) == getpid(), "SIGUSR1 from pid %u", si.ssi_pid);
  victim_check(read(fd, &si, sizeof si) == -1 && errno == EAGAIN, "more than one signal readable (or not nonblocking)");
  victim_sys(kill(getpid(), SIGUSR2));
  victim_check(read(fd, &si, sizeof si) == sizeof si && si.ssi_signo == SIGUSR2, "SIGUSR2 sent after go not readable");
  sigset_t pend;
  sigpending(&pend);
  victim_check(sigismember(&pend, SIGRTMIN), "SIGRTMIN no longer pending (read through the signalfd?)");
  victim_check(!sigismember(&pend, SIGUSR1), "SIGUSR1 still pending after it was read");
  victim_pass();
}
