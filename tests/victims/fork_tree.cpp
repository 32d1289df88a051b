// State: a process tree: the victim, 3 children, 2 grandchildren under each
// child (10 processes). Every process saved its pid and parent's pid and
// then waits for go itself.
// Checks: each process's getpid()/getppid() equal the saved values; the
// victim's /proc children list is the same 3 pids; each child reaps its two
// grandchildren with their distinct exit codes (20+k) and exits with 10+i;
// the victim reaps the 3 children with their codes.
#include "victim.h"

#include <algorithm>
#include <sstream>
#include <sys/wait.h>
#include <unistd.h>
#include <vector>

namespace {

constexpr int CHILDREN = 3, GRANDCHILDREN = 2;

void note_started(int fd) {
  char c = 's';
  victim_sys(write(fd, &c, 1));
}

[[noreturn]] void grandchild(int k, int started) {
  const pid_t me = getpid(), parent = getppid();
  note_started(started);
  victim_wait_go();
  victim_check(getpid() == me, "grandchild %d: pid %d, was %d", k, getpid(), me);
  victim_check(getppid() == parent, "grandchild %d: ppid %d, was %d", k, getppid(), parent);
  _exit(20 + k);
}

[[noreturn]] void child(int i, int started) {
  const pid_t me = getpid(), parent = getppid();
  pid_t kids[GRANDCHILDREN];
  for (int k = 0; k < GRANDCHILDREN; ++k) {
    kids[k] = victim_sys(fork());
    if (kids[k] == 0) grandchild(k, started);
  }
  note_started(started);
  victim_wait_go();
  victim_check(getpid() == me, "child %d: pid %d, was %d", i, getpid(), me);
  victim_check(getppid() == parent, "child %d: ppid %d, was %d", i, getppid(), parent);
  for (int k = 0; k < GRANDCHILDREN; ++k) {
    int st = victim_wait_child(kids[k]);
    victim_check(WIFEXITED(st) && WEXITSTATUS(st) == 20 + k, "child %d: grandchild %d (pid %d) %s", i, k, kids[k],
                 victim_status_str(st).c_str());
  }
  _exit(10 + i);
}

std::vector<pid_t> proc_children() {
  std::istringstream in(victim_read_file("/proc/self/task/" + std::to_string(getpid()) + "/children"));
  std::vector<pid_t> v;
  for (pid_t p; in >> p;) v.push_back(p);
  std::sort(v.begin(), v.end());
  return v;
}

}  // namespace

int main() {
  int started[2];
  victim_sys(pipe(started));
  std::vector<pid_t> kids;
  for (int i = 0; i < CHILDREN; ++i) {
    pid_t pid = victim_sys(fork());
    if (pid == 0) {
      close(started[0]);
      child(i, started[1]);
    }
    kids.push_back(pid);
  }
  close(started[1]);
  for (int n = 0; n < CHILDREN * (GRANDCHILDREN + 1); ++n) {
    char c;
    victim_check(read(started[0], &c, 1) == 1, "only %d of %d processes started", n, CHILDREN * (GRANDCHILDREN + 1));
  }
  std::vector<pid_t> sorted = kids;
  std::sort(sorted.begin(), sorted.end());
  victim_check(proc_children() == sorted, "/proc children list differs from the forked pids");

  victim_ready();
  victim_wait_go();

  victim_check(proc_children() == sorted, "/proc children list changed");
  for (int i = 0; i < CHILDREN; ++i) {
    int st = victim_wait_child(kids[i]);
    victim_check(WIFEXITED(st) && WEXITSTATUS(st) == 10 + i, "child %d (pid %d) %s", i, kids[i],
                 victim_status_str(st).c_str());
  }
  victim_pass();
}
