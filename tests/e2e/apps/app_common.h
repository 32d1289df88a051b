// Helpers shared by the end-to-end application programs (tests/e2e/apps).
//
// The apps are ordinary deterministic programs: they take their parameters
// on the command line, print progress lines to stdout (each line carries the
// step it belongs to) and end with a final line that holds a checksum with
// full precision. Every line is written with one write(2) so that it is
// atomic on a pipe and a fork can never duplicate buffered output.
#pragma once

#include <cerrno>
#include <cstdarg>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <string>
#include <unistd.h>

namespace app {

[[noreturn]] inline void die(const char* fmt, ...) {
  char buf[512];
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(buf, sizeof buf - 1, fmt, ap);
  va_end(ap);
  if (n < 0) n = 0;
  if (n > static_cast<int>(sizeof buf) - 2) n = static_cast<int>(sizeof buf) - 2;
  buf[n++] = '\n';
  ssize_t w = write(2, buf, static_cast<size_t>(n));
  (void)w;
  _exit(2);
}

inline void write_all(int fd, const void* data, size_t len, const char* what) {
  const char* p = static_cast<const char*>(data);
  while (len > 0) {
    ssize_t n = write(fd, p, len);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) die("write %s: %s", what, strerror(errno));
    p += n;
    len -= static_cast<size_t>(n);
  }
}

// Reads exactly len bytes; returns false on a clean end of file before the
// first byte, dies on a short record.
inline bool read_all(int fd, void* data, size_t len, const char* what) {
  char* p = static_cast<char*>(data);
  size_t got = 0;
  while (got < len) {
    ssize_t n = read(fd, p + got, len - got);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) die("read %s: %s", what, strerror(errno));
    if (n == 0) {
      if (got == 0) return false;
      die("read %s: short record (%zu of %zu bytes)", what, got, len);
    }
    got += static_cast<size_t>(n);
  }
  return true;
}

// printf to a descriptor in a single write.
__attribute__((format(printf, 2, 3))) inline void say(int fd, const char* fmt, ...) {
  char buf[1024];
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(buf, sizeof buf, fmt, ap);
  va_end(ap);
  if (n < 0 || n >= static_cast<int>(sizeof buf)) die("line too long");
  write_all(fd, buf, static_cast<size_t>(n), "a line");
}

inline uint64_t splitmix(uint64_t x) {
  x += 0x9e3779b97f4a7c15ULL;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
  return x ^ (x >> 31);
}

inline uint64_t fnv1a(uint64_t h, const void* data, size_t len) {
  const unsigned char* p = static_cast<const unsigned char*>(data);
  for (size_t i = 0; i < len; ++i) h = (h ^ p[i]) * 0x100000001b3ULL;
  return h;
}
inline constexpr uint64_t kFnvBasis = 0xcbf29ce484222325ULL;

inline long arg_long(int argc, char** argv, int i, long fallback) {
  if (i >= argc) return fallback;
  char* end = nullptr;
  long v = strtol(argv[i], &end, 10);
  if (!end || *end || v <= 0) die("bad numeric argument '%s'", argv[i]);
  return v;
}

// Polls for a file a test creates when the program may go on.
inline void wait_for_file(const char* path) {
  const timespec tick{0, 10 * 1000 * 1000};
  while (access(path, F_OK) != 0) {
    if (errno != ENOENT) die("access %s: %s", path, strerror(errno));
    nanosleep(&tick, nullptr);
  }
}

}  // namespace app
