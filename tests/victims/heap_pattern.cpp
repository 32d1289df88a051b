// State: the malloc heap. 2000 blocks of 16 B..64 KiB from the main arena
// (brk), every third one freed again (holes and free lists in the arena),
// one 32 MiB block (malloc's own mmap), and 200 blocks allocated by a second
// thread, which come from a separate, mmap'ed malloc arena.
// Checks: every live block still holds its pattern, and malloc/free still
// work on the restored arenas (allocate and free a few thousand blocks, then
// free everything).
#include "victim.h"

#include <cstdlib>
#include <pthread.h>
#include <vector>

namespace {

struct Block {
  void* p;
  std::size_t n;
  std::uint64_t seed;
};

std::size_t size_of(std::size_t i) { return 16 + (i * 7919) % (64 * 1024); }

void* thread_alloc(void* arg) {
  auto* blocks = static_cast<std::vector<Block>*>(arg);
  for (std::size_t i = 0; i < 200; ++i) {
    std::size_t n = 64 + (i * 331) % 8192;
    void* p = std::malloc(n);
    if (p == nullptr) return nullptr;
    victim_fill(p, n, 100000 + i);
    (*blocks)[i] = Block{p, n, 100000 + i};
  }
  return arg;
}

}  // namespace

int main() {
  std::vector<Block> blocks;
  blocks.reserve(2000);
  for (std::size_t i = 0; i < 2000; ++i) {
    std::size_t n = size_of(i);
    void* p = std::malloc(n);
    victim_check(p != nullptr, "malloc(%zu) failed", n);
    victim_fill(p, n, i);
    blocks.push_back(Block{p, n, i});
  }
  for (std::size_t i = 0; i < blocks.size(); i += 3) {
    std::free(blocks[i].p);
    blocks[i].p = nullptr;
  }
  const std::size_t big_n = 32u << 20;
  void* big = std::malloc(big_n);
  victim_check(big != nullptr, "malloc(32 MiB) failed");
  victim_fill(big, big_n, 777);

  std::vector<Block> thread_blocks(200);
  pthread_t t;
  victim_check(pthread_create(&t, nullptr, thread_alloc, &thread_blocks) == 0, "pthread_create");
  void* ret = nullptr;
  pthread_join(t, &ret);
  victim_check(ret != nullptr, "thread allocation failed");

  victim_ready();
  victim_wait_go();

  for (const Block& b : blocks) {
    if (b.p == nullptr) continue;
    std::size_t bad = victim_verify(b.p, b.n, b.seed);
    victim_check(bad == b.n, "main-arena block %lu (%zu bytes at %p) differs at offset %zu",
                 static_cast<unsigned long>(b.seed), b.n, b.p, bad);
  }
  std::size_t bad = victim_verify(big, big_n, 777);
  victim_check(bad == big_n, "32 MiB block at %p differs at offset %zu", big, bad);
  for (const Block& b : thread_blocks) {
    std::size_t off = victim_verify(b.p, b.n, b.seed);
    victim_check(off == b.n, "thread-arena block %lu at %p differs at offset %zu",
                 static_cast<unsigned long>(b.seed), b.p, off);
  }

  // The allocator's own state (free lists, top chunk, arena list) must work.
  std::vector<void*> more;
  for (std::size_t i = 0; i < 3000; ++i) {
    std::size_t n = 8 + (i * 104729) % 20000;
    void* p = std::malloc(n);
    victim_check(p != nullptr, "malloc(%zu) after restore failed", n);
    std::memset(p, 0xa5, n);
    more.push_back(p);
  }
  for (void* p : more) std::free(p);
  for (const Block& b : blocks) std::free(b.p);
  for (const Block& b : thread_blocks) std::free(b.p);
  std::free(big);
  victim_pass();
}
