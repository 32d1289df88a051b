// State: a named pipe (FIFO) in the scratch directory, opened by the victim
// once for reading (O_NONBLOCK) and once for writing, with 5000 bytes
// written and unread; and a second FIFO opened O_RDWR (both ends in one fd)
// holding 100 bytes.
// Checks: the fds are still FIFOs at the same path (fstat/readlink); the
// 5000 and the 100 bytes read back exactly, then nothing; a write after
// restore reaches the reader.
#include "victim.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

int main() {
  const std::string path = victim_scratch("fifo.fifo"), path2 = victim_scratch("fifo-rdwr.fifo");
  unlink(path.c_str());
  unlink(path2.c_str());
  victim_sys(mkfifo(path.c_str(), 0600));
  victim_sys(mkfifo(path2.c_str(), 0600));
  int rd = victim_sys(open(path.c_str(), O_RDONLY | O_NONBLOCK));
  int wr = victim_sys(open(path.c_str(), O_WRONLY));
  int rw = victim_sys(open(path2.c_str(), O_RDWR));
  static std::uint8_t buf[5000];
  victim_fill(buf, sizeof buf, 4);
  victim_check(write(wr, buf, sizeof buf) == sizeof buf, "write fifo");
  victim_fill(buf, 100, 5);
  victim_check(write(rw, buf, 100) == 100, "write rdwr fifo");

  victim_ready();
  victim_wait_go();

  for (int fd : {rd, wr, rw}) {
    struct stat st {};
    victim_sys(fstat(fd, &st));
    victim_check(S_ISFIFO(st.st_mode), "fd %d is no longer a FIFO", fd);
  }
  victim_check(victim_fd_path(rd) == path && victim_fd_path(wr) == path, "fifo fds point to %s / %s",
               victim_fd_path(rd).c_str(), victim_fd_path(wr).c_str());
  victim_check(victim_fd_path(rw) == path2, "rdwr fifo fd points to %s", victim_fd_path(rw).c_str());
  victim_check((fcntl(rw, F_GETFL) & O_ACCMODE) == O_RDWR, "rdwr fifo is not O_RDWR");

  std::memset(buf, 0, sizeof buf);
  victim_check(read(rd, buf, sizeof buf) == sizeof buf, "unread fifo bytes lost");
  victim_check(victim_verify(buf, sizeof buf, 4) == sizeof buf, "fifo bytes differ");
  victim_check(read(rd, buf, 1) == -1 && errno == EAGAIN, "more fifo bytes than were written");
  victim_check(read(rw, buf, sizeof buf) == 100, "rdwr fifo: unread bytes lost");
  victim_check(victim_verify(buf, 100, 5) == 100, "rdwr fifo bytes differ");
  victim_check(write(wr, "after", 5) == 5, "write after restore");
  victim_check(read(rd, buf, sizeof buf) == 5 && std::memcmp(buf, "after", 5) == 0, "write after restore not read");
  unlink(path.c_str());
  unlink(path2.c_str());
  victim_pass();
}
