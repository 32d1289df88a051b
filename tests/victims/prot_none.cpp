// State: PROT_NONE memory of two kinds: a 1 GiB reservation that was never
// accessible (MAP_NORESERVE), and 1 MiB that was written with a pattern and
// then made PROT_NONE (the pages have contents the process cannot see).
// Checks: both still fault on access; the hidden 1 MiB, made readable
// again, still holds its pattern; a piece of the reservation, made
// read-write, reads as zero and is writable.
#include "victim.h"

#include <unistd.h>

int main() {
  const std::size_t page = static_cast<std::size_t>(sysconf(_SC_PAGESIZE));
  const std::size_t resv_n = 1u << 30;
  auto* resv = static_cast<std::uint8_t*>(
      victim_sys(mmap(nullptr, resv_n, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0)));
  const std::size_t hid_n = 1u << 20;
  auto* hid = static_cast<std::uint8_t*>(
      victim_sys(mmap(nullptr, hid_n, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0)));
  victim_fill(hid, hid_n, 31);
  victim_sys(mprotect(hid, hid_n, PROT_NONE));
  victim_check(victim_faults(resv, false), "reservation readable before checkpoint");
  victim_check(victim_faults(hid + 12345, false), "hidden region readable before checkpoint");

  victim_ready();
  victim_wait_go();

  for (std::size_t off : {std::size_t{0}, resv_n / 2 + 17, resv_n - 1}) {
    victim_check(victim_faults(resv + off, false), "reservation %p readable at offset %zu", static_cast<void*>(resv),
                 off);
    victim_check(victim_faults(resv + off, true), "reservation %p writable at offset %zu", static_cast<void*>(resv),
                 off);
  }
  for (std::size_t off : {std::size_t{0}, hid_n - page, hid_n - 1})
    victim_check(victim_faults(hid + off, false), "hidden region %p readable at offset %zu", static_cast<void*>(hid),
                 off);

  victim_sys(mprotect(hid, hid_n, PROT_READ));
  std::size_t bad = victim_verify(hid, hid_n, 31);
  victim_check(bad == hid_n, "data behind PROT_NONE differs at offset %zu", bad);

  std::uint8_t* piece = resv + (resv_n / 2 & ~(page - 1));
  victim_sys(mprotect(piece, 16 * page, PROT_READ | PROT_WRITE));
  for (std::size_t i = 0; i < 16 * page; ++i)
    victim_check(piece[i] == 0, "reservation piece not zero at offset %zu", i);
  victim_fill(piece, 16 * page, 8);
  victim_check(victim_verify(piece, 16 * page, 8) == 16 * page, "reservation piece not writable");
  victim_check(victim_faults(piece - 1, false), "page below the opened piece became accessible");
  victim_check(victim_faults(piece + 16 * page, false), "page above the opened piece became accessible");
  victim_pass();
}
