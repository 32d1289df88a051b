// State: task names (comm): the main thread renamed "vict-main" with
// prctl(PR_SET_NAME), a second thread named "vict-worker" with
// pthread_setname_np, the thread parked in a barrier.
// Checks: PR_GET_NAME in each thread and /proc/self/task/TID/comm give the
// names set; /proc/self/comm (the process) shows the main thread's.
#include "victim.h"

#include <atomic>
#include <pthread.h>
#include <sys/prctl.h>
#include <unistd.h>

namespace {

pthread_barrier_t started, go;
std::atomic<pid_t> worker_tid{0};
char worker_name[32];

void* worker(void*) {
  pthread_setname_np(pthread_self(), "vict-worker");
  worker_tid = gettid();
  pthread_barrier_wait(&started);
  pthread_barrier_wait(&go);
  prctl(PR_GET_NAME, worker_name);
  return nullptr;
}

}  // namespace

int main() {
  victim_sys(prctl(PR_SET_NAME, "vict-main"));
  pthread_barrier_init(&started, nullptr, 2);
  pthread_barrier_init(&go, nullptr, 2);
  pthread_t t;
  victim_check(pthread_create(&t, nullptr, worker, nullptr) == 0, "pthread_create");
  pthread_barrier_wait(&started);

  victim_ready();
  victim_wait_go();

  char name[32] = {};
  victim_sys(prctl(PR_GET_NAME, name));
  victim_check(std::strcmp(name, "vict-main") == 0, "main thread's name is \"%s\"", name);
  std::string comm = victim_read_file("/proc/self/comm");
  victim_check(comm == "vict-main\n", "/proc/self/comm is \"%s\"", comm.c_str());
  comm = victim_read_file("/proc/self/task/" + std::to_string(worker_tid) + "/comm");
  victim_check(comm == "vict-worker\n", "worker's /proc comm is \"%s\"", comm.c_str());
  pthread_barrier_wait(&go);
  pthread_join(t, nullptr);
  victim_check(std::strcmp(worker_name, "vict-worker") == 0, "worker's PR_GET_NAME is \"%s\"", worker_name);
  victim_pass();
}
