// State: two zombie children not yet reaped: one exited with status 42, one
// killed by SIGKILL; their exit is confirmed with waitid(WNOWAIT), which
// does not reap.
// Checks: both are still zombies (state Z in /proc/PID/stat) with the same
// pids; waitpid() reaps them with "exited 42" and "killed by signal 9";
// then there are no children left (ECHILD).
#include "victim.h"

#include <csignal>
#include <sys/wait.h>
#include <unistd.h>

namespace {

void wait_zombie(pid_t pid) {
  siginfo_t si{};
  victim_sys(waitid(P_PID, static_cast<id_t>(pid), &si, WEXITED | WNOWAIT));
}

}  // namespace

int main() {
  pid_t exited = victim_sys(fork());
  if (exited == 0) _exit(42);
  pid_t killed = victim_sys(fork());
  if (killed == 0) {
    for (;;) pause();
  }
  victim_sys(kill(killed, SIGKILL));
  wait_zombie(exited);
  wait_zombie(killed);
  victim_check(victim_proc_state(exited) == 'Z' && victim_proc_state(killed) == 'Z', "children are not zombies");

  victim_ready();
  victim_wait_go();

  victim_check(victim_proc_state(exited) == 'Z', "child %d is in state %c, not a zombie", exited, victim_proc_state(exited));
  victim_check(victim_proc_state(killed) == 'Z', "child %d is in state %c, not a zombie", killed, victim_proc_state(killed));
  int st = victim_wait_child(exited);
  victim_check(WIFEXITED(st) && WEXITSTATUS(st) == 42, "first zombie: %s, expected exited 42",
               victim_status_str(st).c_str());
  st = victim_wait_child(killed);
  victim_check(WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL, "second zombie: %s, expected killed by signal 9",
               victim_status_str(st).c_str());
  victim_check(waitpid(-1, &st, WNOHANG) == -1 && errno == ECHILD, "children left after reaping both zombies");
  victim_pass();
}
