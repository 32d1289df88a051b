// app_heat: a multithreaded 2-D heat (Jacobi) solver.
//
//   app_heat LOGFILE GRIDFILE [STEPS=20000] [N=384] [THREADS=4] [EVERY=200] [HOLD]
//
// An N x N grid with a fixed hot top edge relaxes by Jacobi iteration. THREADS
// threads each own a contiguous band of rows; a barrier ends every step
// (each thread swaps its own copy of the read/write pointers, so no shared
// pointer changes hands). Every EVERY steps the threads put the residual of
// their band into a fixed slot and thread 0 sums the slots in thread order,
// so the printed numbers do not depend on thread timing. Thread 0 prints
//   step S residual R total T
// on stdout and appends the same line to LOGFILE (open for the whole run).
// At the end the grid goes to GRIDFILE (binary doubles) and the last line is
//   final steps S total T fnv H
// with T at full precision (%.17g) and H the FNV-1a hash of the grid's bytes.
// With HOLD, the solver waits before that end until the file HOLD exists: a
// test that works on the running job keeps it running however fast the
// machine is, and the output stays that of a run without HOLD.
#include "app_common.h"

#include <cmath>
#include <fcntl.h>
#include <pthread.h>
#include <vector>

namespace {

struct Solver {
  long steps = 0, every = 0;
  int n = 0, nthreads = 0;
  int log_fd = -1;
  std::vector<double> a, b;
  std::vector<double> partial;
  pthread_barrier_t barrier;

  int row_lo(int t) const { return 1 + static_cast<int>(static_cast<long>(n - 2) * t / nthreads); }
  int row_hi(int t) const { return 1 + static_cast<int>(static_cast<long>(n - 2) * (t + 1) / nthreads); }
};

double total_of(const double* g, int n) {
  double s = 0;
  for (long i = 0; i < static_cast<long>(n) * n; ++i) s += g[i];
  return s;
}

void run_band(Solver& s, int t) {
  const int n = s.n;
  double* cur = s.a.data();
  double* nxt = s.b.data();
  const int lo = s.row_lo(t), hi = s.row_hi(t);
  for (long step = 1; step <= s.steps; ++step) {
    const bool report = step % s.every == 0 || step == s.steps;
    double res = 0;
    for (int i = lo; i < hi; ++i) {
      const double* up = cur + static_cast<long>(i - 1) * n;
      const double* row = cur + static_cast<long>(i) * n;
      const double* down = cur + static_cast<long>(i + 1) * n;
      double* out = nxt + static_cast<long>(i) * n;
      for (int j = 1; j < n - 1; ++j) {
        const double v = 0.25 * (up[j] + down[j] + row[j - 1] + row[j + 1]);
        if (report) res += std::fabs(v - row[j]);
        out[j] = v;
      }
    }
    if (report) s.partial[static_cast<size_t>(t)] = res;
    std::swap(cur, nxt);
    pthread_barrier_wait(&s.barrier);
    // Thread 0 reads the slots and the whole of cur here. Others write cur
    // again only in step+2 and the slots EVERY steps later: both after the
    // barrier of step+1, which thread 0 reaches only once it is done.
    if (report && t == 0) {
      double r = 0;
      for (int k = 0; k < s.nthreads; ++k) r += s.partial[static_cast<size_t>(k)];
      char line[256];
      int len = snprintf(line, sizeof line, "step %ld residual %.17g total %.17g\n", step, r, total_of(cur, n));
      app::write_all(1, line, static_cast<size_t>(len), "stdout");
      app::write_all(s.log_fd, line, static_cast<size_t>(len), "the log file");
    }
  }
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 3) app::die("usage: app_heat LOGFILE GRIDFILE [STEPS] [N] [THREADS] [EVERY] [HOLD]");
  Solver s;
  s.steps = app::arg_long(argc, argv, 3, 20000);
  s.n = static_cast<int>(app::arg_long(argc, argv, 4, 384));
  s.nthreads = static_cast<int>(app::arg_long(argc, argv, 5, 4));
  s.every = app::arg_long(argc, argv, 6, 200);
  if (s.n < 8 || s.nthreads > s.n - 2) app::die("grid too small for the threads");
  s.log_fd = open(argv[1], O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (s.log_fd < 0) app::die("open %s: %s", argv[1], strerror(errno));

  const long cells = static_cast<long>(s.n) * s.n;
  s.a.assign(static_cast<size_t>(cells), 0.0);
  for (int j = 0; j < s.n; ++j) s.a[static_cast<size_t>(j)] = 100.0 + 10.0 * std::sin(0.05 * j);
  for (int i = 0; i < s.n; ++i) s.a[static_cast<size_t>(static_cast<long>(i) * s.n)] = 25.0 * i / s.n;
  s.b = s.a;  // boundaries are never written: both buffers hold them
  s.partial.assign(static_cast<size_t>(s.nthreads), 0.0);
  pthread_barrier_init(&s.barrier, nullptr, static_cast<unsigned>(s.nthreads));

  app::say(1, "start heat n %d threads %d steps %ld\n", s.n, s.nthreads, s.steps);
  std::vector<pthread_t> threads(static_cast<size_t>(s.nthreads));
  struct Arg {
    Solver* s;
    int t;
  };
  std::vector<Arg> args(static_cast<size_t>(s.nthreads));
  for (int t = 0; t < s.nthreads; ++t) {
    args[static_cast<size_t>(t)] = {&s, t};
    int rc = pthread_create(
        &threads[static_cast<size_t>(t)], nullptr,
        [](void* p) -> void* {
          auto* a = static_cast<Arg*>(p);
          run_band(*a->s, a->t);
          return nullptr;
        },
        &args[static_cast<size_t>(t)]);
    if (rc != 0) app::die("pthread_create: %s", strerror(rc));
  }
  for (auto& th : threads) pthread_join(th, nullptr);
  if (argc > 7) app::wait_for_file(argv[7]);

  // After an even number of swaps the result is in a, otherwise in b.
  const std::vector<double>& g = s.steps % 2 == 0 ? s.a : s.b;
  int out = open(argv[2], O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (out < 0) app::die("open %s: %s", argv[2], strerror(errno));
  app::write_all(out, g.data(), g.size() * sizeof(double), "the grid file");
  close(out);
  const uint64_t h = app::fnv1a(app::kFnvBasis, g.data(), g.size() * sizeof(double));
  char line[256];
  int len = snprintf(line, sizeof line, "final steps %ld total %.17g fnv %016llx\n", s.steps, total_of(g.data(), s.n),
                     static_cast<unsigned long long>(h));
  app::write_all(1, line, static_cast<size_t>(len), "stdout");
  app::write_all(s.log_fd, line, static_cast<size_t>(len), "the log file");
  close(s.log_fd);
  return 0;
}
