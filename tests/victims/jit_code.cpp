// State: generated machine code (x86-64) in an anonymous page that was
// written read-write and then made read+execute, as a JIT does.
// Checks: the page is still executable and calling the code returns the
// value baked into it; the page is not writable.
#include "victim.h"

#include <unistd.h>

int main() {
#if defined(__x86_64__)
  const std::size_t page = static_cast<std::size_t>(sysconf(_SC_PAGESIZE));
  auto* code = static_cast<std::uint8_t*>(
      victim_sys(mmap(nullptr, page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0)));
  // lea eax, [rdi + 0x12345]; ret   -> f(x) = x + 0x12345
  const std::uint8_t insns[] = {0x8d, 0x87, 0x45, 0x23, 0x01, 0x00, 0xc3};
  std::memset(code, 0xcc, page);  // int3 everywhere else
  std::memcpy(code + 128, insns, sizeof insns);
  victim_sys(mprotect(code, page, PROT_READ | PROT_EXEC));
  using Fn = int (*)(int);
  Fn f = reinterpret_cast<Fn>(code + 128);
  victim_check(f(1) == 0x12346, "generated code returned %#x before checkpoint", f(1));

  victim_ready();
  victim_wait_go();

  int got = f(1000);
  victim_check(got == 1000 + 0x12345, "generated code returned %#x, expected %#x", got, 1000 + 0x12345);
  victim_check(victim_faults(code + 128, true), "code page writable after restore");
  victim_check(std::memcmp(code + 128, insns, sizeof insns) == 0, "code bytes changed");
  victim_pass();
#else
  victim_ready();
  victim_wait_go();
  victim_fail("jit_code is x86-64 only");
#endif
}
