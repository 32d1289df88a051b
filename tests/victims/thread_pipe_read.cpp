// State: threads blocked in pipe I/O: a reader in read() on an empty pipe,
// and a writer in write() on a pipe that is full (64 KiB of pattern queued,
// the writer blocked on the next 16 KiB).
// Checks: after go the main thread writes a message, which the reader gets
// whole and then sees EOF when the write end closes; the main thread drains
// the full pipe and gets the 64 KiB and then the writer's 16 KiB in order
// (nothing lost or duplicated around the restarted write), then EOF.
#include "victim.h"

#include <atomic>
#include <fcntl.h>
#include <pthread.h>
#include <sys/syscall.h>
#include <unistd.h>

namespace {

constexpr std::size_t FULL = 64 * 1024, EXTRA = 16 * 1024;
constexpr char MESSAGE[] = "message written after go, 37 bytes..";
int empty_pipe[2], full_pipe[2];
std::atomic<pid_t> reader_tid{0}, writer_tid{0};
std::atomic<int> reader_result{0};  // 1 ok, 2 bad message, 3 no EOF
std::atomic<ssize_t> writer_result{0};

void* reader(void*) {
  reader_tid = gettid();
  char buf[4096];
  ssize_t n = read(empty_pipe[0], buf, sizeof buf);
  if (n != sizeof MESSAGE || std::memcmp(buf, MESSAGE, sizeof MESSAGE) != 0) {
    reader_result = 2;
    return nullptr;
  }
  reader_result = read(empty_pipe[0], buf, sizeof buf) == 0 ? 1 : 3;
  return nullptr;
}

void* writer(void* arg) {
  writer_tid = gettid();
  const auto* data = static_cast<const std::uint8_t*>(arg);
  writer_result = write(full_pipe[1], data + FULL, EXTRA);
  close(full_pipe[1]);
  return nullptr;
}

}  // namespace

int main() {
  victim_sys(pipe(empty_pipe));
  victim_sys(pipe(full_pipe));
  victim_sys(fcntl(full_pipe[1], F_SETPIPE_SZ, FULL));
  victim_check(fcntl(full_pipe[1], F_GETPIPE_SZ) == static_cast<int>(FULL), "pipe size is not 64 KiB");
  static std::uint8_t data[FULL + EXTRA];
  victim_fill(data, sizeof data, 12);
  victim_check(write(full_pipe[1], data, FULL) == static_cast<ssize_t>(FULL), "filling the pipe");
  pthread_t tr, tw;
  victim_check(pthread_create(&tr, nullptr, reader, nullptr) == 0, "pthread_create");
  victim_check(pthread_create(&tw, nullptr, writer, data) == 0, "pthread_create");
  while (reader_tid == 0 || writer_tid == 0) sched_yield();
  victim_wait_in_syscall(reader_tid, {SYS_read});
  victim_wait_in_syscall(writer_tid, {SYS_write});

  victim_ready();
  victim_wait_go();

  victim_check(reader_result == 0, "reader returned before go");
  victim_check(write(empty_pipe[1], MESSAGE, sizeof MESSAGE) == sizeof MESSAGE, "write message");
  close(empty_pipe[1]);

  static std::uint8_t got[FULL + EXTRA + 1];
  std::size_t total = 0;
  for (;;) {
    ssize_t n = read(full_pipe[0], got + total, sizeof got - total);
    victim_check(n >= 0, "read full pipe: %s", std::strerror(errno));
    if (n == 0) break;
    total += static_cast<std::size_t>(n);
    victim_check(total <= FULL + EXTRA, "more than %zu bytes came out of the full pipe", FULL + EXTRA);
  }
  victim_check(total == FULL + EXTRA, "%zu bytes came out of the full pipe, expected %zu", total, FULL + EXTRA);
  std::size_t bad = victim_verify(got, total, 12);
  victim_check(bad == total, "full pipe's data differs at offset %zu", bad);

  for (pthread_t t : {tr, tw}) {
    timespec deadline{};
    clock_gettime(CLOCK_REALTIME, &deadline);
    deadline.tv_sec += 10;
    victim_check(pthread_timedjoin_np(t, nullptr, &deadline) == 0, "pipe thread did not finish");
  }
  victim_check(reader_result != 2, "reader got the wrong message");
  victim_check(reader_result == 1, "reader did not see EOF");
  victim_check(writer_result == static_cast<ssize_t>(EXTRA), "blocked write returned %zd", writer_result.load());
  victim_pass();
}
