// State: three timerfds: "armed" on CLOCK_MONOTONIC, 1000 s then every
// 500 s (nonblocking, FD_CLOEXEC); "overdue" on CLOCK_REALTIME with an
// absolute start 1500 s in the past and a 1000 s period, so 2 expirations
// are pending unread and the next is ~500 s ahead; "oneshot" on
// CLOCK_MONOTONIC that expired once (1 ns, no period), unread.
// Checks: "armed" reports the same interval, a remaining time in
// (0, before] and nothing to read; "overdue" reads exactly 2 expirations
// and is still armed with its period; "oneshot" reads exactly 1 and is
// disarmed; "armed", re-armed for 20 ms, polls readable with 1 expiration.
#include "victim.h"

#include <fcntl.h>
#include <poll.h>
#include <sys/timerfd.h>
#include <unistd.h>

namespace {

long long ns(const timespec& t) { return static_cast<long long>(t.tv_sec) * 1000000000LL + t.tv_nsec; }

std::uint64_t read_count(int fd) {
  std::uint64_t n = 0;
  ssize_t r = read(fd, &n, sizeof n);
  if (r < 0 && errno == EAGAIN) return 0;
  victim_check(r == sizeof n, "timerfd read: %s", std::strerror(errno));
  return n;
}

bool readable(int fd) {
  pollfd p{fd, POLLIN, 0};
  return poll(&p, 1, 0) == 1;
}

}  // namespace

int main() {
  int armed = victim_sys(timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC));
  itimerspec spec{{500, 0}, {1000, 0}};
  victim_sys(timerfd_settime(armed, 0, &spec, nullptr));
  itimerspec saved{};
  victim_sys(timerfd_gettime(armed, &saved));

  int overdue = victim_sys(timerfd_create(CLOCK_REALTIME, TFD_NONBLOCK));
  timespec now{};
  clock_gettime(CLOCK_REALTIME, &now);
  itimerspec past{{1000, 0}, {now.tv_sec - 1500, now.tv_nsec}};
  victim_sys(timerfd_settime(overdue, TFD_TIMER_ABSTIME, &past, nullptr));

  int oneshot = victim_sys(timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK));
  itimerspec once{{0, 0}, {0, 1}};
  victim_sys(timerfd_settime(oneshot, 0, &once, nullptr));
  pollfd p{oneshot, POLLIN, 0};
  victim_check(poll(&p, 1, 5000) == 1, "one-shot timerfd did not expire");
  victim_check(readable(overdue), "overdue timerfd not readable before checkpoint");
  victim_check(!readable(armed), "armed timerfd readable before checkpoint");

  victim_ready();
  victim_wait_go();

  itimerspec cur{};
  victim_sys(timerfd_gettime(armed, &cur));
  victim_check(ns(cur.it_interval) == ns(saved.it_interval), "armed: interval %lld ns, was %lld ns",
               ns(cur.it_interval), ns(saved.it_interval));
  victim_check(ns(cur.it_value) > 0 && ns(cur.it_value) <= ns(saved.it_value), "armed: %lld ns left, had %lld ns",
               ns(cur.it_value), ns(saved.it_value));
  victim_check(read_count(armed) == 0, "armed timerfd has expirations");
  victim_check((fcntl(armed, F_GETFL) & O_NONBLOCK) && (fcntl(armed, F_GETFD) & FD_CLOEXEC), "armed: flags lost");

  std::uint64_t n = read_count(overdue);
  victim_check(n == 2, "overdue timerfd: %lu expirations, expected 2", static_cast<unsigned long>(n));
  victim_sys(timerfd_gettime(overdue, &cur));
  victim_check(cur.it_interval.tv_sec == 1000 && cur.it_value.tv_sec > 0 && cur.it_value.tv_sec <= 500,
               "overdue timerfd: interval %ld s, next in %ld s", static_cast<long>(cur.it_interval.tv_sec),
               static_cast<long>(cur.it_value.tv_sec));

  n = read_count(oneshot);
  victim_check(n == 1, "one-shot timerfd: %lu expirations, expected 1", static_cast<unsigned long>(n));
  victim_sys(timerfd_gettime(oneshot, &cur));
  victim_check(ns(cur.it_value) == 0 && ns(cur.it_interval) == 0, "one-shot timerfd is armed again");

  itimerspec shot{{0, 0}, {0, 20 * 1000 * 1000}};
  victim_sys(timerfd_settime(armed, 0, &shot, nullptr));
  p = pollfd{armed, POLLIN, 0};
  victim_check(poll(&p, 1, 5000) == 1, "re-armed timerfd did not fire");
  n = read_count(armed);
  victim_check(n == 1, "re-armed timerfd: %lu expirations", static_cast<unsigned long>(n));
  victim_pass();
}
