// State: descriptors of objects that only descriptors reach, in the variants
// memfd.cpp and deleted_file_fd.cpp leave out: a sparse 64 MiB memfd (two
// pages of data) sealed against writes and never mapped; a memfd made
// without MFD_ALLOW_SEALING and one made with it but no seals; a memfd open
// O_RDWR at offset 100 and O_RDONLY (opened again through /proc/self/fd) at
// offset 200, mapped only by a forked child; a deleted file of mode 0400
// open O_RDWR|O_APPEND; a deleted file whose path was taken by a new file.
// Checks: contents, sizes, that holes stayed holes, seals, access modes and
// offsets of both descriptions, that they and the child's mapping are one
// object, the 0400 mode and O_APPEND, that the new file at the taken path is
// left alone while the deleted one still shows "(deleted)" in its directory.
#include "victim.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

namespace {

constexpr std::size_t kSparse = 64u << 20;
constexpr std::size_t kPage = 4096;
constexpr std::size_t kShared = 64 * kPage;

}  // namespace

int main() {
  // Sparse, sealed, never mapped.
  int sparse = victim_sys(memfd_create("victim-sparse", MFD_ALLOW_SEALING));
  victim_sys(ftruncate(sparse, kSparse));
  static std::uint8_t page[kPage], got[kPage];
  victim_fill(page, kPage, 21);
  victim_check(pwrite(sparse, page, kPage, 0) == kPage, "pwrite");
  victim_check(pwrite(sparse, page, kPage, 40u << 20) == kPage, "pwrite");
  victim_sys(fcntl(sparse, F_ADD_SEALS, F_SEAL_WRITE | F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL));

  int unsealable = victim_sys(memfd_create("victim-unsealable", 0));
  int unsealed = victim_sys(memfd_create("victim-unsealed", MFD_ALLOW_SEALING));

  // Two descriptions of one memfd; its only mapping is in a child.
  int rw = victim_sys(memfd_create("victim-two-descriptions", MFD_CLOEXEC));
  victim_sys(ftruncate(rw, kShared));
  int ro = victim_sys(open(("/proc/self/fd/" + std::to_string(rw)).c_str(), O_RDONLY));
  victim_sys(lseek(rw, 100, SEEK_SET));
  victim_sys(lseek(ro, 200, SEEK_SET));
  int sync[2];
  victim_sys(pipe(sync));
  pid_t child = victim_sys(fork());
  if (child == 0) {
    auto* m = static_cast<std::uint8_t*>(victim_sys(mmap(nullptr, kShared, PROT_READ | PROT_WRITE, MAP_SHARED, rw, 0)));
    close(rw);
    close(ro);
    victim_fill(m, kShared, 22);
    victim_check(write(sync[1], "r", 1) == 1, "write");
    close(sync[0]);
    close(sync[1]);
    victim_wait_go();
    victim_check(victim_verify(m, kShared, 22) == kShared, "the child's mapping lost its contents");
    m[5000] = 0x5a;
    _exit(0);
  }

  char ready = 0;
  victim_check(read(sync[0], &ready, 1) == 1, "the child did not map the memfd");
  close(sync[0]);
  close(sync[1]);

  // Deleted, mode 0400, open for appending.
  const std::string ro_path = victim_scratch("unlinked_fds.ro");
  int app = victim_sys(open(ro_path.c_str(), O_RDWR | O_CREAT | O_EXCL | O_APPEND, 0400));
  victim_check(write(app, page, 1000) == 1000, "write");
  victim_sys(unlink(ro_path.c_str()));

  // Deleted, and a new file at its path.
  const std::string taken = victim_scratch("unlinked_fds.taken");
  int old = victim_sys(open(taken.c_str(), O_RDWR | O_CREAT | O_TRUNC, 0600));
  victim_check(write(old, "old", 3) == 3, "write");
  victim_sys(unlink(taken.c_str()));
  int fresh = victim_sys(open(taken.c_str(), O_WRONLY | O_CREAT | O_EXCL, 0600));
  victim_check(write(fresh, "new", 3) == 3, "write");
  close(fresh);

  victim_ready();
  victim_wait_go();

  struct stat st {};
  victim_sys(fstat(sparse, &st));
  victim_check(st.st_size == static_cast<off_t>(kSparse), "sparse memfd size %lld", static_cast<long long>(st.st_size));
  victim_check(st.st_blocks * 512 <= (1 << 20), "sparse memfd holds %lld blocks: its holes were filled",
               static_cast<long long>(st.st_blocks));
  victim_check(pread(sparse, got, kPage, 0) == kPage && victim_verify(got, kPage, 21) == kPage, "sparse memfd page 0");
  victim_check(pread(sparse, got, kPage, 40u << 20) == kPage && victim_verify(got, kPage, 21) == kPage,
               "sparse memfd page at 40 MiB");
  victim_check(pread(sparse, got, kPage, 20u << 20) == kPage && got[0] == 0 && got[kPage - 1] == 0, "hole not zero");
  const int seals = victim_sys(fcntl(sparse, F_GET_SEALS));
  victim_check(seals == (F_SEAL_WRITE | F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL), "sparse memfd seals %#x", seals);
  victim_check(pwrite(sparse, "x", 1, 0) == -1 && errno == EPERM, "write seal not enforced");
  victim_check(victim_fd_path(sparse) == "/memfd:victim-sparse (deleted)", "sparse memfd links to %s",
               victim_fd_path(sparse).c_str());

  victim_check(fcntl(unsealable, F_GET_SEALS) == F_SEAL_SEAL, "memfd made without MFD_ALLOW_SEALING has seals %#x",
               fcntl(unsealable, F_GET_SEALS));
  victim_check(fcntl(unsealed, F_GET_SEALS) == 0, "unsealed memfd has seals %#x", fcntl(unsealed, F_GET_SEALS));
  victim_sys(fcntl(unsealed, F_ADD_SEALS, F_SEAL_GROW));

  const int status = victim_wait_child(child);
  victim_check(WIFEXITED(status) && WEXITSTATUS(status) == 0, "child: %s", victim_status_str(status).c_str());
  victim_check((fcntl(rw, F_GETFL) & O_ACCMODE) == O_RDWR, "first description is not O_RDWR");
  victim_check((fcntl(ro, F_GETFL) & O_ACCMODE) == O_RDONLY, "second description is not O_RDONLY");
  victim_check(fcntl(rw, F_GETFD) & FD_CLOEXEC, "FD_CLOEXEC lost");
  const off_t off_rw = lseek(rw, 0, SEEK_CUR), off_ro = lseek(ro, 0, SEEK_CUR);
  victim_check(off_rw == 100, "first description offset %lld", static_cast<long long>(off_rw));
  victim_check(off_ro == 200, "second description offset %lld", static_cast<long long>(off_ro));
  std::uint8_t b = 0;
  victim_check(pread(ro, &b, 1, 5000) == 1 && b == 0x5a,
               "the child's write through its mapping is not seen through the fd");
  victim_check(pread(ro, &b, 1, 6000) == 1 && b == victim_pattern_byte(22, 6000), "memfd contents written by the child");
  victim_check(pwrite(rw, "y", 1, 7000) == 1 && pread(ro, &b, 1, 7000) == 1 && b == 'y',
               "the two descriptions are not one memfd");
  victim_check(write(ro, "z", 1) == -1 && errno == EBADF, "the O_RDONLY description is writable");

  victim_sys(fstat(app, &st));
  victim_check((st.st_mode & 07777) == 0400, "deleted file mode %o", static_cast<unsigned>(st.st_mode & 07777));
  victim_check(st.st_nlink == 0 && st.st_size == 1000, "deleted file: %lu links, size %lld",
               static_cast<unsigned long>(st.st_nlink), static_cast<long long>(st.st_size));
  victim_check(fcntl(app, F_GETFL) & O_APPEND, "O_APPEND lost");
  victim_check(write(app, "a", 1) == 1 && pread(app, &b, 1, 1000) == 1 && b == 'a', "append to the deleted file");
  victim_check(pread(app, got, 1000, 0) == 1000 && victim_verify(got, 1000, 21) == 1000, "deleted file contents");
  victim_check(victim_fd_path(app) == ro_path + " (deleted)", "deleted file links to %s", victim_fd_path(app).c_str());

  char text[4] = {};
  victim_check(pread(old, text, 3, 0) == 3 && std::strcmp(text, "old") == 0, "deleted file at the taken path reads %s", text);
  victim_sys(fstat(old, &st));
  victim_check(st.st_nlink == 0, "deleted file at the taken path has %lu links", static_cast<unsigned long>(st.st_nlink));
  const std::string link = victim_fd_path(old);
  // Restored beside the new file under a unique name, unless the original
  // goes on.
  victim_check(link == taken + " (deleted)" || (link.starts_with(taken + ".") && link.ends_with(" (deleted)")),
               "deleted file at the taken path links to %s", link.c_str());
  const std::string now = victim_read_file(taken);
  victim_check(now == "new", "the new file at the taken path reads %s", now.c_str());
  unlink(taken.c_str());
  victim_pass();
}
