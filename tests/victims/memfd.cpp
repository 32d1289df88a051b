// State: a memfd ("victim-memfd", 2 MiB, sealed against shrink and grow, fd
// offset 4096) mapped MAP_SHARED twice at two addresses, written through the
// first; and a second memfd mapped once whose fd was closed.
// Checks: contents through both mappings and through the fd; the two
// mappings and the fd are still one object (a write through either mapping
// shows in the other and in pread); size, seals, offset and the fd's
// /proc/self/fd name survive; the fd-less memfd mapping keeps its data.
#include "victim.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

namespace {
constexpr std::size_t N = 2u << 20;
}

int main() {
  int fd = victim_sys(memfd_create("victim-memfd", MFD_CLOEXEC | MFD_ALLOW_SEALING));
  victim_sys(ftruncate(fd, N));
  auto* a = static_cast<std::uint8_t*>(victim_sys(mmap(nullptr, N, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0)));
  auto* b = static_cast<std::uint8_t*>(victim_sys(mmap(nullptr, N, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0)));
  victim_fill(a, N, 9);
  victim_sys(fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW));
  victim_sys(lseek(fd, 4096, SEEK_SET));
  const int seals_before = victim_sys(fcntl(fd, F_GET_SEALS));

  int fd2 = victim_sys(memfd_create("victim-memfd-2", 0));
  victim_sys(ftruncate(fd2, 1u << 20));
  auto* c = static_cast<std::uint8_t*>(
      victim_sys(mmap(nullptr, 1u << 20, PROT_READ | PROT_WRITE, MAP_SHARED, fd2, 0)));
  victim_fill(c, 1u << 20, 10);
  close(fd2);

  victim_ready();
  victim_wait_go();

  victim_check(victim_verify(a, N, 9) == N, "first mapping lost its contents");
  victim_check(victim_verify(b, N, 9) == N, "second mapping does not show the first one's writes");
  std::string buf(N, '\0');
  victim_check(pread(fd, buf.data(), N, 0) == static_cast<ssize_t>(N), "pread memfd");
  victim_check(victim_verify(buf.data(), N, 9) == N, "memfd contents differ from the mapping");

  b[12345] = 0x42;
  victim_check(a[12345] == 0x42, "write through the second mapping not seen through the first");
  a[N - 1] = 0x43;
  char last = 0;
  victim_check(pread(fd, &last, 1, N - 1) == 1 && last == 0x43, "write through a mapping not seen through the fd");

  struct stat st {};
  victim_sys(fstat(fd, &st));
  victim_check(st.st_size == static_cast<off_t>(N), "size %lld", static_cast<long long>(st.st_size));
  int seals = victim_sys(fcntl(fd, F_GET_SEALS));
  victim_check(seals == seals_before, "seals %#x, were %#x", seals, seals_before);
  victim_check(ftruncate(fd, N / 2) == -1 && errno == EPERM, "shrink seal not enforced");
  off_t off = victim_sys(lseek(fd, 0, SEEK_CUR));
  victim_check(off == 4096, "offset %lld", static_cast<long long>(off));
  int fdflags = victim_sys(fcntl(fd, F_GETFD));
  victim_check(fdflags & FD_CLOEXEC, "FD_CLOEXEC lost");
  char link[256] = {};
  victim_sys(readlink(("/proc/self/fd/" + std::to_string(fd)).c_str(), link, sizeof link - 1));
  victim_check(std::strcmp(link, "/memfd:victim-memfd (deleted)") == 0, "fd links to %s", link);

  victim_check(victim_verify(c, 1u << 20, 10) == (1u << 20), "fd-less memfd mapping lost its contents");
  victim_pass();
}
