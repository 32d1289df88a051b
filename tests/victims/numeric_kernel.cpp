// State: a multithreaded numeric computation in flight. Four threads run a
// deterministic stencil-and-reduce kernel over 256 Ki doubles (each thread
// its own chunk, pthread barriers between phases, partial sums combined in a
// fixed order, a running hash of every round's total), 40 rounds per cycle,
// cycle after cycle, so the checkpoint lands in the middle of the
// arithmetic, a barrier, or the combination step.
// Checks: every cycle's final hash equals the one a single thread computed
// with the same code before ready (bitwise; nothing about the computation
// may change across restore), and at least one whole cycle ran after go.
#include "victim.h"

#include <atomic>
#include <pthread.h>
#include <vector>

namespace {

constexpr int T = 4;
constexpr std::size_t N = 256 * 1024;
constexpr int ROUNDS = 40;

void init(double* v) {
  for (std::size_t i = 0; i < N; ++i) v[i] = (victim_pattern_byte(7, i) + 1) / 256.0;
}

std::size_t lo(int t) { return N / T * static_cast<std::size_t>(t); }
std::size_t hi(int t) { return N / T * static_cast<std::size_t>(t + 1); }

__attribute__((noinline)) void step(const double* in, double* out, int t, int round) {
  const double k = 1e-3 * round;
  for (std::size_t i = lo(t); i < hi(t); ++i) {
    double l = in[(i + N - 1) % N], r = in[(i + 1) % N], c = in[i];
    out[i] = 0.5 * c + 0.25 * (l + r) + c * (1.0 - c) * 0.125 + k;
    if (out[i] > 4.0) out[i] -= 3.0;
  }
}

__attribute__((noinline)) double partial(const double* v, int t) {
  double s = 0;
  for (std::size_t i = lo(t); i < hi(t); ++i) s += v[i];
  return s;
}

std::uint64_t mix(std::uint64_t h, double total) {
  std::uint64_t bits;
  std::memcpy(&bits, &total, 8);
  return (h ^ bits) * 0x100000001b3ULL;
}

std::uint64_t reference() {
  std::vector<double> a(N), b(N);
  init(a.data());
  double* cur = a.data();
  double* nxt = b.data();
  std::uint64_t h = 0xcbf29ce484222325ULL;
  for (int r = 0; r < ROUNDS; ++r) {
    for (int t = 0; t < T; ++t) step(cur, nxt, t, r);
    double p[T];
    for (int t = 0; t < T; ++t) p[t] = partial(nxt, t);
    double total = 0;
    for (int t = 0; t < T; ++t) total += p[t];
    h = mix(h, total);
    std::swap(cur, nxt);
  }
  return h;
}

struct Shared {
  std::vector<double> a = std::vector<double>(N), b = std::vector<double>(N);
  double* cur = nullptr;
  double* nxt = nullptr;
  double p[T] = {};
  std::uint64_t hash = 0;
  std::uint64_t want = 0;
  pthread_barrier_t bar;
  std::atomic<bool> stop{false};
  int cycles_left = -1;  // set by thread 0 once stop is seen
  long cycles = 0, mismatches = 0, cycles_after_stop = 0;
  std::atomic<bool> running{false};
};


struct Arg {
  Shared* s;
  int t;
};

void* run(void* p) {
  auto* arg = static_cast<Arg*>(p);
  Shared* s = arg->s;
  const int t = arg->t;
  for (;;) {
    if (t == 0) {
      init(s->a.data());
      s->cur = s->a.data();
      s->nxt = s->b.data();
      s->hash = 0xcbf29ce484222325ULL;
      s->running = true;
    }
    pthread_barrier_wait(&s->bar);
    for (int r = 0; r < ROUNDS; ++r) {
      step(s->cur, s->nxt, t, r);
      pthread_barrier_wait(&s->bar);
      s->p[t] = partial(s->nxt, t);
      pthread_barrier_wait(&s->bar);
      if (t == 0) {
        double total = 0;
        for (int i = 0; i < T; ++i) total += s->p[i];
        s->hash = mix(s->hash, total);
        std::swap(s->cur, s->nxt);
      }
      pthread_barrier_wait(&s->bar);
    }
    if (t == 0) {
      s->cycles++;
      if (s->hash != s->want) s->mismatches++;
      if (s->cycles_left < 0 && s->stop) s->cycles_left = 1;  // one more whole cycle after go
      else if (s->cycles_left > 0) {
        s->cycles_after_stop++;
        s->cycles_left--;
      }
    }
    pthread_barrier_wait(&s->bar);
    if (s->cycles_left == 0) return nullptr;
  }
}

}  // namespace

int main() {
  auto* s = new Shared;
  s->want = reference();
  pthread_barrier_init(&s->bar, nullptr, T);
  pthread_t th[T];
  Arg args[T];
  for (int t = 0; t < T; ++t) {
    args[t] = Arg{s, t};
    victim_check(pthread_create(&th[t], nullptr, run, &args[t]) == 0, "pthread_create");
  }
  while (!s->running) sched_yield();

  victim_ready();
  victim_wait_go();

  s->stop = true;
  for (pthread_t& x : th) pthread_join(x, nullptr);
  victim_check(s->mismatches == 0, "%ld of %ld cycles ended with a hash other than the reference %#lx (last %#lx)",
               s->mismatches, s->cycles, static_cast<unsigned long>(s->want), static_cast<unsigned long>(s->hash));
  victim_check(s->cycles_after_stop >= 1, "no whole cycle ran after go");
  victim_log("numeric_kernel: %ld cycles, hash %#lx", s->cycles, static_cast<unsigned long>(s->want));
  victim_pass();
}
