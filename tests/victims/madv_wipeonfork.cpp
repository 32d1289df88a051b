// State: three anonymous regions with a pattern: one with MADV_WIPEONFORK,
// one with MADV_DONTFORK, one plain. These are VMA flags ("wf", "dc" in
// /proc/PID/smaps) that nothing else shows.
// Checks: the parent keeps all three patterns; a child forked after go sees
// the wipe-on-fork region as zeros, does not have the don't-fork region at
// all (access faults), and sees the plain region's pattern.
#include "victim.h"

#include <sys/wait.h>
#include <unistd.h>

namespace {
constexpr std::size_t N = 64 * 1024;
}

int main() {
  auto map = [] {
    return static_cast<std::uint8_t*>(
        victim_sys(mmap(nullptr, N, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0)));
  };
  std::uint8_t* wipe = map();
  std::uint8_t* dont = map();
  std::uint8_t* plain = map();
  victim_fill(wipe, N, 1);
  victim_fill(dont, N, 2);
  victim_fill(plain, N, 3);
  victim_sys(madvise(wipe, N, MADV_WIPEONFORK));
  victim_sys(madvise(dont, N, MADV_DONTFORK));

  victim_ready();
  victim_wait_go();

  victim_check(victim_verify(wipe, N, 1) == N, "wipe-on-fork region lost its contents in the parent");
  victim_check(victim_verify(dont, N, 2) == N, "don't-fork region lost its contents in the parent");
  victim_check(victim_verify(plain, N, 3) == N, "plain region lost its contents");
  pid_t pid = victim_sys(fork());
  if (pid == 0) {
    for (std::size_t i = 0; i < N; ++i)
      if (wipe[i] != 0) _exit(10);  // MADV_WIPEONFORK lost
    if (!victim_faults(dont, false)) _exit(11);  // MADV_DONTFORK lost
    if (victim_verify(plain, N, 3) != N) _exit(12);
    _exit(0);
  }
  int st = victim_wait_child(pid);
  victim_check(!(WIFEXITED(st) && WEXITSTATUS(st) == 10), "MADV_WIPEONFORK lost: child saw the parent's data");
  victim_check(!(WIFEXITED(st) && WEXITSTATUS(st) == 11), "MADV_DONTFORK lost: child has the region");
  victim_check(WIFEXITED(st) && WEXITSTATUS(st) == 0, "child %s", victim_status_str(st).c_str());
  victim_pass();
}
