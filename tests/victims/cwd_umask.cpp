// State: the working directory (a fresh subdirectory of the scratch
// directory, entered with chdir) and the file creation mask (umask 027).
// Checks: getcwd() and /proc/self/cwd name the same directory (same device
// and inode as before); the umask is still 027 (and applies: a file created
// with mode 0666 by a relative path lands in that directory with mode 0640).
#include "victim.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

int main() {
  const std::string dir = victim_scratch("cwd_umask.dir");
  rmdir(dir.c_str());
  victim_sys(mkdir(dir.c_str(), 0755));
  victim_sys(chdir(dir.c_str()));
  umask(027);
  struct stat before {};
  victim_sys(stat(".", &before));
  char cwd_before[4096];
  victim_check(getcwd(cwd_before, sizeof cwd_before) != nullptr, "getcwd");

  victim_ready();
  victim_wait_go();

  char cwd[4096];
  victim_check(getcwd(cwd, sizeof cwd) != nullptr, "getcwd: %s", std::strerror(errno));
  victim_check(std::strcmp(cwd, cwd_before) == 0, "cwd is %s, was %s", cwd, cwd_before);
  char link[4096] = {};
  victim_sys(readlink("/proc/self/cwd", link, sizeof link - 1));
  victim_check(std::strcmp(link, cwd_before) == 0, "/proc/self/cwd is %s", link);
  struct stat now {};
  victim_sys(stat(".", &now));
  victim_check(now.st_dev == before.st_dev && now.st_ino == before.st_ino, "\".\" is another directory");
  mode_t m = umask(027);
  victim_check(m == 027, "umask %03o, expected 027", m);
  int fd = victim_sys(open("created", O_WRONLY | O_CREAT | O_EXCL, 0666));
  close(fd);
  struct stat f {};
  victim_sys(stat((dir + "/created").c_str(), &f));
  victim_check((f.st_mode & 0777) == 0640, "file created with 0666 has mode %03o", f.st_mode & 0777);
  unlink("created");
  victim_sys(chdir("/"));
  rmdir(dir.c_str());
  victim_pass();
}
