// State: a scratch file mapped twice (MAP_SHARED and MAP_PRIVATE, the
// private one partly modified), then unlinked and its fd closed: the
// mappings are the only references to the deleted file.
// Checks: both mappings keep their contents; /proc/self/maps marks them
// "(deleted)"; the shared mapping and the unmodified pages of the private
// one are still the same file (a write through the shared mapping shows in
// an unmodified private page that was never written).
#include "victim.h"

#include <fcntl.h>
#include <unistd.h>

namespace {
constexpr std::size_t N = 256 * 1024;
}

int main() {
  const std::size_t page = static_cast<std::size_t>(sysconf(_SC_PAGESIZE));
  const std::string path = victim_scratch("deleted_file_map.dat");
  int fd = victim_sys(open(path.c_str(), O_RDWR | O_CREAT | O_TRUNC, 0600));
  std::string data(N, '\0');
  victim_fill(data.data(), N, 3);
  victim_check(write(fd, data.data(), N) == static_cast<ssize_t>(N), "write");
  auto* sh = static_cast<std::uint8_t*>(victim_sys(mmap(nullptr, N, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0)));
  auto* pr = static_cast<std::uint8_t*>(victim_sys(mmap(nullptr, N, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, 0)));
  victim_fill(pr, page, 4);  // page 0 of the private mapping is now anonymous
  victim_fill(sh + page, page, 5);
  victim_fill(data.data() + page, page, 5);
  close(fd);
  victim_sys(unlink(path.c_str()));

  victim_ready();
  victim_wait_go();

  victim_check(std::memcmp(sh, data.data(), N) == 0, "shared mapping of the deleted file differs");
  victim_check(victim_verify(pr, page, 4) == page, "modified private page differs");
  victim_check(std::memcmp(pr + page, data.data() + page, N - page) == 0,
               "unmodified private pages differ from the deleted file");
  victim_fill(sh + 7 * page, page, 6);
  victim_check(victim_verify(pr + 7 * page, page, 6) == page,
               "private mapping's untouched page does not follow the shared mapping: not the same file");

  std::string maps = victim_read_file("/proc/self/maps");
  for (void* m : {static_cast<void*>(sh), static_cast<void*>(pr)}) {
    char needle[64];
    std::snprintf(needle, sizeof needle, "%lx-", reinterpret_cast<unsigned long>(m));
    std::size_t at = maps.find(needle);
    victim_check(at != std::string::npos, "mapping %p not in /proc/self/maps", m);
    std::string line = maps.substr(at, maps.find('\n', at) - at);
    victim_check(line.find(path + " (deleted)") != std::string::npos, "maps line: %s", line.c_str());
  }
  victim_pass();
}
