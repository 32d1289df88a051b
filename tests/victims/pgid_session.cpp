// State: process groups and sessions in a tree (the victim is a child
// subreaper so orphans stay its children):
//   S  setsid(): a new session; S1 (child of S) stays in S's group,
//      S2 (child of S) makes its own group inside session S;
//   G  setpgid(0,0): a new group; H (another child of the victim) joins G;
//   X  setpgid(0,0), forks Y in its group, exits: Y is reparented to the
//      victim, in a group whose leader is dead;
//   L  setsid(), forks M in its session, exits: M is in a session whose
//      leader is dead.
// Checks: every process's getpid/getppid/getpgid/getsid equal the saved
// values (each checks itself, the victim also checks them from outside with
// getpgid()/getsid() while all are kept alive); everyone exits 0 and is
// reaped.
#include "victim.h"

#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

namespace {

int report_fd = -1;
int release[2];  // every process waits for EOF on release[0] before exiting
pid_t dying_leader = 0;  // in X and L: their own pid, for Y and M

// In Y and M: wait until the leader that forked us is gone and we have been
// reparented, so the saved ppid is the final one.
void wait_orphaned() {
  while (getppid() == dying_leader) usleep(1000);
}

// Stay alive (so the victim can look at us from outside) until it is done.
void wait_release() {
  char c;
  while (read(release[0], &c, 1) != 0 && errno == EINTR) {
  }
}

// Reports the ids to the victim, waits for go, checks, exits.
[[noreturn]] void settle_and_check(const char* name) {
  victim_report_and_recheck_ids(report_fd, name);
  wait_release();
  _exit(0);
}

pid_t spawn(void (*body)()) {
  pid_t pid = victim_sys(fork());
  if (pid == 0) {
    close(release[1]);
    body();
  }
  return pid;
}

void s1() { settle_and_check("S1"); }
void s2() {
  victim_sys(setpgid(0, 0));
  settle_and_check("S2");
}
void s() {
  victim_sys(setsid());
  pid_t a = spawn(s1), b = spawn(s2);
  victim_report_and_recheck_ids(report_fd, "S");
  wait_release();
  for (pid_t p : {a, b}) {
    int st = victim_wait_child(p);
    victim_check(WIFEXITED(st) && WEXITSTATUS(st) == 0, "S: child %d %s", p, victim_status_str(st).c_str());
  }
  _exit(0);
}
void g() {
  victim_sys(setpgid(0, 0));
  settle_and_check("G");
}
void y() {
  wait_orphaned();
  settle_and_check("Y (orphan in a group whose leader died)");
}
void x() {
  victim_sys(setpgid(0, 0));
  dying_leader = getpid();
  spawn(y);
  _exit(0);
}
void m() {
  wait_orphaned();
  settle_and_check("M (in a session whose leader died)");
}
void l() {
  victim_sys(setsid());
  dying_leader = getpid();
  spawn(m);
  _exit(0);
}

}  // namespace

int main() {
  victim_sys(prctl(PR_SET_CHILD_SUBREAPER, 1));
  int rep[2];
  victim_sys(pipe(rep));
  victim_sys(pipe(release));
  report_fd = rep[1];
  const VictimIds root = victim_ids();

  spawn(s);
  pid_t gp = spawn(g);
  setpgid(gp, gp);  // as a shell does: whichever of parent and child runs first
  pid_t hp = victim_sys(fork());
  if (hp == 0) {
    close(release[1]);
    while (getpgid(0) != gp) setpgid(0, gp);  // race with the parent's setpgid is fine
    settle_and_check("H");
  }
  setpgid(hp, gp);
  pid_t xp = spawn(x);
  pid_t lp = spawn(l);
  // X and L exit at once; reap them so their children are reparented here.
  for (pid_t p : {xp, lp}) {
    int st = victim_wait_child(p);
    victim_check(WIFEXITED(st) && WEXITSTATUS(st) == 0, "leader %d %s", p, victim_status_str(st).c_str());
  }
  // Reports: S, S1, S2, G, H, Y, M.
  const std::vector<VictimIds> procs = victim_read_ids(rep[0], 7);

  victim_ready();
  victim_wait_go();

  const VictimIds me = victim_ids();
  victim_check(me.pid == root.pid && me.pgid == root.pgid && me.sid == root.sid, "victim's own pid/pgid/sid changed");
  victim_check_ids_from_outside(procs);
  close(release[1]);
  // Reap everyone: S, G, H and the reparented Y and M (S reaps S1, S2).
  for (int i = 0; i < 5; ++i) {
    int st = 0;
    pid_t p = wait(&st);
    victim_check(p > 0, "wait: %s (%d of 5 reaped)", std::strerror(errno), i);
    victim_check(WIFEXITED(st) && WEXITSTATUS(st) == 0, "process %d %s", p, victim_status_str(st).c_str());
  }
  victim_pass();
}
