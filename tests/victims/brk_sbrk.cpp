// State: the program break, grown by sbrk() in 64 steps to 8 MiB past the
// initial break, filled with a pattern, then shrunk by 1 MiB.
// Checks: brk(0) and the start_brk field of /proc/self/stat are unchanged,
// the 7 MiB still hold the pattern, and the break can still be moved (the
// kernel's mm->brk was restored, not just the memory): grow by 1 MiB, write,
// shrink back.
#include "victim.h"

#include <cstdlib>
#include <sstream>
#include <sys/syscall.h>
#include <unistd.h>

namespace {

std::uintptr_t cur_brk() { return static_cast<std::uintptr_t>(syscall(SYS_brk, 0)); }

// Field 48 (start_brk) of /proc/self/stat.
std::string start_brk() {
  std::string s = victim_read_file("/proc/self/stat");
  std::istringstream in(s.substr(s.rfind(')') + 2));  // fields from 3 on
  std::string f;
  for (int i = 3; i <= 47; ++i) in >> f;
  in >> f;
  return f;
}

}  // namespace

int main() {
  std::free(std::malloc(1));  // settle malloc's own arena first
  const std::size_t step = 128 * 1024;
  auto* begin = static_cast<std::uint8_t*>(victim_sys(sbrk(0)));
  for (int i = 0; i < 64; ++i) victim_sys(sbrk(static_cast<intptr_t>(step)));
  const std::size_t grown = 64 * step;
  victim_fill(begin, grown, 5);
  victim_sys(sbrk(-static_cast<intptr_t>(1u << 20)));
  const std::size_t kept = grown - (1u << 20);
  const std::string start_before = start_brk();
  const std::uintptr_t brk_before = cur_brk();
  victim_check(brk_before == reinterpret_cast<std::uintptr_t>(begin) + kept, "brk %#lx after shrinking, expected %p",
               static_cast<unsigned long>(brk_before), static_cast<void*>(begin + kept));

  victim_ready();
  victim_wait_go();

  const std::uintptr_t brk_after = cur_brk();
  victim_check(brk_after == brk_before, "brk is %#lx, was %#lx", static_cast<unsigned long>(brk_after),
               static_cast<unsigned long>(brk_before));
  const std::string start_after = start_brk();
  victim_check(start_after == start_before, "start_brk is %s, was %s", start_after.c_str(), start_before.c_str());
  std::size_t bad = victim_verify(begin, kept, 5);
  victim_check(bad == kept, "brk area differs at offset %zu (%p)", bad, static_cast<void*>(begin + bad));

  const std::uintptr_t want = brk_before + (1u << 20);
  victim_check(static_cast<std::uintptr_t>(syscall(SYS_brk, want)) == want, "brk could not grow after restore");
  std::memset(reinterpret_cast<void*>(brk_before), 0x77, 1u << 20);
  victim_check(static_cast<std::uintptr_t>(syscall(SYS_brk, brk_before)) == brk_before,
               "brk could not shrink after restore");
  victim_pass();
}
