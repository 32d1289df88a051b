// State: one 20000-byte scratch file open four times: O_RDWR at offset
// 12345; O_WRONLY|O_APPEND; O_RDONLY|O_CLOEXEC at offset 777; O_RDWR|O_DSYNC
// moved to fd 100 with dup2 at offset 4000.
// Checks: each fd number refers to the file with its own offset, access
// mode and flags (O_APPEND, O_DSYNC, FD_CLOEXEC); reads at the offsets give
// the file's bytes; a write through the O_APPEND fd lands at the end (offset
// 20000) and grows the file.
#include "victim.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

namespace {

constexpr std::size_t N = 20000;

void expect(int fd, off_t offset, int accmode, int flags, bool cloexec, const char* what) {
  off_t off = lseek(fd, 0, SEEK_CUR);
  victim_check(off == offset, "%s: offset %lld, expected %lld", what, static_cast<long long>(off),
               static_cast<long long>(offset));
  int fl = victim_sys(fcntl(fd, F_GETFL));
  victim_check((fl & O_ACCMODE) == accmode, "%s: access mode %d, expected %d", what, fl & O_ACCMODE, accmode);
  victim_check((fl & (O_APPEND | O_DSYNC)) == flags, "%s: flags %#x, expected %#x", what, fl & (O_APPEND | O_DSYNC),
               flags);
  victim_check(((fcntl(fd, F_GETFD) & FD_CLOEXEC) != 0) == cloexec, "%s: FD_CLOEXEC %s", what,
               cloexec ? "lost" : "appeared");
}

}  // namespace

int main() {
  const std::string path = victim_scratch("file_offset_append.dat");
  int rw = victim_sys(open(path.c_str(), O_RDWR | O_CREAT | O_TRUNC, 0644));
  static std::uint8_t buf[N];
  victim_fill(buf, N, 6);
  victim_check(write(rw, buf, N) == static_cast<ssize_t>(N), "write");
  victim_sys(lseek(rw, 12345, SEEK_SET));
  int app = victim_sys(open(path.c_str(), O_WRONLY | O_APPEND));
  int ro = victim_sys(open(path.c_str(), O_RDONLY | O_CLOEXEC));
  victim_sys(lseek(ro, 777, SEEK_SET));
  int tmp = victim_sys(open(path.c_str(), O_RDWR | O_DSYNC));
  const int high = 100;
  victim_sys(dup2(tmp, high));
  close(tmp);
  victim_sys(lseek(high, 4000, SEEK_SET));

  victim_ready();
  victim_wait_go();

  expect(rw, 12345, O_RDWR, 0, false, "O_RDWR fd");
  expect(app, 0, O_WRONLY, O_APPEND, false, "O_APPEND fd");
  expect(ro, 777, O_RDONLY, 0, true, "O_RDONLY|O_CLOEXEC fd");
  expect(high, 4000, O_RDWR, O_DSYNC, false, "fd 100");
  std::uint8_t got[100];
  for (auto [fd, off] : {std::pair{rw, 12345}, std::pair{ro, 777}, std::pair{high, 4000}}) {
    victim_check(read(fd, got, sizeof got) == sizeof got, "read at %d", off);
    for (std::size_t i = 0; i < sizeof got; ++i)
      victim_check(got[i] == victim_pattern_byte(6, static_cast<std::size_t>(off) + i), "byte %zu at offset %d differs",
                   i, off);
  }
  victim_check(write(app, "appended!!", 10) == 10, "append write");
  victim_check(lseek(app, 0, SEEK_CUR) == static_cast<off_t>(N + 10), "append fd offset %lld after write",
               static_cast<long long>(lseek(app, 0, SEEK_CUR)));
  struct stat st {};
  victim_sys(fstat(rw, &st));
  victim_check(st.st_size == static_cast<off_t>(N + 10), "size %lld after append", static_cast<long long>(st.st_size));
  victim_check(pread(rw, got, 10, N) == 10 && std::memcmp(got, "appended!!", 10) == 0, "appended bytes not at the end");
  unlink(path.c_str());
  victim_pass();
}
