// State: a 4 MiB MAP_SHARED|MAP_ANONYMOUS region shared by the victim and a
// forked child. The parent wrote the first MiB before the fork, the child
// the second MiB after it; the child then blocks reading a command pipe.
// Checks (after go): both see both MiBs; the parent writes the third MiB and
// tells the child, which checks it and writes the fourth MiB, which the
// parent then sees. So the region is still one shared object, not two
// private copies, and the child's pipe and exit status work.
#include "victim.h"

#include <sys/wait.h>
#include <unistd.h>

namespace {

constexpr std::size_t MiB = 1u << 20;

void child(std::uint8_t* r, int cmd_rd, int ack_wr) {
  victim_fill(r + MiB, MiB, 2);
  char c = 'r';
  victim_sys(write(ack_wr, &c, 1));
  victim_check(read(cmd_rd, &c, 1) == 1 && c == 'g', "child: no command");
  victim_check(victim_verify(r, MiB, 1) == MiB, "child: first MiB (parent's) differs");
  victim_check(victim_verify(r + 2 * MiB, MiB, 3) == MiB, "child: third MiB written by parent after restore not seen");
  victim_fill(r + 3 * MiB, MiB, 4);
  c = 'd';
  victim_sys(write(ack_wr, &c, 1));
  _exit(0);
}

}  // namespace

int main() {
  auto* r = static_cast<std::uint8_t*>(
      victim_sys(mmap(nullptr, 4 * MiB, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0)));
  victim_fill(r, MiB, 1);
  int cmd[2], ack[2];
  victim_sys(pipe(cmd));
  victim_sys(pipe(ack));
  pid_t pid = victim_sys(fork());
  if (pid == 0) {
    close(cmd[1]);
    close(ack[0]);
    child(r, cmd[0], ack[1]);
  }
  close(cmd[0]);
  close(ack[1]);
  char c = 0;
  victim_check(read(ack[0], &c, 1) == 1 && c == 'r', "child did not start");

  victim_ready();
  victim_wait_go();

  std::size_t bad = victim_verify(r, MiB, 1);
  victim_check(bad == MiB, "first MiB differs at offset %zu", bad);
  bad = victim_verify(r + MiB, MiB, 2);
  victim_check(bad == MiB, "second MiB (written by the child) differs at offset %zu", bad);
  victim_fill(r + 2 * MiB, MiB, 3);
  c = 'g';
  victim_sys(write(cmd[1], &c, 1));
  victim_check(read(ack[0], &c, 1) == 1 && c == 'd', "child did not answer");
  bad = victim_verify(r + 3 * MiB, MiB, 4);
  victim_check(bad == MiB, "fourth MiB written by the child after restore differs at offset %zu: not shared", bad);
  int st = victim_wait_child(pid);
  victim_check(WIFEXITED(st) && WEXITSTATUS(st) == 0, "child %s", victim_status_str(st).c_str());
  victim_pass();
}
