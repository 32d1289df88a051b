// State: open files whose paths changed: a 10000-byte file opened, read to
// offset 1234, then unlinked (the fd is its only reference); and a file
// opened at one path, positioned at 55, then renamed to another path.
// Checks: the unlinked file still has link count 0, size 10000, offset 1234,
// its bytes, /proc/self/fd shows "(deleted)", and it can be written; the
// renamed file's fd shows the new path, offset 55 and its bytes.
#include "victim.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

int main() {
  const std::string gone = victim_scratch("deleted_file_fd.dat");
  const std::string from = victim_scratch("deleted_file_fd.orig"), to = victim_scratch("deleted_file_fd.renamed");
  static std::uint8_t buf[10000];
  victim_fill(buf, sizeof buf, 9);
  int fd = victim_sys(open(gone.c_str(), O_RDWR | O_CREAT | O_TRUNC, 0600));
  victim_check(write(fd, buf, sizeof buf) == sizeof buf, "write");
  victim_sys(lseek(fd, 1234, SEEK_SET));
  victim_sys(unlink(gone.c_str()));
  int rn = victim_sys(open(from.c_str(), O_RDWR | O_CREAT | O_TRUNC, 0600));
  victim_check(write(rn, buf, 100) == 100, "write");
  victim_sys(lseek(rn, 55, SEEK_SET));
  victim_sys(rename(from.c_str(), to.c_str()));

  victim_ready();
  victim_wait_go();

  struct stat st {};
  victim_sys(fstat(fd, &st));
  victim_check(st.st_nlink == 0, "unlinked file has %lu links", static_cast<unsigned long>(st.st_nlink));
  victim_check(st.st_size == sizeof buf, "unlinked file size %lld", static_cast<long long>(st.st_size));
  victim_check(lseek(fd, 0, SEEK_CUR) == 1234, "unlinked file offset %lld", static_cast<long long>(lseek(fd, 0, SEEK_CUR)));
  victim_check(victim_fd_path(fd) == gone + " (deleted)", "unlinked file fd links to %s", victim_fd_path(fd).c_str());
  static std::uint8_t got[10000];
  victim_check(pread(fd, got, sizeof got, 0) == sizeof got, "read unlinked file");
  victim_check(victim_verify(got, sizeof got, 9) == sizeof got, "unlinked file's bytes differ");
  victim_check(write(fd, "x", 1) == 1 && pread(fd, got, 1, 1234) == 1 && got[0] == 'x', "unlinked file not writable");

  victim_check(victim_fd_path(rn) == to, "renamed file's fd links to %s, expected %s", victim_fd_path(rn).c_str(),
               to.c_str());
  victim_check(lseek(rn, 0, SEEK_CUR) == 55, "renamed file offset %lld", static_cast<long long>(lseek(rn, 0, SEEK_CUR)));
  victim_check(pread(rn, got, 100, 0) == 100 && victim_verify(got, 100, 9) == 100, "renamed file's bytes differ");
  unlink(to.c_str());
  victim_pass();
}
