// State: two output files being written while the checkpoint happens: a
// thread appends a fixed-width numbered line every 2 ms to an O_APPEND file
// and to a plain O_WRONLY file (file offset), counting lines in memory.
// After a restore the process continues from the checkpoint's count, so
// whatever the killed original wrote after the checkpoint must have been
// cut off by the engine (files open for writing are truncated back to their
// size at the checkpoint), or lines appear twice (O_APPEND) or stale lines
// remain past the end (plain file).
// Checks: after go, both files are exactly lines 0..count-1, each once, in
// order, and nothing more.
#include "victim.h"

#include <atomic>
#include <fcntl.h>
#include <pthread.h>
#include <sys/stat.h>
#include <unistd.h>

namespace {

constexpr std::size_t LINE = 16;
int fd_append = -1, fd_plain = -1;
std::atomic<bool> stop{false};
std::atomic<long> written{0};

void line_for(long k, char* out) {
  std::snprintf(out, LINE + 1, "line %010u\n", static_cast<unsigned>(k % 1000000000));
}

void* writer(void*) {
  char line[LINE + 1];
  for (long k = written; !stop; ++k) {
    line_for(k, line);
    if (write(fd_append, line, LINE) != static_cast<ssize_t>(LINE)) victim_fail("append write: %s", std::strerror(errno));
    if (write(fd_plain, line, LINE) != static_cast<ssize_t>(LINE)) victim_fail("plain write: %s", std::strerror(errno));
    written = k + 1;
    timespec ts{0, 2 * 1000 * 1000};
    nanosleep(&ts, nullptr);
  }
  return nullptr;
}

void check_file(const std::string& path, long count) {
  std::string data = victim_read_file(path);
  victim_check(data.size() == static_cast<std::size_t>(count) * LINE, "%s: %zu bytes, expected %ld lines = %zu bytes",
               path.c_str(), data.size(), count, static_cast<std::size_t>(count) * LINE);
  char line[LINE + 1];
  for (long k = 0; k < count; ++k) {
    line_for(k, line);
    victim_check(data.compare(static_cast<std::size_t>(k) * LINE, LINE, line) == 0, "%s: line %ld is \"%.15s\"",
                 path.c_str(), k, data.c_str() + k * LINE);
  }
}

}  // namespace

int main() {
  const std::string pa = victim_scratch("write_no_dup.append"), pp = victim_scratch("write_no_dup.plain");
  fd_append = victim_sys(open(pa.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_APPEND, 0644));
  fd_plain = victim_sys(open(pp.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644));
  char line[LINE + 1];
  for (long k = 0; k < 100; ++k) {
    line_for(k, line);
    victim_check(write(fd_append, line, LINE) == static_cast<ssize_t>(LINE), "write");
    victim_check(write(fd_plain, line, LINE) == static_cast<ssize_t>(LINE), "write");
  }
  written = 100;
  pthread_t t;
  victim_check(pthread_create(&t, nullptr, writer, nullptr) == 0, "pthread_create");
  while (written < 105) sched_yield();  // the writer is under way

  victim_ready();
  victim_wait_go();

  stop = true;
  pthread_join(t, nullptr);
  const long count = written;
  check_file(pa, count);
  check_file(pp, count);
  unlink(pa.c_str());
  unlink(pp.c_str());
  victim_pass();
}
