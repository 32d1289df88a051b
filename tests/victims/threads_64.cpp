// State: 64 threads besides the main one, each parked in a pthread barrier
// (a futex wait) after saving its gettid() and pthread_self().
// Checks: every thread's gettid() equals the saved TID (glibc keeps TIDs in
// its thread structs, so they must come back exactly), pthread_self() is
// unchanged, /proc/self/task lists exactly the same 65 TIDs, each saved TID
// can be signalled with tgkill, and all threads can be joined (which needs
// the kernel's clear_child_tid futex wake, i.e. set_tid_address restored).
#include "victim.h"

#include <algorithm>
#include <cstdlib>
#include <atomic>
#include <dirent.h>
#include <pthread.h>
#include <signal.h>
#include <sys/syscall.h>
#include <unistd.h>
#include <vector>

namespace {

constexpr int N = 64;

struct Slot {
  pthread_t self{};
  pid_t tid = 0;
  std::atomic<int> verdict{0};  // 1 ok, 2 tid changed, 3 pthread_self changed
};

struct Shared {
  pthread_barrier_t started;
  pthread_barrier_t go;
  Slot slots[N];
};

struct Arg {
  Shared* shared;
  int index;
};

void* worker(void* p) {
  auto* arg = static_cast<Arg*>(p);
  Slot& s = arg->shared->slots[arg->index];
  s.tid = gettid();
  s.self = pthread_self();
  pthread_barrier_wait(&arg->shared->started);
  pthread_barrier_wait(&arg->shared->go);
  if (gettid() != s.tid)
    s.verdict = 2;
  else if (!pthread_equal(pthread_self(), s.self))
    s.verdict = 3;
  else
    s.verdict = 1;
  return nullptr;
}

std::vector<pid_t> task_tids() {
  std::vector<pid_t> tids;
  DIR* d = opendir("/proc/self/task");
  victim_check(d != nullptr, "opendir /proc/self/task: %s", std::strerror(errno));
  while (dirent* e = readdir(d))
    if (e->d_name[0] != '.') tids.push_back(static_cast<pid_t>(std::atoi(e->d_name)));
  closedir(d);
  std::sort(tids.begin(), tids.end());
  return tids;
}

}  // namespace

int main() {
  auto* shared = new Shared;
  pthread_barrier_init(&shared->started, nullptr, N + 1);
  pthread_barrier_init(&shared->go, nullptr, N + 1);
  std::vector<Arg> args(N);
  std::vector<pthread_t> threads(N);
  pthread_attr_t attr;
  pthread_attr_init(&attr);
  pthread_attr_setstacksize(&attr, 128 * 1024);
  for (int i = 0; i < N; ++i) {
    args[i] = Arg{shared, i};
    victim_check(pthread_create(&threads[i], &attr, worker, &args[i]) == 0, "pthread_create %d", i);
  }
  pthread_attr_destroy(&attr);
  pthread_barrier_wait(&shared->started);
  const pid_t main_tid = gettid();
  std::vector<pid_t> saved = task_tids();
  victim_check(saved.size() == N + 1, "%zu tasks before checkpoint", saved.size());
  for (int i = 0; i < N; ++i) victim_wait_in_syscall(shared->slots[i].tid, {SYS_futex});

  victim_ready();
  victim_wait_go();

  victim_check(gettid() == main_tid && getpid() == main_tid, "main thread tid %d pid %d, was %d", gettid(), getpid(),
               main_tid);
  std::vector<pid_t> now = task_tids();
  victim_check(now == saved, "/proc/self/task has %zu entries, differs from the saved %zu", now.size(), saved.size());
  for (int i = 0; i < N; ++i)
    victim_check(syscall(SYS_tgkill, getpid(), shared->slots[i].tid, 0) == 0, "tgkill(%d) of thread %d: %s",
                 shared->slots[i].tid, i, std::strerror(errno));
  pthread_barrier_wait(&shared->go);
  for (int i = 0; i < N; ++i) {
    timespec deadline{};
    clock_gettime(CLOCK_REALTIME, &deadline);
    deadline.tv_sec += 10;
    int rc = pthread_timedjoin_np(threads[i], nullptr, &deadline);
    victim_check(rc == 0, "join of thread %d (tid %d): %s", i, shared->slots[i].tid, std::strerror(rc));
    int v = shared->slots[i].verdict;
    victim_check(v != 2, "thread %d: gettid() differs from the saved %d", i, shared->slots[i].tid);
    victim_check(v != 3, "thread %d: pthread_self() changed", i);
    victim_check(v == 1, "thread %d did not check itself (verdict %d)", i, v);
  }
  victim_pass();
}
