// State: Unix socket pairs between the victim and a forked child with data
// queued in both directions: SOCK_STREAM (3000 bytes to the child, 2000 to
// the parent, unread) and SOCK_DGRAM / SOCK_SEQPACKET with three messages of
// 10, 200 and 3000 bytes queued for the child (boundaries matter).
// Checks: each side reads exactly what was queued for it; datagrams and
// packets come back one message per read with their original lengths and
// order; after that the pairs still work both ways and the stream shows EOF
// when the child exits.
#include "victim.h"

#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

namespace {

constexpr std::size_t TO_CHILD = 3000, TO_PARENT = 2000;
constexpr std::size_t MSG[3] = {10, 200, 3000};

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

void check_messages(int fd, const char* kind, std::uint64_t seed) {
  static std::uint8_t buf[8192];
  for (int i = 0; i < 3; ++i) {
    ssize_t r = recv(fd, buf, sizeof buf, MSG_DONTWAIT);
    victim_check(r == static_cast<ssize_t>(MSG[i]), "child: %s message %d is %zd bytes, expected %zu", kind, i, r,
                 MSG[i]);
    victim_check(victim_verify(buf, MSG[i], seed + static_cast<std::uint64_t>(i)) == MSG[i],
                 "child: %s message %d differs", kind, i);
  }
  victim_check(recv(fd, buf, sizeof buf, MSG_DONTWAIT) == -1 && errno == EAGAIN, "child: extra %s message", kind);
}

}  // namespace

int main() {
  int st_pair[2], dg_pair[2], sp_pair[2];
  victim_sys(socketpair(AF_UNIX, SOCK_STREAM, 0, st_pair));
  victim_sys(socketpair(AF_UNIX, SOCK_DGRAM, 0, dg_pair));
  victim_sys(socketpair(AF_UNIX, SOCK_SEQPACKET, 0, sp_pair));
  static std::uint8_t buf[8192];
  for (int i = 0; i < 3; ++i) {
    victim_fill(buf, MSG[i], 10 + static_cast<std::uint64_t>(i));
    victim_check(send(dg_pair[0], buf, MSG[i], 0) == static_cast<ssize_t>(MSG[i]), "send dgram");
    victim_fill(buf, MSG[i], 20 + static_cast<std::uint64_t>(i));
    victim_check(send(sp_pair[0], buf, MSG[i], 0) == static_cast<ssize_t>(MSG[i]), "send seqpacket");
  }
  victim_fill(buf, TO_CHILD, 1);
  victim_check(write(st_pair[0], buf, TO_CHILD) == static_cast<ssize_t>(TO_CHILD), "write stream");

  pid_t pid = victim_sys(fork());
  if (pid == 0) {
    close(st_pair[0]);
    close(dg_pair[0]);
    close(sp_pair[0]);
    victim_fill(buf, TO_PARENT, 2);
    victim_check(write(st_pair[1], buf, TO_PARENT) == static_cast<ssize_t>(TO_PARENT), "child: write stream");
    victim_wait_go();
    static std::uint8_t got[TO_CHILD];
    victim_check(read_exact(st_pair[1], got, TO_CHILD), "child: stream data lost");
    victim_check(victim_verify(got, TO_CHILD, 1) == TO_CHILD, "child: stream data differs");
    check_messages(dg_pair[1], "datagram", 10);
    check_messages(sp_pair[1], "seqpacket", 20);
    victim_check(write(st_pair[1], "bye", 3) == 3, "child: write after restore");
    victim_check(send(sp_pair[1], "pkt", 3, 0) == 3, "child: seqpacket send after restore");
    _exit(0);
  }
  close(st_pair[1]);
  close(dg_pair[1]);
  close(sp_pair[1]);
  // Wait until the child's stream bytes are queued for us.
  for (int i = 0; i < 1000; ++i) {
    if (recv(st_pair[0], buf, sizeof buf, MSG_PEEK | MSG_DONTWAIT) == static_cast<ssize_t>(TO_PARENT)) break;
    usleep(10000);
  }

  victim_ready();
  victim_wait_go();

  victim_check(read_exact(st_pair[0], buf, TO_PARENT), "stream data from the child lost");
  victim_check(victim_verify(buf, TO_PARENT, 2) == TO_PARENT, "stream data from the child differs");
  victim_check(read_exact(st_pair[0], buf, 3) && std::memcmp(buf, "bye", 3) == 0, "child's write after restore lost");
  victim_check(recv(sp_pair[0], buf, sizeof buf, 0) == 3 && std::memcmp(buf, "pkt", 3) == 0,
               "child's seqpacket after restore lost");
  int st = victim_wait_child(pid);
  victim_check(WIFEXITED(st) && WEXITSTATUS(st) == 0, "child %s", victim_status_str(st).c_str());
  victim_check(read(st_pair[0], buf, 1) == 0, "no EOF on the stream after the child exited");
  victim_pass();
}
