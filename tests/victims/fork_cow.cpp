// State: private anonymous memory and a private heap block shared
// copy-on-write between the victim and a forked child, after both wrote to
// parts of it: some pages are still shared (untouched since fork), some
// differ between parent and child at the same addresses.
// Checks: each process sees its own version of each page; pages neither
// touched are equal in both; a write after restore in one process is not
// seen by the other.
#include "victim.h"

#include <cstdlib>
#include <sys/wait.h>
#include <unistd.h>

namespace {

constexpr std::size_t N = 64;  // pages

// Seed of page i as process `who` (0 parent, 1 child) should see it:
// pages 0..15 untouched since fork, 16..31 written by the parent,
// 32..47 written by the child, 48..63 written by both.
std::uint64_t seed_of(std::size_t i, int who) {
  if (i < 16) return 1000 + i;
  if (i < 32) return who == 0 ? 2000 + i : 1000 + i;
  if (i < 48) return who == 1 ? 3000 + i : 1000 + i;
  return who == 0 ? 2000 + i : 3000 + i;
}

bool check(std::uint8_t* r, std::size_t page, int who, std::size_t* bad_page) {
  for (std::size_t i = 0; i < N; ++i)
    if (victim_verify(r + i * page, page, seed_of(i, who)) != page) {
      *bad_page = i;
      return false;
    }
  return true;
}

}  // namespace

int main() {
  const std::size_t page = static_cast<std::size_t>(sysconf(_SC_PAGESIZE));
  auto* r = static_cast<std::uint8_t*>(
      victim_sys(mmap(nullptr, N * page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0)));
  for (std::size_t i = 0; i < N; ++i) victim_fill(r + i * page, page, 1000 + i);
  auto* heap = static_cast<std::uint64_t*>(std::malloc(4096));
  for (int i = 0; i < 512; ++i) heap[i] = 0x1111;

  int cmd[2], ack[2];
  victim_sys(pipe(cmd));
  victim_sys(pipe(ack));
  pid_t pid = victim_sys(fork());
  if (pid == 0) {
    for (std::size_t i = 32; i < N; ++i) victim_fill(r + i * page, page, 3000 + i);
    for (int i = 0; i < 512; ++i) heap[i] = 0x2222;
    char c = 'r';
    victim_sys(write(ack[1], &c, 1));
    victim_check(read(cmd[0], &c, 1) == 1, "child: no command");
    std::size_t bad = 0;
    victim_check(check(r, page, 1, &bad), "child: page %zu has the wrong version", bad);
    for (int i = 0; i < 512; ++i) victim_check(heap[i] == 0x2222, "child: heap word %d is %#lx", i, heap[i]);
    r[5 * page] = 0xee;  // parent must not see this
    c = 'd';
    victim_sys(write(ack[1], &c, 1));
    victim_check(read(cmd[0], &c, 1) == 1, "child: no second command");
    victim_check(r[6 * page] == victim_pattern_byte(1006, 0), "child: sees the parent's write after restore");
    _exit(0);
  }
  for (std::size_t i = 16; i < 32; ++i) victim_fill(r + i * page, page, 2000 + i);
  for (std::size_t i = 48; i < N; ++i) victim_fill(r + i * page, page, 2000 + i);
  char c = 0;
  victim_check(read(ack[0], &c, 1) == 1, "child did not start");

  victim_ready();
  victim_wait_go();

  std::size_t bad = 0;
  victim_check(check(r, page, 0, &bad), "page %zu has the wrong version", bad);
  for (int i = 0; i < 512; ++i) victim_check(heap[i] == 0x1111, "heap word %d is %#lx", i, heap[i]);
  c = 'g';
  victim_sys(write(cmd[1], &c, 1));
  victim_check(read(ack[0], &c, 1) == 1, "child did not answer");
  victim_check(r[5 * page] == victim_pattern_byte(1005, 0), "the child's write after restore is visible in the parent");
  r[6 * page] = 0xdd;
  victim_sys(write(cmd[1], &c, 1));
  int st = victim_wait_child(pid);
  victim_check(WIFEXITED(st) && WEXITSTATUS(st) == 0, "child %s", victim_status_str(st).c_str());
  victim_pass();
}
