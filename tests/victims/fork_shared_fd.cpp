// State: an open file description shared by the victim and a forked child
// (inherited fd, offset 1000), plus a description the child opened itself
// after the fork (offset 2000).
// Checks: after go the child reads 500 bytes through the shared fd and sets
// O_NONBLOCK on it; the parent then sees offset 1500 and O_NONBLOCK; the
// parent seeks to 3000 and the child sees it; the child's own open kept
// offset 2000 throughout.
#include "victim.h"

#include <fcntl.h>
#include <sys/wait.h>
#include <unistd.h>

int main() {
  const std::string path = victim_scratch("fork_shared_fd.dat");
  int fd = victim_sys(open(path.c_str(), O_RDWR | O_CREAT | O_TRUNC, 0644));
  static std::uint8_t buf[8000];
  victim_fill(buf, sizeof buf, 8);
  victim_check(write(fd, buf, sizeof buf) == sizeof buf, "write");
  victim_sys(lseek(fd, 1000, SEEK_SET));
  int cmd[2], ack[2];
  victim_sys(pipe(cmd));
  victim_sys(pipe(ack));
  pid_t pid = victim_sys(fork());
  if (pid == 0) {
    int own = victim_sys(open(path.c_str(), O_RDONLY));
    victim_sys(lseek(own, 2000, SEEK_SET));
    victim_sys(write(ack[1], "s", 1));
    victim_wait_go();
    victim_check(lseek(fd, 0, SEEK_CUR) == 1000, "child: shared offset %lld, expected 1000",
                 static_cast<long long>(lseek(fd, 0, SEEK_CUR)));
    std::uint8_t got[500];
    victim_check(read(fd, got, sizeof got) == sizeof got && got[0] == victim_pattern_byte(8, 1000),
                 "child: read at 1000");
    victim_sys(fcntl(fd, F_SETFL, O_NONBLOCK));
    victim_sys(write(ack[1], "r", 1));
    char c;
    victim_check(read(cmd[0], &c, 1) == 1, "child: no command");
    victim_check(lseek(fd, 0, SEEK_CUR) == 3000, "child: parent's seek to 3000 not seen (%lld)",
                 static_cast<long long>(lseek(fd, 0, SEEK_CUR)));
    victim_check(lseek(own, 0, SEEK_CUR) == 2000, "child: own open's offset %lld, expected 2000",
                 static_cast<long long>(lseek(own, 0, SEEK_CUR)));
    _exit(0);
  }
  char c;
  victim_check(read(ack[0], &c, 1) == 1, "child did not start");

  victim_ready();
  victim_wait_go();

  victim_check(read(ack[0], &c, 1) == 1 && c == 'r', "child did not read");
  victim_check(lseek(fd, 0, SEEK_CUR) == 1500, "offset %lld after the child read 500 bytes at 1000: not shared",
               static_cast<long long>(lseek(fd, 0, SEEK_CUR)));
  victim_check(fcntl(fd, F_GETFL) & O_NONBLOCK, "O_NONBLOCK set by the child not seen: not shared");
  victim_sys(lseek(fd, 3000, SEEK_SET));
  victim_sys(write(cmd[1], "g", 1));
  int st = victim_wait_child(pid);
  victim_check(WIFEXITED(st) && WEXITSTATUS(st) == 0, "child %s", victim_status_str(st).c_str());
  unlink(path.c_str());
  victim_pass();
}
