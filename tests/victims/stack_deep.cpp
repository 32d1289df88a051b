// State: the main thread's stack grown by 2000 nested calls, each frame
// holding 1 KiB of locals with a pattern (about 2 MiB of stack, below the
// initial stack pages); the wait happens at the deepest frame.
// Checks: on the way back up every frame still holds its pattern, return
// addresses and saved registers work (the calls return normally), and the
// result computed through the recursion is right.
#include "victim.h"

namespace {

constexpr int DEPTH = 2000;

__attribute__((noinline)) std::uint64_t descend(int level) {
  volatile std::uint8_t frame[1024];
  for (std::size_t i = 0; i < sizeof frame; ++i) frame[i] = victim_pattern_byte(static_cast<std::uint64_t>(level), i);
  std::uint64_t below = 0;
  if (level + 1 < DEPTH) {
    below = descend(level + 1);
  } else {
    victim_ready();
    victim_wait_go();
  }
  for (std::size_t i = 0; i < sizeof frame; ++i)
    victim_check(frame[i] == victim_pattern_byte(static_cast<std::uint64_t>(level), i),
                 "frame at depth %d differs at offset %zu", level, i);
  return below * 31 + static_cast<std::uint64_t>(level) + frame[level % 1024];
}

std::uint64_t expected() {
  std::uint64_t v = 0;
  for (int level = DEPTH - 1; level >= 0; --level)
    v = v * 31 + static_cast<std::uint64_t>(level) + victim_pattern_byte(static_cast<std::uint64_t>(level), static_cast<std::size_t>(level % 1024));
  return v;
}

}  // namespace

int main() {
  const std::uint64_t want = expected();
  const std::uint64_t got = descend(0);
  victim_check(got == want, "recursion result %#lx, expected %#lx", static_cast<unsigned long>(got),
               static_cast<unsigned long>(want));
  victim_pass();
}
