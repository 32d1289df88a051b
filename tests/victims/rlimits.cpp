// State: resource limits: soft RLIMIT_NOFILE lowered to 256, RLIMIT_CORE
// soft 0, RLIMIT_CPU soft 3600 s, RLIMIT_MEMLOCK soft 64 KiB, RLIMIT_NPROC
// soft 4000 (where the hard limits allow), every other limit as inherited.
// Checks: getrlimit() of all 16 resources equals the snapshot taken before
// ready, and the NOFILE soft limit is enforced (dup2 to fd 300 fails with
// EBADF).
#include "victim.h"

#include <sys/resource.h>
#include <unistd.h>

namespace {

void lower(int res, rlim_t soft) {
  rlimit r{};
  victim_sys(getrlimit(res, &r));
  if (r.rlim_max != RLIM_INFINITY && r.rlim_max < soft) soft = r.rlim_max;
  r.rlim_cur = soft;
  victim_sys(setrlimit(res, &r));
}

}  // namespace

int main() {
  lower(RLIMIT_NOFILE, 256);
  lower(RLIMIT_CORE, 0);
  lower(RLIMIT_CPU, 3600);
  lower(RLIMIT_MEMLOCK, 64 * 1024);
  lower(RLIMIT_NPROC, 4000);
  rlimit saved[RLIM_NLIMITS];
  for (int r = 0; r < RLIM_NLIMITS; ++r) victim_sys(getrlimit(r, &saved[r]));

  victim_ready();
  victim_wait_go();

  for (int r = 0; r < RLIM_NLIMITS; ++r) {
    rlimit now{};
    victim_sys(getrlimit(r, &now));
    victim_check(now.rlim_cur == saved[r].rlim_cur && now.rlim_max == saved[r].rlim_max,
                 "resource %d: limits %llu/%llu, were %llu/%llu", r, static_cast<unsigned long long>(now.rlim_cur),
                 static_cast<unsigned long long>(now.rlim_max), static_cast<unsigned long long>(saved[r].rlim_cur),
                 static_cast<unsigned long long>(saved[r].rlim_max));
  }
  victim_check(dup2(0, 300) == -1 && errno == EBADF, "dup2 to fd 300 allowed with RLIMIT_NOFILE 256");
  victim_pass();
}
