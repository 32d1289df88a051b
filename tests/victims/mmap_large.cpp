// State: a 256 MiB private anonymous mapping (MAP_NORESERVE), sparsely
// written: every 7th page holds a pattern, the rest were never touched; a
// page that was written and then dropped with MADV_DONTNEED; and a 4 MiB
// region aligned to 2 MiB and fully written (a candidate for transparent
// huge pages).
// Checks: written pages hold their patterns, untouched and dropped pages
// read as zero, and the memory is still writable.
#include "victim.h"

#include <unistd.h>

int main() {
  const std::size_t page = static_cast<std::size_t>(sysconf(_SC_PAGESIZE));
  const std::size_t size = 256u << 20;
  auto* base = static_cast<std::uint8_t*>(victim_sys(
      mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0)));
  const std::size_t pages = size / page;
  for (std::size_t i = 0; i < pages; i += 7) victim_fill(base + i * page, page, i);
  // Page 1 was written, then dropped: it must read as zero again.
  victim_fill(base + page, page, 424242);
  victim_sys(madvise(base + page, page, MADV_DONTNEED));

  const std::size_t huge = 2u << 20;
  auto* raw = static_cast<std::uint8_t*>(victim_sys(
      mmap(nullptr, 3 * huge, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0)));
  auto* thp = reinterpret_cast<std::uint8_t*>((reinterpret_cast<std::uintptr_t>(raw) + huge - 1) & ~(huge - 1));
  madvise(thp, 2 * huge, MADV_HUGEPAGE);  // a hint; fails harmlessly without THP
  victim_fill(thp, 2 * huge, 99);

  victim_ready();
  victim_wait_go();

  for (std::size_t i = 0; i < pages; ++i) {
    const std::uint8_t* p = base + i * page;
    if (i % 7 == 0) {
      std::size_t bad = victim_verify(p, page, i);
      victim_check(bad == page, "written page %zu (%p) differs at offset %zu", i, static_cast<const void*>(p), bad);
    } else {
      for (std::size_t j = 0; j < page; j += 8) {
        std::uint64_t v;
        std::memcpy(&v, p + j, 8);
        victim_check(v == 0, "untouched page %zu (%p) is not zero at offset %zu", i,
                     static_cast<const void*>(p), j);
      }
    }
  }
  std::size_t bad = victim_verify(thp, 2 * huge, 99);
  victim_check(bad == 2 * huge, "2 MiB-aligned region %p differs at offset %zu", static_cast<void*>(thp), bad);

  for (std::size_t i = 3; i < pages; i += 7 * 97) base[i * page + 5] = 0x5a;
  for (std::size_t i = 3; i < pages; i += 7 * 97)
    victim_check(base[i * page + 5] == 0x5a, "write to page %zu after restore did not stick", i);
  victim_pass();
}
