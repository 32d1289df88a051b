// Shared protocol of the victim programs: see victim.h.
#include "victim.h"

#include <cstdarg>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <csetjmp>
#include <csignal>
#include <fcntl.h>
#include <sys/wait.h>
#include <unistd.h>

namespace {

// The victim's own pid, taken before main(); a forked child differs.
pid_t main_pid() {
  static const pid_t pid = getpid();
  return pid;
}
[[maybe_unused]] const pid_t main_pid_at_start = main_pid();

// Writes all of s to fd, ignoring errors (there is nobody to tell).
void write_all(int fd, const char* s, std::size_t n) {
  while (n > 0) {
    ssize_t w = write(fd, s, n);
    if (w < 0) {
      if (errno == EINTR) continue;
      return;
    }
    s += w;
    n -= static_cast<std::size_t>(w);
  }
}

void write_line(int fd, const std::string& s) {
  std::string line = s + "\n";
  write_all(fd, line.data(), line.size());
}

std::string vformat(const char* fmt, va_list ap) {
  char buf[1024];
  std::vsnprintf(buf, sizeof buf, fmt, ap);
  return buf;
}

void sleep_10ms() {
  timespec ts{0, 10 * 1000 * 1000};
  while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
  }
}

}  // namespace

void victim_ready() {
  std::fflush(nullptr);
  write_line(STDOUT_FILENO, "ready");
}

void victim_wait_go() {
  const char* go = std::getenv("CKPT_TEST_GO");
  if (go == nullptr) return;
  const std::string path = go;  // getenv's pointer is not ours to keep
  while (access(path.c_str(), F_OK) != 0) {
    // Retry with a fresh 10 ms on EINTR: the victim may take signals here.
    timespec ts{0, 10 * 1000 * 1000};
    nanosleep(&ts, nullptr);
  }
}

void victim_pass() {
  std::fflush(nullptr);
  write_line(STDOUT_FILENO, "PASS");
  _exit(0);
}

void victim_fail_at(const char* file, int line, const char* fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  std::string msg = vformat(fmt, ap);
  va_end(ap);
  const char* base = std::strrchr(file, '/');
  base = base ? base + 1 : file;
  std::fflush(nullptr);
  std::string text = std::string("FAIL ") + base + ":" + std::to_string(line) + ": " + msg;
  if (getpid() != main_pid()) {
    write_line(STDERR_FILENO, "child " + std::to_string(getpid()) + ": " + text);
  } else {
    write_line(STDOUT_FILENO, text);
  }
  _exit(1);
}

void victim_log(const char* fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  std::string msg = vformat(fmt, ap);
  va_end(ap);
  write_line(STDERR_FILENO, msg);
}

std::string victim_scratch(const char* name) {
  static const std::string dir = [] {
    if (const char* d = std::getenv("CKPT_TEST_DIR"); d != nullptr && *d != '\0') return std::string(d);
    char buf[4096];
    if (getcwd(buf, sizeof buf) == nullptr) victim_fail("getcwd: %s", std::strerror(errno));
    return std::string(buf);
  }();
  return dir + "/" + name;
}

std::string victim_read_file(const std::string& path) {
  int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) victim_fail("open %s: %s", path.c_str(), std::strerror(errno));
  std::string out;
  char buf[4096];
  for (;;) {
    ssize_t r = read(fd, buf, sizeof buf);
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) victim_fail("read %s: %s", path.c_str(), std::strerror(errno));
    if (r == 0) break;
    out.append(buf, static_cast<std::size_t>(r));
  }
  close(fd);
  return out;
}

std::string victim_fd_path(int fd) {
  char buf[4096] = {};
  victim_sys(readlink(("/proc/self/fd/" + std::to_string(fd)).c_str(), buf, sizeof buf - 1));
  return buf;
}

void victim_wait_in_syscall(pid_t tid, std::initializer_list<long> nrs) {
  const std::string path = "/proc/self/task/" + std::to_string(tid) + "/syscall";
  std::string s;
  for (int i = 0; i < 1000; ++i) {
    s = victim_read_file(path);
    // "NR arg1 ... sp pc" while blocked, "running" or "-1 sp pc" otherwise.
    if (!s.empty() && s != "running\n") {
      long nr = std::strtol(s.c_str(), nullptr, 10);
      for (long want : nrs)
        if (nr == want) return;
    }
    sleep_10ms();
  }
  if (!s.empty() && s.back() == '\n') s.pop_back();
  victim_fail("thread %d did not block in the expected syscall within 10 s (%s: %s)", tid, path.c_str(), s.c_str());
}

