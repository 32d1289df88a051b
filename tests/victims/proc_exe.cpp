// State: the process's executable: /proc/self/exe (mm->exe_file) and the
// file-backed mappings of the binary.
// Checks: /proc/self/exe still resolves to the same path and to the same
// file (device and inode), and /proc/self/maps still has the binary's
// executable mapping.
#include "victim.h"

#include <sys/stat.h>
#include <unistd.h>

namespace {

std::string exe_link() {
  char buf[4096] = {};
  victim_sys(readlink("/proc/self/exe", buf, sizeof buf - 1));
  return buf;
}

}  // namespace

int main() {
  const std::string path = exe_link();
  struct stat before {};
  victim_sys(stat("/proc/self/exe", &before));

  victim_ready();
  victim_wait_go();

  const std::string now = exe_link();
  victim_check(now == path, "/proc/self/exe is %s, was %s", now.c_str(), path.c_str());
  struct stat st {};
  victim_sys(stat("/proc/self/exe", &st));
  victim_check(st.st_dev == before.st_dev && st.st_ino == before.st_ino, "/proc/self/exe is another file");
  std::string maps = victim_read_file("/proc/self/maps");
  bool found = false;
  std::size_t at = 0;
  while ((at = maps.find(path, at)) != std::string::npos) {
    std::size_t bol = maps.rfind('\n', at);
    bol = bol == std::string::npos ? 0 : bol + 1;
    std::string line = maps.substr(bol, at - bol);
    if (line.find(" r-xp ") != std::string::npos) found = true;
    at += path.size();
  }
  victim_check(found, "no r-xp mapping of %s in /proc/self/maps", path.c_str());
  victim_pass();
}
