// State: all three interval timers armed with long periods: ITIMER_REAL
// 1000 s then every 500 s, ITIMER_VIRTUAL 600/300 s, ITIMER_PROF 400/200 s,
// with a SIGALRM handler installed.
// Checks: getitimer() reports the same intervals exactly and a remaining
// value that is positive and not above what was left before the checkpoint
// (the timers are still armed, and were not restarted from their full
// value); no SIGALRM came early; and ITIMER_REAL, re-armed for 20 ms,
// delivers SIGALRM.
#include "victim.h"

#include <csignal>
#include <sys/time.h>
#include <unistd.h>

namespace {

volatile sig_atomic_t alarms = 0;
void on_alrm(int) { alarms = alarms + 1; }

long long usec(const timeval& t) { return static_cast<long long>(t.tv_sec) * 1000000 + t.tv_usec; }

}  // namespace

int main() {
  struct sigaction a {};
  a.sa_handler = on_alrm;
  sigemptyset(&a.sa_mask);
  victim_sys(sigaction(SIGALRM, &a, nullptr));
  struct Timer {
    int which;
    const char* name;
    itimerval set, saved;
  } timers[] = {{ITIMER_REAL, "ITIMER_REAL", {{500, 0}, {1000, 0}}, {}},
                {ITIMER_VIRTUAL, "ITIMER_VIRTUAL", {{300, 0}, {600, 0}}, {}},
                {ITIMER_PROF, "ITIMER_PROF", {{200, 0}, {400, 0}}, {}}};
  for (Timer& t : timers) victim_sys(setitimer(t.which, &t.set, nullptr));
  for (Timer& t : timers) victim_sys(getitimer(t.which, &t.saved));

  victim_ready();
  victim_wait_go();

  victim_check(alarms == 0, "SIGALRM arrived before go");
  for (const Timer& t : timers) {
    itimerval now{};
    victim_sys(getitimer(t.which, &now));
    victim_check(usec(now.it_interval) == usec(t.saved.it_interval), "%s interval %lld us, was %lld us", t.name,
                 usec(now.it_interval), usec(t.saved.it_interval));
    victim_check(usec(now.it_value) > 0, "%s is disarmed", t.name);
    victim_check(usec(now.it_value) <= usec(t.saved.it_value), "%s has %lld us left, more than the %lld us before",
                 t.name, usec(now.it_value), usec(t.saved.it_value));
    victim_check(usec(now.it_value) > usec(t.saved.it_value) - 300LL * 1000000, "%s has only %lld us left of %lld",
                 t.name, usec(now.it_value), usec(t.saved.it_value));
  }
  itimerval shot{{0, 0}, {0, 20000}};
  victim_sys(setitimer(ITIMER_REAL, &shot, nullptr));
  for (int i = 0; i < 500 && alarms == 0; ++i) usleep(10000);
  victim_check(alarms == 1, "re-armed ITIMER_REAL delivered %d SIGALRMs in 5 s", static_cast<int>(alarms));
  victim_pass();
}
