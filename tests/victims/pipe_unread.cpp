// State: pipes between the victim and a forked child with unread data in
// the kernel buffers: child->parent holds 40000 bytes of pattern (pipe
// resized to 128 KiB with F_SETPIPE_SZ; the parent's read end O_NONBLOCK);
// parent->child holds 3000 bytes. Each side closed the ends it does not use.
// Checks: the parent reads exactly the 40000 bytes, then EAGAIN; the child
// reads exactly its 3000 bytes; then, told to, the child writes 1000 more and
// exits, and the parent reads them and then EOF; pipe size and O_NONBLOCK
// survive.
#include "victim.h"

#include <fcntl.h>
#include <poll.h>
#include <sys/wait.h>
#include <unistd.h>

namespace {

constexpr std::size_t UP = 40000, DOWN = 3000, MORE = 1000;

// Reads exactly n bytes from a blocking fd.
bool read_exact(int fd, std::uint8_t* p, std::size_t n) {
  while (n > 0) {
    ssize_t r = read(fd, p, n);
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) return false;
    p += r;
    n -= static_cast<std::size_t>(r);
  }
  return true;
}

}  // namespace

int main() {
  int up[2], down[2], ack[2];
  victim_sys(pipe(up));
  victim_sys(pipe(down));
  victim_sys(pipe(ack));
  victim_sys(fcntl(up[0], F_SETPIPE_SZ, 128 * 1024));
  const int pipe_size = victim_sys(fcntl(up[0], F_GETPIPE_SZ));
  pid_t pid = victim_sys(fork());
  if (pid == 0) {
    close(up[0]);
    close(down[1]);
    close(ack[0]);
    static std::uint8_t buf[UP];
    victim_fill(buf, UP, 1);
    victim_check(write(up[1], buf, UP) == static_cast<ssize_t>(UP), "child: write");
    victim_sys(write(ack[1], "w", 1));
    victim_wait_go();
    static std::uint8_t got[DOWN];
    victim_check(read_exact(down[0], got, DOWN), "child: short read from the parent's pipe");
    victim_check(victim_verify(got, DOWN, 2) == DOWN, "child: parent's data differs");
    victim_check(read_exact(down[0], got, 1) && got[0] == 'g', "child: no command after the data");
    victim_fill(buf, MORE, 3);
    victim_check(write(up[1], buf, MORE) == static_cast<ssize_t>(MORE), "child: second write");
    _exit(0);
  }
  close(up[1]);
  close(down[0]);
  close(ack[1]);
  static std::uint8_t buf[UP];
  victim_fill(buf, DOWN, 2);
  victim_check(write(down[1], buf, DOWN) == static_cast<ssize_t>(DOWN), "write to child");
  char c;
  victim_check(read(ack[0], &c, 1) == 1, "child did not write");
  victim_sys(fcntl(up[0], F_SETFL, O_NONBLOCK));

  victim_ready();
  victim_wait_go();

  victim_check(fcntl(up[0], F_GETPIPE_SZ) == pipe_size, "pipe size %d, was %d", fcntl(up[0], F_GETPIPE_SZ), pipe_size);
  victim_check(fcntl(up[0], F_GETFL) & O_NONBLOCK, "O_NONBLOCK lost");
  std::size_t total = 0;
  for (;;) {
    ssize_t r = read(up[0], buf + total, UP - total);
    if (r < 0 && errno == EAGAIN) break;
    victim_check(r > 0, "read: %s", r == 0 ? "EOF" : std::strerror(errno));
    total += static_cast<std::size_t>(r);
    if (total == UP) break;
  }
  victim_check(total == UP, "%zu unread bytes came back, expected %zu", total, UP);
  victim_check(victim_verify(buf, UP, 1) == UP, "unread bytes differ at offset %zu", victim_verify(buf, UP, 1));
  victim_check(read(up[0], buf, 1) == -1 && errno == EAGAIN, "more bytes than were unread");
  victim_check(write(down[1], "g", 1) == 1, "command to the child");

  victim_sys(fcntl(up[0], F_SETFL, 0));
  victim_check(read_exact(up[0], buf, MORE), "child's second write did not arrive");
  victim_check(victim_verify(buf, MORE, 3) == MORE, "child's second write differs");
  int st = victim_wait_child(pid);
  victim_check(WIFEXITED(st) && WEXITSTATUS(st) == 0, "child %s", victim_status_str(st).c_str());
  victim_check(read(up[0], buf, 1) == 0, "no EOF after the child exited");
  victim_pass();
}
