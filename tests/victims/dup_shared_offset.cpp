// State: one open file description reached through three fds (fd1, fd2 =
// dup(fd1), fd3 = F_DUPFD_CLOEXEC(fd1) >= 50) at offset 100, and a second,
// separate open of the same file at offset 5000.
// Checks: fd1-3 still share one description: same offset, a read through
// fd2 moves fd1's and fd3's offset, O_NONBLOCK set through fd1 shows on fd3
// (and kcmp() says they are the same file, where available), while
// FD_CLOEXEC stays per fd (only fd3); the separate open keeps its own
// offset and flags.
#include "victim.h"

#include <fcntl.h>
#include <linux/kcmp.h>
#include <sys/syscall.h>
#include <unistd.h>

namespace {
off_t pos(int fd) { return lseek(fd, 0, SEEK_CUR); }
}  // namespace

int main() {
  const std::string path = victim_scratch("dup_shared_offset.dat");
  int fd1 = victim_sys(open(path.c_str(), O_RDWR | O_CREAT | O_TRUNC, 0644));
  static std::uint8_t buf[10000];
  victim_fill(buf, sizeof buf, 7);
  victim_check(write(fd1, buf, sizeof buf) == sizeof buf, "write");
  victim_sys(lseek(fd1, 100, SEEK_SET));
  int fd2 = victim_sys(dup(fd1));
  int fd3 = victim_sys(fcntl(fd1, F_DUPFD_CLOEXEC, 50));
  int other = victim_sys(open(path.c_str(), O_RDWR));
  victim_sys(lseek(other, 5000, SEEK_SET));

  victim_ready();
  victim_wait_go();

  for (int fd : {fd1, fd2, fd3})
    victim_check(pos(fd) == 100, "fd %d: offset %lld, expected 100", fd, static_cast<long long>(pos(fd)));
  victim_check(pos(other) == 5000, "separate open: offset %lld", static_cast<long long>(pos(other)));
  std::uint8_t got[10];
  victim_check(read(fd2, got, 10) == 10, "read");
  victim_check(got[0] == victim_pattern_byte(7, 100), "read at 100 returned other bytes");
  victim_check(pos(fd1) == 110 && pos(fd3) == 110, "read through fd2 did not move fd1/fd3 (%lld/%lld)",
               static_cast<long long>(pos(fd1)), static_cast<long long>(pos(fd3)));
  victim_check(pos(other) == 5000, "read through fd2 moved the separate open");
  victim_sys(fcntl(fd1, F_SETFL, O_NONBLOCK));
  victim_check(fcntl(fd3, F_GETFL) & O_NONBLOCK, "status flag set through fd1 not seen on fd3");
  victim_check(!(fcntl(other, F_GETFL) & O_NONBLOCK), "status flag set through fd1 seen on the separate open");
  victim_check(!(fcntl(fd1, F_GETFD) & FD_CLOEXEC) && !(fcntl(fd2, F_GETFD) & FD_CLOEXEC),
               "FD_CLOEXEC appeared on fd1/fd2");
  victim_check(fcntl(fd3, F_GETFD) & FD_CLOEXEC, "FD_CLOEXEC lost on fd3");
  long same = syscall(SYS_kcmp, getpid(), getpid(), KCMP_FILE, fd1, fd3);
  if (same != -1 || errno != ENOSYS) {
    victim_check(same == 0, "kcmp: fd1 and fd3 are different files (%ld)", same);
    victim_check(syscall(SYS_kcmp, getpid(), getpid(), KCMP_FILE, fd1, other) != 0, "kcmp: separate open is fd1's file");
  }
  unlink(path.c_str());
  victim_pass();
}
