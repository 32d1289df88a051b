// State: two eventfds with nonzero counters: a plain one holding 12345 and a
// nonblocking EFD_SEMAPHORE one holding 3.
// Checks: the plain one reads 12345 in one read and is then empty; the
// semaphore one reads 1 three times, then EAGAIN; flags survive; writes
// after restore add to the counters.
#include "victim.h"

#include <fcntl.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <unistd.h>

int main() {
  int plain = victim_sys(eventfd(0, EFD_CLOEXEC));
  int sem = victim_sys(eventfd(0, EFD_SEMAPHORE | EFD_NONBLOCK));
  std::uint64_t v = 12345;
  victim_check(write(plain, &v, sizeof v) == sizeof v, "write");
  v = 3;
  victim_check(write(sem, &v, sizeof v) == sizeof v, "write");

  victim_ready();
  victim_wait_go();

  victim_check(fcntl(plain, F_GETFD) & FD_CLOEXEC, "plain eventfd lost FD_CLOEXEC");
  victim_check(fcntl(sem, F_GETFL) & O_NONBLOCK, "semaphore eventfd lost O_NONBLOCK");
  pollfd p{plain, POLLIN, 0};
  victim_check(poll(&p, 1, 0) == 1, "plain eventfd not readable");
  victim_check(read(plain, &v, sizeof v) == sizeof v && v == 12345, "plain eventfd counter %lu, expected 12345",
               static_cast<unsigned long>(v));
  victim_check(poll(&p, 1, 0) == 0, "plain eventfd still readable after reading it");
  for (int i = 0; i < 3; ++i)
    victim_check(read(sem, &v, sizeof v) == sizeof v && v == 1, "semaphore read %d: %lu", i,
                 static_cast<unsigned long>(v));
  victim_check(read(sem, &v, sizeof v) == -1 && errno == EAGAIN, "semaphore eventfd counter was above 3");
  v = 7;
  victim_check(write(plain, &v, sizeof v) == sizeof v, "write after restore");
  victim_check(write(plain, &v, sizeof v) == sizeof v, "write after restore");
  victim_check(read(plain, &v, sizeof v) == sizeof v && v == 14, "counter after two writes of 7: %lu",
               static_cast<unsigned long>(v));
  victim_pass();
}
