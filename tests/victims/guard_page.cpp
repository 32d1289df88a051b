// State: guard pages. A 5-page read-write region whose middle page is
// PROT_NONE (so it is three VMAs), all data pages written; and a thread
// created with a 4-page guard below its stack, parked on a condition
// variable while the checkpoint happens.
// Checks: the data pages hold their patterns, the middle page faults on read
// and write, the thread's guard still faults (probed from the main thread)
// and its stack holds the locals it wrote before the checkpoint.
#include "victim.h"

#include <pthread.h>
#include <unistd.h>

namespace {

struct Park {
  pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
  pthread_cond_t cv = PTHREAD_COND_INITIALIZER;
  bool ready = false;
  bool go = false;
  bool stack_ok = false;
};

void* parked(void* arg) {
  auto* park = static_cast<Park*>(arg);
  volatile std::uint8_t local[8192];
  for (std::size_t i = 0; i < sizeof local; ++i) local[i] = victim_pattern_byte(61, i);
  pthread_mutex_lock(&park->mu);
  park->ready = true;
  pthread_cond_broadcast(&park->cv);
  while (!park->go) pthread_cond_wait(&park->cv, &park->mu);
  bool ok = true;
  for (std::size_t i = 0; i < sizeof local; ++i) ok = ok && local[i] == victim_pattern_byte(61, i);
  park->stack_ok = ok;
  pthread_mutex_unlock(&park->mu);
  return nullptr;
}

}  // namespace

int main() {
  const std::size_t page = static_cast<std::size_t>(sysconf(_SC_PAGESIZE));
  auto* r = static_cast<std::uint8_t*>(
      victim_sys(mmap(nullptr, 5 * page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0)));
  victim_fill(r, 5 * page, 60);
  victim_sys(mprotect(r + 2 * page, page, PROT_NONE));

  Park park;
  pthread_attr_t attr;
  pthread_attr_init(&attr);
  pthread_attr_setstacksize(&attr, 256 * 1024);
  pthread_attr_setguardsize(&attr, 4 * page);
  pthread_t t;
  victim_check(pthread_create(&t, &attr, parked, &park) == 0, "pthread_create");
  pthread_attr_destroy(&attr);
  pthread_mutex_lock(&park.mu);
  while (!park.ready) pthread_cond_wait(&park.cv, &park.mu);
  pthread_mutex_unlock(&park.mu);
  pthread_attr_t got;
  victim_check(pthread_getattr_np(t, &got) == 0, "pthread_getattr_np");
  void* stack_lo = nullptr;
  std::size_t stack_n = 0, guard_n = 0;
  pthread_attr_getstack(&got, &stack_lo, &stack_n);
  pthread_attr_getguardsize(&got, &guard_n);
  pthread_attr_destroy(&got);
  auto* guard_top = static_cast<std::uint8_t*>(stack_lo) - 1;
  victim_check(guard_n == 4 * page, "guard size %zu", guard_n);
  victim_check(victim_faults(guard_top, false), "thread stack guard readable before checkpoint");

  victim_ready();
  victim_wait_go();

  for (std::size_t i : {0, 1, 3, 4}) {
    // Each page's part of the one pattern that was written over all five.
    for (std::size_t j = 0; j < page; ++j)
      victim_check(r[i * page + j] == victim_pattern_byte(60, i * page + j), "page %zu differs at offset %zu", i, j);
  }
  victim_check(victim_faults(r + 2 * page, false), "guard page readable after restore");
  victim_check(victim_faults(r + 3 * page - 1, true), "guard page writable after restore");
  victim_check(victim_faults(guard_top, false), "thread stack guard readable after restore");
  victim_check(victim_faults(guard_top - (4 * page - 1), false), "bottom of thread stack guard readable");
  victim_check(!victim_faults(static_cast<std::uint8_t*>(stack_lo), false), "lowest thread stack page not readable");

  pthread_mutex_lock(&park.mu);
  park.go = true;
  pthread_cond_broadcast(&park.cv);
  pthread_mutex_unlock(&park.mu);
  pthread_join(t, nullptr);
  victim_check(park.stack_ok, "thread's stack locals changed");
  victim_pass();
}
