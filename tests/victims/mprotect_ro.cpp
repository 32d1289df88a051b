// State: 64 KiB written with a pattern and then made read-only, next to a
// read-write neighbour mapped in the same mmap (two VMAs from one mapping).
// Checks: the read-only part still holds its pattern and faults on write;
// the neighbour is still writable; mprotect back to read-write works and
// the data is unchanged.
#include "victim.h"

#include <unistd.h>

int main() {
  const std::size_t n = 64 * 1024;
  auto* r = static_cast<std::uint8_t*>(
      victim_sys(mmap(nullptr, 2 * n, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0)));
  victim_fill(r, 2 * n, 70);
  victim_sys(mprotect(r, n, PROT_READ));
  victim_check(victim_faults(r + 100, true), "read-only page writable before checkpoint");

  victim_ready();
  victim_wait_go();

  std::size_t bad = victim_verify(r, 2 * n, 70);
  victim_check(bad == 2 * n, "region differs at offset %zu", bad);
  victim_check(victim_faults(r, true), "read-only page writable after restore");
  victim_check(victim_faults(r + n - 1, true), "last read-only byte writable after restore");
  victim_check(!victim_faults(r + n, true), "read-write neighbour not writable after restore");
  victim_sys(mprotect(r, n, PROT_READ | PROT_WRITE));
  r[0] = static_cast<std::uint8_t>(r[0] + 1);
  r[0] = static_cast<std::uint8_t>(r[0] - 1);
  bad = victim_verify(r, 2 * n, 70);
  victim_check(bad == 2 * n, "region differs at offset %zu after mprotect", bad);
  victim_pass();
}
