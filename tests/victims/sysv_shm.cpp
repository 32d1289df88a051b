// State: a private System V shared memory segment (1 MiB) attached twice in
// the victim and once in a forked child, written by both.
// Checks: contents; the three attachments are still one segment (a write
// after restore through one shows in the other and in the child);
// shmctl(IPC_STAT) still finds the segment by its id with 3 attaches and
// its mode. An engine that does not restore SysV IPC must refuse this
// victim at checkpoint time.
#include "victim.h"

#include <sys/ipc.h>
#include <sys/shm.h>
#include <sys/wait.h>
#include <unistd.h>

namespace {
constexpr std::size_t N = 1u << 20;
}

int main() {
  int id = victim_sys(shmget(IPC_PRIVATE, N, IPC_CREAT | 0600));
  auto* a = static_cast<std::uint8_t*>(victim_sys(shmat(id, nullptr, 0)));
  auto* b = static_cast<std::uint8_t*>(victim_sys(shmat(id, nullptr, 0)));
  victim_fill(a, N / 2, 1);
  int cmd[2], ack[2];
  victim_sys(pipe(cmd));
  victim_sys(pipe(ack));
  pid_t pid = victim_sys(fork());
  if (pid == 0) {
    shmdt(b);
    victim_fill(a + N / 2, N / 2, 2);
    char c = 'r';
    victim_sys(write(ack[1], &c, 1));
    victim_check(read(cmd[0], &c, 1) == 1, "child: no command");
    victim_check(a[7] == 0x5c, "child: does not see the parent's write after restore");
    _exit(0);
  }
  char c = 0;
  victim_check(read(ack[0], &c, 1) == 1, "child did not start");

  victim_ready();
  victim_wait_go();

  victim_check(victim_verify(a, N / 2, 1) == N / 2, "first half differs");
  victim_check(victim_verify(a + N / 2, N / 2, 2) == N / 2, "second half (child's) differs");
  victim_check(std::memcmp(a, b, N) == 0, "the two attachments differ");
  struct shmid_ds ds {};
  victim_sys(shmctl(id, IPC_STAT, &ds));
  victim_check(ds.shm_nattch == 3, "shm_nattch %lu, expected 3", static_cast<unsigned long>(ds.shm_nattch));
  victim_check(ds.shm_segsz == N, "shm_segsz %zu", static_cast<std::size_t>(ds.shm_segsz));
  victim_check((ds.shm_perm.mode & 0777) == 0600, "mode %o", ds.shm_perm.mode & 0777);
  b[7] = 0x5c;
  victim_check(a[7] == 0x5c, "write through one attachment not seen in the other");
  victim_sys(write(cmd[1], &c, 1));
  int st = victim_wait_child(pid);
  victim_check(WIFEXITED(st) && WEXITSTATUS(st) == 0, "child %s", victim_status_str(st).c_str());
  shmdt(a);
  shmdt(b);
  shmctl(id, IPC_RMID, nullptr);
  victim_pass();
}
