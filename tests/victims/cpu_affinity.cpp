// State: CPU affinity: the main thread pinned to one CPU (CPU 0, or the
// lowest it is allowed); a second thread pinned to the highest CPU it is
// allowed (the same on a one-CPU machine), parked in a barrier.
// Checks: each thread's sched_getaffinity() is exactly its one CPU, and
// getcpu() says it runs there. (A restore on another node may remap CPUs;
// this victim expects a restore on the same node.)
#include "victim.h"

#include <atomic>
#include <pthread.h>
#include <sched.h>
#include <sys/syscall.h>
#include <unistd.h>

namespace {

pthread_barrier_t started, go;
int worker_cpu = -1;
std::string worker_result = "not run";

// Empty if this thread may run on `cpu` only and runs there.
std::string check(int cpu) {
  cpu_set_t set;
  CPU_ZERO(&set);
  if (sched_getaffinity(0, sizeof set, &set) != 0) return std::string("sched_getaffinity: ") + std::strerror(errno);
  if (CPU_COUNT(&set) != 1 || !CPU_ISSET(cpu, &set))
    return "affinity has " + std::to_string(CPU_COUNT(&set)) + " CPUs, expected only CPU " + std::to_string(cpu);
  unsigned now = 0;
  syscall(SYS_getcpu, &now, nullptr, nullptr);
  if (static_cast<int>(now) != cpu) return "running on CPU " + std::to_string(now) + ", pinned to " + std::to_string(cpu);
  return "";
}

void pin(int cpu) {
  cpu_set_t set;
  CPU_ZERO(&set);
  CPU_SET(cpu, &set);
  victim_sys(sched_setaffinity(0, sizeof set, &set));
}

void* worker(void*) {
  pin(worker_cpu);
  pthread_barrier_wait(&started);
  pthread_barrier_wait(&go);
  worker_result = check(worker_cpu);
  return nullptr;
}

}  // namespace

int main() {
  cpu_set_t allowed;
  CPU_ZERO(&allowed);
  victim_sys(sched_getaffinity(0, sizeof allowed, &allowed));
  int first = -1;
  for (int c = 0; c < CPU_SETSIZE; ++c)
    if (CPU_ISSET(c, &allowed)) {
      if (first < 0) first = c;
      worker_cpu = c;
    }
  victim_check(first >= 0, "no CPU in the allowed set");
  pin(first);
  pthread_barrier_init(&started, nullptr, 2);
  pthread_barrier_init(&go, nullptr, 2);
  pthread_t t;
  victim_check(pthread_create(&t, nullptr, worker, nullptr) == 0, "pthread_create");
  pthread_barrier_wait(&started);

  victim_ready();
  victim_wait_go();

  std::string r = check(first);
  victim_check(r.empty(), "main thread: %s", r.c_str());
  pthread_barrier_wait(&go);
  pthread_join(t, nullptr);
  victim_check(worker_result.empty(), "second thread: %s", worker_result.c_str());
  victim_pass();
}
