// State: readings of the clocks a program uses to measure elapsed time,
// taken before ready: CLOCK_MONOTONIC, CLOCK_MONOTONIC_RAW, CLOCK_BOOTTIME
// (through the vDSO, as a program does) and CLOCK_MONOTONIC through the
// real system call.
// Checks: none of them went backwards across the wait (a restore on another
// machine needs a time namespace offset for that), the vDSO and the system
// call still agree (to 1 s), and the clocks still advance.
#include "victim.h"

#include <ctime>
#include <sys/syscall.h>
#include <unistd.h>

namespace {

long long ns(const timespec& t) { return static_cast<long long>(t.tv_sec) * 1000000000LL + t.tv_nsec; }

long long vdso(clockid_t c) {
  timespec t{};
  clock_gettime(c, &t);
  return ns(t);
}

long long sys(clockid_t c) {
  timespec t{};
  syscall(SYS_clock_gettime, c, &t);
  return ns(t);
}

}  // namespace

int main() {
  struct Clock {
    const char* name;
    long long (*read)(clockid_t);
    clockid_t id;
    long long before;
  } clocks[] = {{"CLOCK_MONOTONIC (vDSO)", vdso, CLOCK_MONOTONIC, 0},
                {"CLOCK_MONOTONIC_RAW (vDSO)", vdso, CLOCK_MONOTONIC_RAW, 0},
                {"CLOCK_BOOTTIME (vDSO)", vdso, CLOCK_BOOTTIME, 0},
                {"CLOCK_MONOTONIC (syscall)", sys, CLOCK_MONOTONIC, 0}};
  for (Clock& c : clocks) c.before = c.read(c.id);

  victim_ready();
  victim_wait_go();

  for (const Clock& c : clocks) {
    long long now = c.read(c.id);
    victim_check(now >= c.before, "%s went backwards by %lld ns", c.name, c.before - now);
  }
  long long v = vdso(CLOCK_MONOTONIC), s = sys(CLOCK_MONOTONIC);
  victim_check(s - v < 1000000000LL && v - s < 1000000000LL, "vDSO and syscall CLOCK_MONOTONIC differ by %lld ns", s - v);
  long long a = vdso(CLOCK_MONOTONIC);
  usleep(2000);
  long long b = vdso(CLOCK_MONOTONIC);
  victim_check(b > a, "CLOCK_MONOTONIC does not advance (vDSO data page stale?)");
  victim_pass();
}
