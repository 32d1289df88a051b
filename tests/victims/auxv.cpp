// State: the auxiliary vector (mm->saved_auxv, /proc/self/auxv) and what it
// points at: AT_SYSINFO_EHDR (the vDSO), AT_RANDOM (16 random bytes on the
// initial stack), AT_PHDR, AT_EXECFN.
// Checks: /proc/self/auxv is byte-for-byte what it was; getauxval() agrees;
// the AT_RANDOM bytes are unchanged; AT_SYSINFO_EHDR is where
// /proc/self/maps shows [vdso] (so the vDSO sits at its saved address) and
// calling through it (clock_gettime, getcpu) works.
#include "victim.h"

#include <ctime>
#include <sched.h>
#include <sys/auxv.h>
#include <unistd.h>

int main() {
  const std::string saved = victim_read_file("/proc/self/auxv");
  const unsigned long ehdr = getauxval(AT_SYSINFO_EHDR), random_at = getauxval(AT_RANDOM), phdr = getauxval(AT_PHDR);
  victim_check(random_at != 0, "no AT_RANDOM");
  std::uint8_t random_bytes[16];
  std::memcpy(random_bytes, reinterpret_cast<const void*>(random_at), 16);

  victim_ready();
  victim_wait_go();

  std::string now = victim_read_file("/proc/self/auxv");
  victim_check(now == saved, "/proc/self/auxv differs (%zu bytes, was %zu)", now.size(), saved.size());
  victim_check(getauxval(AT_SYSINFO_EHDR) == ehdr && getauxval(AT_RANDOM) == random_at && getauxval(AT_PHDR) == phdr,
               "getauxval() values changed");
  victim_check(std::memcmp(random_bytes, reinterpret_cast<const void*>(random_at), 16) == 0, "AT_RANDOM bytes changed");
  if (ehdr != 0) {
    char needle[64];
    std::snprintf(needle, sizeof needle, "%lx-", ehdr);
    std::string maps = victim_read_file("/proc/self/maps");
    std::size_t at = maps.find(needle);
    victim_check(at != std::string::npos, "no mapping starts at AT_SYSINFO_EHDR %#lx", ehdr);
    std::string line = maps.substr(at, maps.find('\n', at) - at);
    victim_check(line.find("[vdso]") != std::string::npos, "mapping at AT_SYSINFO_EHDR is not [vdso]: %s",
                 line.c_str());
  }
  timespec ts{};
  victim_check(clock_gettime(CLOCK_MONOTONIC, &ts) == 0 && (ts.tv_sec > 0 || ts.tv_nsec > 0), "clock_gettime via vDSO");
  victim_check(sched_getcpu() >= 0, "sched_getcpu");
  victim_pass();
}
