// State: more shapes of sessions and process groups whose leader is gone
// (the victim is no child subreaper; R, one of its children, is one):
//   L1 setsid(), forks M1, exits: M1, adopted by init, is in a session
//      whose leader is dead (a double-forked daemon);
//   R  (child subreaper) forks L2: setsid(), forks M2, exits and stays an
//      unreaped zombie: M2, adopted by R, is in the session of a zombie;
//   R  forks L3: setsid(), forks X3: setpgid(0,0), forks Y3; X3 and L3
//      exit and are reaped: Y3, adopted by R, is in a group and a session
//      whose leaders are both dead; then R clears its subreaper flag;
//   A, B: a pipeline: B joins the group of its sibling A, A exits and is
//      reaped: B, still the victim's child, is in a group whose leader is
//      dead;
//   J  forks K: setpgid(0,0), then J joins K's group;
//   P  setpgid(0,0), forks Q, goes back to the victim's group: Q is in the
//      group of a live process that left it.
// Checks: every process's getpid/getppid/getpgid/getsid equal the saved
// values (each checks itself, the victim checks pgid and sid from outside
// while all are kept alive); L2 is still a zombie and R's subreaper flag
// still clear; everyone exits 0 and is reaped (M1 by init: the victim waits
// for the end of its lifeline pipe).
#include "victim.h"

#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>
#include <vector>

namespace {

int report_fd = -1;
int release[2];          // every process waits for EOF on release[0] before exiting
pid_t dying_parent = 0;  // in L1, L2, X3: their own pid, for the child they orphan

// In an orphan: wait until the process that forked us is gone.
void wait_adopted() {
  while (getppid() == dying_parent) usleep(1000);
}

// Reports the ids to the victim, waits for go, checks them again, then
// stays alive (for the victim's checks from outside) until released.
void settle_and_check(const char* name) {
  victim_report_and_recheck_ids(report_fd, name);
  char c;
  while (read(release[0], &c, 1) != 0 && errno == EINTR) {
  }
}

pid_t spawn(void (*body)()) {
  pid_t pid = victim_sys(fork());
  if (pid == 0) {
    close(release[1]);
    body();
    _exit(0);
  }
  return pid;
}

void reap(const char* who, pid_t pid) {
  int st = victim_wait_child(pid);
  victim_check(WIFEXITED(st) && WEXITSTATUS(st) == 0, "%s: child %d %s", who, pid, victim_status_str(st).c_str());
}

// Forks `orphan` with dying_parent set, for a body that then exits.
void fork_orphan(void (*orphan)()) {
  dying_parent = getpid();
  spawn(orphan);
}

void m1() {
  wait_adopted();
  settle_and_check("M1 (adopted by init, session leader dead)");
}
void l1() {
  victim_sys(setsid());
  fork_orphan(m1);
}

void m2() {
  wait_adopted();
  settle_and_check("M2 (session leader a zombie)");
}
void l2() {
  victim_sys(setsid());
  fork_orphan(m2);
}
void y3() {
  wait_adopted();
  settle_and_check("Y3 (group and session leaders dead)");
}
void x3() {
  victim_sys(setpgid(0, 0));
  fork_orphan(y3);
}
void l3() {
  victim_sys(setsid());
  reap("L3", spawn(x3));
}
void r() {
  victim_sys(prctl(PR_SET_CHILD_SUBREAPER, 1));
  pid_t zombie = spawn(l2);
  siginfo_t si{};
  victim_sys(waitid(P_PID, static_cast<id_t>(zombie), &si, WEXITED | WNOWAIT));
  reap("R", spawn(l3));
  // M2 and Y3 report once adopted; the flag may go now.
  victim_sys(prctl(PR_SET_CHILD_SUBREAPER, 0));
  settle_and_check("R");
  int flag = -1;
  victim_sys(prctl(PR_GET_CHILD_SUBREAPER, &flag));
  victim_check(flag == 0, "R: child subreaper flag %d, was 0", flag);
  victim_check(victim_proc_state(zombie) == 'Z', "R: L2 (%d) is in state %c, not a zombie", zombie, victim_proc_state(zombie));
  reap("R", zombie);
  for (int i = 0; i < 2; ++i) {  // M2 and Y3
    int st = 0;
    pid_t p = wait(&st);
    victim_check(p > 0 && WIFEXITED(st) && WEXITSTATUS(st) == 0, "R: adopted child %d %s", p, victim_status_str(st).c_str());
  }
}

void k() {
  victim_sys(setpgid(0, 0));
  settle_and_check("K");
}
void j() {
  pid_t kp = spawn(k);
  victim_sys(setpgid(kp, kp));  // whichever of the two runs first
  victim_sys(setpgid(0, kp));
  settle_and_check("J (in its child's group)");
  reap("J", kp);
}

void q() { settle_and_check("Q (in the group of a process that left it)"); }
pid_t victim_group = 0;
void p() {
  victim_sys(setpgid(0, 0));
  pid_t qp = spawn(q);
  victim_sys(setpgid(0, victim_group));
  settle_and_check("P");
  reap("P", qp);
}

int a_exit[2];  // A exits at EOF
void a() {
  close(a_exit[1]);
  victim_sys(setpgid(0, 0));
  char c;
  while (read(a_exit[0], &c, 1) != 0 && errno == EINTR) {
  }
}
pid_t a_pid = 0;
void b() {
  close(a_exit[1]);
  while (getpgid(0) != a_pid) setpgid(0, a_pid);  // races with the parent's setpgid: fine
  settle_and_check("B (in the group of a reaped sibling)");
}

}  // namespace

int main() {
  int rep[2], lifeline[2];
  victim_sys(pipe(rep));
  victim_sys(pipe(release));
  report_fd = rep[1];
  victim_group = getpgid(0);
  const VictimIds root = victim_ids();

  // Only M1 (and L1, which exits) holds the lifeline's write end.
  victim_sys(pipe(lifeline));
  pid_t l1p = spawn(l1);
  close(lifeline[1]);
  reap("victim", l1p);

  std::vector<pid_t> kids = {spawn(r), spawn(j), spawn(p)};
  victim_sys(pipe(a_exit));
  a_pid = spawn(a);
  close(a_exit[0]);
  victim_sys(setpgid(a_pid, a_pid));
  kids.push_back(spawn(b));
  victim_sys(setpgid(kids.back(), a_pid));  // B is in A's group once this returns
  close(a_exit[1]);
  reap("victim", a_pid);

  // Reports: M1, M2, Y3, R, K, J, Q, P, B (in any order).
  const std::vector<VictimIds> procs = victim_read_ids(rep[0], 9);

  victim_ready();
  victim_wait_go();

  const VictimIds me = victim_ids();
  victim_check(me.pid == root.pid && me.pgid == root.pgid && me.sid == root.sid, "victim's own pid/pgid/sid changed");
  int flag = -1;
  victim_sys(prctl(PR_GET_CHILD_SUBREAPER, &flag));
  victim_check(flag == 0, "victim: child subreaper flag %d, was 0", flag);
  victim_check_ids_from_outside(procs);
  close(release[1]);
  for (pid_t kid : kids) reap("victim", kid);
  char c;
  while (read(lifeline[0], &c, 1) != 0 && errno == EINTR) {
  }
  victim_pass();
}
