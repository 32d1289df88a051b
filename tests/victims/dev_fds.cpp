// State: fds on character devices: /dev/null (O_RDWR), /dev/zero
// (O_RDONLY), /dev/urandom (O_RDONLY|O_CLOEXEC), /dev/full (O_WRONLY).
// Checks: each fd is still that device (st_rdev 1:3, 1:5, 1:9, 1:7, and the
// /proc/self/fd link) with its access mode, and behaves like it: null reads
// EOF and swallows writes, zero reads zeros, urandom reads (not all-zero)
// bytes, full fails writes with ENOSPC.
#include "victim.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

namespace {

struct Dev {
  const char* path;
  int flags;
  unsigned minor_no;
  int fd;
};

}  // namespace

int main() {
  Dev devs[] = {{"/dev/null", O_RDWR, 3, -1},
                {"/dev/zero", O_RDONLY, 5, -1},
                {"/dev/urandom", O_RDONLY | O_CLOEXEC, 9, -1},
                {"/dev/full", O_WRONLY, 7, -1}};
  for (Dev& d : devs) d.fd = victim_sys(open(d.path, d.flags));

  victim_ready();
  victim_wait_go();

  for (const Dev& d : devs) {
    struct stat st {};
    victim_sys(fstat(d.fd, &st));
    victim_check(S_ISCHR(st.st_mode) && major(st.st_rdev) == 1 && minor(st.st_rdev) == d.minor_no,
                 "%s fd is device %u:%u", d.path, major(st.st_rdev), minor(st.st_rdev));
    victim_check(victim_fd_path(d.fd) == d.path, "%s fd links to %s", d.path, victim_fd_path(d.fd).c_str());
    victim_check((fcntl(d.fd, F_GETFL) & O_ACCMODE) == (d.flags & O_ACCMODE), "%s fd access mode changed", d.path);
    victim_check(((fcntl(d.fd, F_GETFD) & FD_CLOEXEC) != 0) == ((d.flags & O_CLOEXEC) != 0), "%s FD_CLOEXEC changed",
                 d.path);
  }
  std::uint8_t buf[4096];
  victim_check(read(devs[0].fd, buf, sizeof buf) == 0, "/dev/null read is not EOF");
  victim_check(write(devs[0].fd, buf, sizeof buf) == sizeof buf, "/dev/null write");
  std::memset(buf, 0xff, sizeof buf);
  victim_check(read(devs[1].fd, buf, sizeof buf) == sizeof buf, "/dev/zero read");
  for (std::uint8_t b : buf) victim_check(b == 0, "/dev/zero gave a nonzero byte");
  std::memset(buf, 0, 64);
  victim_check(read(devs[2].fd, buf, 64) == 64, "/dev/urandom read");
  bool any = false;
  for (int i = 0; i < 64; ++i) any = any || buf[i] != 0;
  victim_check(any, "/dev/urandom gave 64 zero bytes");
  victim_check(write(devs[3].fd, buf, 1) == -1 && errno == ENOSPC, "/dev/full write did not fail with ENOSPC");
  victim_pass();
}
