// State: a 1 MiB scratch file mapped MAP_SHARED read-write, with pages
// written through the mapping and not msync'ed (dirty page cache), fd closed.
// Checks: the file (read with pread) shows the writes; a write through the
// mapping after restore reaches the file; a pwrite to the file after
// restore shows in the mapping (it is really the file, not a copy).
#include "victim.h"

#include <fcntl.h>
#include <unistd.h>

namespace {
constexpr std::size_t N = 1u << 20;
}

int main() {
  const std::size_t page = static_cast<std::size_t>(sysconf(_SC_PAGESIZE));
  const std::string path = victim_scratch("shared_file_map.dat");
  std::string data(N, '\0');
  victim_fill(data.data(), N, 1);
  int fd = victim_sys(open(path.c_str(), O_RDWR | O_CREAT | O_TRUNC, 0644));
  victim_check(write(fd, data.data(), N) == static_cast<ssize_t>(N), "write %s", path.c_str());
  auto* m = static_cast<std::uint8_t*>(victim_sys(mmap(nullptr, N, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0)));
  close(fd);
  for (std::size_t i = 0; i < N / page; i += 3) {
    victim_fill(m + i * page, page, 1000 + i);
    victim_fill(data.data() + i * page, page, 1000 + i);
  }

  victim_ready();
  victim_wait_go();

  victim_check(std::memcmp(m, data.data(), N) == 0, "mapping lost its contents");
  fd = victim_sys(open(path.c_str(), O_RDWR));
  std::string now(N, '\0');
  victim_check(pread(fd, now.data(), N, 0) == static_cast<ssize_t>(N), "read %s", path.c_str());
  victim_check(now == data, "the file does not show the writes made through the mapping before the checkpoint");

  victim_fill(m + page, page, 77);  // mapping -> file
  victim_check(pread(fd, now.data(), page, page) == static_cast<ssize_t>(page), "read %s", path.c_str());
  victim_check(victim_verify(now.data(), page, 77) == page, "a write through the mapping after restore is not in the file");
  std::string fresh(page, '\0');
  victim_fill(fresh.data(), page, 88);  // file -> mapping
  victim_check(pwrite(fd, fresh.data(), page, 4 * page) == static_cast<ssize_t>(page), "pwrite %s", path.c_str());
  victim_check(victim_verify(m + 4 * page, page, 88) == page, "a pwrite to the file after restore is not in the mapping");
  close(fd);
  unlink(path.c_str());
  victim_pass();
}
