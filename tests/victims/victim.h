// Shared protocol of the victim programs (tests/victims/README.md).
//
// A victim builds one kind of state, calls victim_ready() (prints "ready"),
// then victim_wait_go() (waits for the file named by $CKPT_TEST_GO; the
// harness checkpoints, kills and restores it meanwhile), then checks its own
// state and ends with victim_pass() ("PASS", exit 0) or victim_fail(...)
// ("FAIL file:line: message", exit 1). Nothing else goes to stdout.
//
// In a forked child of the victim, victim_fail() writes to stderr and exits
// the child with status 1 instead; the parent turns that into its own FAIL.
#pragma once

#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <initializer_list>
#include <string>
#include <type_traits>
#include <vector>
#include <sys/mman.h>
#include <sys/types.h>

void victim_ready();
void victim_wait_go();
[[noreturn]] void victim_pass();
[[noreturn]] void victim_fail_at(const char* file, int line, const char* fmt, ...)
    __attribute__((format(printf, 3, 4)));

#define victim_fail(...) victim_fail_at(__FILE__, __LINE__, __VA_ARGS__)
#define victim_check(cond, ...)                                                \
  do {                                                                         \
    if (!(cond)) victim_fail_at(__FILE__, __LINE__, __VA_ARGS__);              \
  } while (0)

// victim_sys(call): the call's result; FAIL naming the call and errno if it
// returned -1 (or MAP_FAILED for a pointer).
template <class T>
T victim_sys_at(T r, const char* what, const char* file, int line) {
  if constexpr (std::is_pointer_v<T>) {
    if (reinterpret_cast<void*>(r) == MAP_FAILED) victim_fail_at(file, line, "%s: %s", what, std::strerror(errno));
  } else {
    if (r == static_cast<T>(-1)) victim_fail_at(file, line, "%s: %s", what, std::strerror(errno));
  }
  return r;
}
#define victim_sys(call) victim_sys_at((call), #call, __FILE__, __LINE__)

// Diagnostics to stderr (never stdout).
void victim_log(const char* fmt, ...) __attribute__((format(printf, 1, 2)));

// Path of a scratch file: $CKPT_TEST_DIR/name if set, else the working
// directory at the first call (absolute, so a later chdir does not matter).
std::string victim_scratch(const char* name);

// Blocks until thread `tid` of this process sits in one of the system calls
// `nrs` (per /proc/self/task/TID/syscall); FAIL after 10 s. Use it before
// victim_ready() so that the checkpoint finds the thread inside the call.
void victim_wait_in_syscall(pid_t tid, std::initializer_list<long> nrs);

// True if reading (or writing, if `write`) the byte at p raises SIGSEGV or
// SIGBUS. Installs a handler for the probe only; the memory is not changed.
bool victim_faults(volatile std::uint8_t* p, bool write);

// Whole contents of a (proc) file; FAIL if it cannot be read.
std::string victim_read_file(const std::string& path);

// What /proc/self/fd/FD links to ("/path", "/x (deleted)", "pipe:[...]").
std::string victim_fd_path(int fd);

// Deterministic pattern: byte i of a buffer filled with `seed`.
std::uint8_t victim_pattern_byte(std::uint64_t seed, std::size_t i);
void victim_fill(void* p, std::size_t n, std::uint64_t seed);
// Offset of the first byte that differs from the pattern, or n if none.
std::size_t victim_verify(const void* p, std::size_t n, std::uint64_t seed);

// waitpid() that retries on EINTR; returns the status, FAILs on error.
int victim_wait_child(pid_t pid);
// Exit status of a child as text ("exited 3", "killed by signal 9").
std::string victim_status_str(int status);

// State letter of /proc/PID/stat ('Z' for a zombie); FAIL if unreadable.
char victim_proc_state(pid_t pid);

// ---- process-tree victims ----------------------------------------------------

// A process's ids as it sees them.
struct VictimIds {
  pid_t pid, ppid, pgid, sid;
};
VictimIds victim_ids();
// In a process of the tree: writes its ids to `fd` (a pipe to the victim),
// waits for go, and FAILs naming `who` unless its ids are still the same.
void victim_report_and_recheck_ids(int fd, const char* who);
// In the victim: the ids `n` processes reported (in any order).
std::vector<VictimIds> victim_read_ids(int fd, int n);
// In the victim, after go: FAILs unless getpgid()/getsid() of each process
// equal what it reported.
void victim_check_ids_from_outside(const std::vector<VictimIds>& procs);