namespace {
thread_local sigjmp_buf probe_env;
void probe_handler(int) { siglongjmp(probe_env, 1); }
}  // namespace

bool victim_faults(volatile std::uint8_t* p, bool write) {
  struct sigaction sa {}, old_segv{}, old_bus{};
  sa.sa_handler = probe_handler;
  sa.sa_flags = SA_NODEFER;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGSEGV, &sa, &old_segv);
  sigaction(SIGBUS, &sa, &old_bus);
  bool faulted = true;
  if (sigsetjmp(probe_env, 1) == 0) {
    if (write) {
      *p = *p;  // not reached on a PROT_NONE page; rewrites the same value otherwise
    } else {
      [[maybe_unused]] std::uint8_t v = *p;
    }
    faulted = false;
  }
  sigaction(SIGSEGV, &old_segv, nullptr);
  sigaction(SIGBUS, &old_bus, nullptr);
  return faulted;
}

std::uint8_t victim_pattern_byte(std::uint64_t seed, std::size_t i) {
  // splitmix64 of (seed, 8-byte word index), one byte of it.
  std::uint64_t z = seed * 0x9e3779b97f4a7c15ULL + (i / 8) + 1;
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  z ^= z >> 31;
  return static_cast<std::uint8_t>(z >> (8 * (i % 8)));
}

void victim_fill(void* p, std::size_t n, std::uint64_t seed) {
  auto* b = static_cast<std::uint8_t*>(p);
  for (std::size_t i = 0; i < n; ++i) b[i] = victim_pattern_byte(seed, i);
}

std::size_t victim_verify(const void* p, std::size_t n, std::uint64_t seed) {
  const auto* b = static_cast<const std::uint8_t*>(p);
  for (std::size_t i = 0; i < n; ++i)
    if (b[i] != victim_pattern_byte(seed, i)) return i;
  return n;
}

int victim_wait_child(pid_t pid) {
  int status = 0;
  for (;;) {
    pid_t r = waitpid(pid, &status, 0);
    if (r == pid) return status;
    if (r < 0 && errno == EINTR) continue;
    victim_fail("waitpid(%d): %s", pid, r < 0 ? std::strerror(errno) : "unexpected pid");
  }
}

std::string victim_status_str(int status) {
  if (WIFEXITED(status)) return "exited " + std::to_string(WEXITSTATUS(status));
  if (WIFSIGNALED(status)) return "killed by signal " + std::to_string(WTERMSIG(status));
  return "status " + std::to_string(status);
}

char victim_proc_state(pid_t pid) {
  const std::string s = victim_read_file("/proc/" + std::to_string(pid) + "/stat");
  // The command name may hold spaces and parentheses: the state follows the last ')'.
  const std::size_t at = s.rfind(')');
  return at == std::string::npos || at + 2 >= s.size() ? '?' : s[at + 2];
}

VictimIds victim_ids() { return VictimIds{getpid(), getppid(), getpgid(0), getsid(0)}; }

void victim_report_and_recheck_ids(int fd, const char* who) {
  const VictimIds saved = victim_ids();
  victim_sys(write(fd, &saved, sizeof saved));
  victim_wait_go();
  const VictimIds now = victim_ids();
  victim_check(now.pid == saved.pid && now.ppid == saved.ppid && now.pgid == saved.pgid && now.sid == saved.sid,
               "%s: pid/ppid/pgid/sid %d/%d/%d/%d, were %d/%d/%d/%d", who, now.pid, now.ppid, now.pgid, now.sid,
               saved.pid, saved.ppid, saved.pgid, saved.sid);
}

std::vector<VictimIds> victim_read_ids(int fd, int n) {
  std::vector<VictimIds> procs;
  for (int i = 0; i < n; ++i) {
    VictimIds id{};
    victim_check(read(fd, &id, sizeof id) == sizeof id, "only %d of %d processes reported", i, n);
    procs.push_back(id);
  }
  return procs;
}

void victim_check_ids_from_outside(const std::vector<VictimIds>& procs) {
  for (const VictimIds& id : procs) {
    victim_check(getpgid(id.pid) == id.pgid, "process %d: pgid %d, was %d", id.pid, getpgid(id.pid), id.pgid);
    victim_check(getsid(id.pid) == id.sid, "process %d: sid %d, was %d", id.pid, getsid(id.pid), id.sid);
  }
}
