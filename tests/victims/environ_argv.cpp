// State: the process's argument and environment areas: /proc/self/cmdline
// and /proc/self/environ are read by the kernel from the memory between
// mm->arg_start/arg_end and env_start/env_end. The victim overwrites the
// first character of argv[0] in place (as setproctitle-style code does),
// adds VICTIM_ENV_ADDED with setenv() (heap only, not in /proc) and keeps a
// copy of both /proc files.
// Checks: /proc/self/cmdline equals the saved copy, including the modified
// character (so arg_start/arg_end point at the restored memory);
// /proc/self/environ equals the saved copy; getenv() finds the added
// variable and an inherited one; argv and environ pointers still work.
#include "victim.h"

#include <cstdlib>
#include <unistd.h>

extern char** environ;

int main(int argc, char** argv) {
  victim_check(argc >= 1 && argv[0][0] != '\0', "no argv[0]");
  argv[0][0] = '#';
  victim_sys(setenv("VICTIM_ENV_ADDED", "added-after-start", 1));
  const std::string cmdline = victim_read_file("/proc/self/cmdline");
  const std::string env = victim_read_file("/proc/self/environ");
  victim_check(!cmdline.empty() && cmdline[0] == '#', "/proc/self/cmdline does not show the changed argv[0]");
  std::string args;
  for (int i = 0; i < argc; ++i) args += std::string(argv[i]) + '\0';
  victim_check(args == cmdline, "argv and /proc/self/cmdline differ before checkpoint");
  const char* path = std::getenv("PATH");
  const std::string path_value = path ? path : "";

  victim_ready();
  victim_wait_go();

  std::string now = victim_read_file("/proc/self/cmdline");
  victim_check(now == cmdline, "/proc/self/cmdline (%zu bytes) differs from before (%zu bytes)", now.size(),
               cmdline.size());
  now = victim_read_file("/proc/self/environ");
  victim_check(now == env, "/proc/self/environ (%zu bytes) differs from before (%zu bytes)", now.size(), env.size());
  std::string again;
  for (int i = 0; i < argc; ++i) again += std::string(argv[i]) + '\0';
  victim_check(again == cmdline, "argv in memory differs from /proc/self/cmdline");
  const char* added = std::getenv("VICTIM_ENV_ADDED");
  victim_check(added && std::strcmp(added, "added-after-start") == 0, "VICTIM_ENV_ADDED is %s", added ? added : "unset");
  path = std::getenv("PATH");
  victim_check((path ? path : "") == path_value, "PATH changed");
  std::size_t n = 0;
  for (char** e = environ; *e; ++e) ++n;
  victim_check(n > 0, "environ is empty");
  victim_pass();
}
