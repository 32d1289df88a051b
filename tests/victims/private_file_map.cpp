// State: a 1 MiB scratch file mapped MAP_PRIVATE read-write, with some pages
// modified in memory (copy-on-write), the fd closed (only the mapping holds
// the file).
// Checks: modified pages keep the changes, unmodified pages show the file,
// the file itself is unchanged, /proc/self/maps still names the file for
// the mapping, and a write after restore does not reach the file either.
#include "victim.h"

#include <fcntl.h>
#include <unistd.h>

namespace {
constexpr std::size_t N = 1u << 20;
bool modified(std::size_t page_index) { return page_index % 5 == 2; }
}  // namespace

int main() {
  const std::size_t page = static_cast<std::size_t>(sysconf(_SC_PAGESIZE));
  const std::string path = victim_scratch("private_file_map.dat");
  std::string data(N, '\0');
  victim_fill(data.data(), N, 1);
  int fd = victim_sys(open(path.c_str(), O_RDWR | O_CREAT | O_TRUNC, 0644));
  victim_check(write(fd, data.data(), N) == static_cast<ssize_t>(N), "write %s", path.c_str());
  auto* m = static_cast<std::uint8_t*>(victim_sys(mmap(nullptr, N, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, 0)));
  close(fd);
  for (std::size_t i = 0; i < N / page; ++i)
    if (modified(i)) victim_fill(m + i * page, page, 1000 + i);

  victim_ready();
  victim_wait_go();

  for (std::size_t i = 0; i < N / page; ++i) {
    if (modified(i)) {
      victim_check(victim_verify(m + i * page, page, 1000 + i) == page, "modified page %zu lost its changes", i);
    } else {
      victim_check(std::memcmp(m + i * page, data.data() + i * page, page) == 0,
                   "unmodified page %zu differs from the file", i);
    }
  }
  m[0] ^= 0xff;  // must stay private
  fd = victim_sys(open(path.c_str(), O_RDONLY));
  std::string now(N, '\0');
  victim_check(pread(fd, now.data(), N, 0) == static_cast<ssize_t>(N), "read back %s", path.c_str());
  close(fd);
  victim_check(now == data, "the file changed: private mapping was written back");

  char needle[64];
  std::snprintf(needle, sizeof needle, "%lx-", reinterpret_cast<unsigned long>(m));
  std::string maps = victim_read_file("/proc/self/maps");
  std::size_t at = maps.find(needle);
  victim_check(at != std::string::npos, "mapping at %p not in /proc/self/maps", static_cast<void*>(m));
  std::string line = maps.substr(at, maps.find('\n', at) - at);
  victim_check(line.find(path) != std::string::npos, "mapping line does not name %s: %s", path.c_str(), line.c_str());
  victim_check(line.find(" rw-p ") != std::string::npos, "mapping is not rw-p: %s", line.c_str());
  unlink(path.c_str());
  victim_pass();
}
