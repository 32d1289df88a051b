// app_memhog: a program with a large, constantly changing memory state.
//
//   app_memhog OUTFILE [MIB=200] [STEPS=30]
//
// MIB mebibytes of 64-bit words (one big anonymous allocation) plus a few
// thousand small heap blocks. Each step rewrites a quarter of the big
// array's pages (a different quarter each step, every word of those pages
// depends on its old value) and every small block, then hashes the whole
// state and prints
//   step S hash H
// to stdout and appends the same line to OUTFILE (open for the whole run).
// The last line is
//   final steps S hash H
#include "app_common.h"

#include <fcntl.h>
#include <memory>
#include <vector>

namespace {

constexpr size_t kPageWords = 4096 / sizeof(uint64_t);
constexpr size_t kBlocks = 4000;

uint64_t hash_words(uint64_t h, const uint64_t* w, size_t n) {
  for (size_t i = 0; i < n; ++i) h = (h ^ w[i]) * 0x100000001b3ULL;
  return h;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) app::die("usage: app_memhog OUTFILE [MIB] [STEPS]");
  const long mib = app::arg_long(argc, argv, 2, 200);
  const long steps = app::arg_long(argc, argv, 3, 30);
  int fd = open(argv[1], O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) app::die("open %s: %s", argv[1], strerror(errno));

  const size_t words = static_cast<size_t>(mib) * 1024 * 1024 / sizeof(uint64_t);
  const size_t pages = words / kPageWords;
  std::unique_ptr<uint64_t[]> big(new uint64_t[words]);
  for (size_t i = 0; i < words; ++i) big[i] = app::splitmix(i);
  std::vector<std::vector<uint64_t>> small(kBlocks);
  for (size_t b = 0; b < kBlocks; ++b) small[b].assign(1 + b % 61, app::splitmix(~b));
  app::say(1, "start memhog mib %ld pages %zu steps %ld\n", mib, pages, steps);

  uint64_t h = app::kFnvBasis;
  for (long s = 1; s <= steps; ++s) {
    const uint64_t key = app::splitmix(static_cast<uint64_t>(s));
    for (size_t p = static_cast<size_t>(s) % 4; p < pages; p += 4) {
      uint64_t* w = big.get() + p * kPageWords;
      for (size_t i = 0; i < kPageWords; ++i) w[i] = (w[i] ^ key) * 0x9e3779b97f4a7c15ULL + i;
    }
    for (auto& blk : small)
      for (auto& v : blk) v = app::splitmix(v + key);
    h = hash_words(h, big.get(), words);
    for (const auto& blk : small) h = hash_words(h, blk.data(), blk.size());
    char line[128];
    int len = snprintf(line, sizeof line, "step %ld hash %016llx\n", s, static_cast<unsigned long long>(h));
    app::write_all(1, line, static_cast<size_t>(len), "stdout");
    app::write_all(fd, line, static_cast<size_t>(len), argv[1]);
  }
  char line[128];
  int len = snprintf(line, sizeof line, "final steps %ld hash %016llx\n", steps, static_cast<unsigned long long>(h));
  app::write_all(1, line, static_cast<size_t>(len), "stdout");
  app::write_all(fd, line, static_cast<size_t>(len), argv[1]);
  close(fd);
  return 0;
}
