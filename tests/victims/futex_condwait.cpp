// State: three threads blocked in futex waits of different kinds: one in
// pthread_cond_wait, one in pthread_mutex_lock on a mutex the main thread
// holds (contended), one in sem_wait.
// Checks: after go the main thread signals the condition, unlocks the mutex
// and posts the semaphore; each thread wakes, sees the state the main
// thread set after go, and exits; all three are joined within 10 s.
#include "victim.h"

#include <atomic>
#include <pthread.h>
#include <semaphore.h>
#include <sys/syscall.h>
#include <unistd.h>

namespace {

pthread_mutex_t cv_mu = PTHREAD_MUTEX_INITIALIZER;
pthread_cond_t cv = PTHREAD_COND_INITIALIZER;
bool cv_flag = false;
pthread_mutex_t held = PTHREAD_MUTEX_INITIALIZER;
int held_value = 0;
sem_t sem;
std::atomic<pid_t> tids[3];
std::atomic<int> result[3];

void* cond_waiter(void*) {
  tids[0] = gettid();
  pthread_mutex_lock(&cv_mu);
  while (!cv_flag) pthread_cond_wait(&cv, &cv_mu);
  pthread_mutex_unlock(&cv_mu);
  result[0] = 1;
  return nullptr;
}

void* mutex_waiter(void*) {
  tids[1] = gettid();
  pthread_mutex_lock(&held);
  result[1] = held_value == 42 ? 1 : 2;
  pthread_mutex_unlock(&held);
  return nullptr;
}

void* sem_waiter(void*) {
  tids[2] = gettid();
  while (sem_wait(&sem) != 0 && errno == EINTR) {
  }
  int v = -1;
  sem_getvalue(&sem, &v);
  result[2] = v == 0 ? 1 : 2;
  return nullptr;
}

}  // namespace

int main() {
  sem_init(&sem, 0, 0);
  pthread_mutex_lock(&held);
  pthread_t t[3];
  victim_check(pthread_create(&t[0], nullptr, cond_waiter, nullptr) == 0, "pthread_create");
  victim_check(pthread_create(&t[1], nullptr, mutex_waiter, nullptr) == 0, "pthread_create");
  victim_check(pthread_create(&t[2], nullptr, sem_waiter, nullptr) == 0, "pthread_create");
  for (auto& tid : tids)
    while (tid == 0) sched_yield();
  for (auto& tid : tids) victim_wait_in_syscall(tid, {SYS_futex});

  victim_ready();
  victim_wait_go();

  for (int i = 0; i < 3; ++i) victim_check(result[i] == 0, "thread %d woke before go", i);
  pthread_mutex_lock(&cv_mu);
  cv_flag = true;
  pthread_cond_signal(&cv);
  pthread_mutex_unlock(&cv_mu);
  held_value = 42;
  pthread_mutex_unlock(&held);
  sem_post(&sem);
  const char* what[3] = {"pthread_cond_wait", "pthread_mutex_lock", "sem_wait"};
  for (int i = 0; i < 3; ++i) {
    timespec deadline{};
    clock_gettime(CLOCK_REALTIME, &deadline);
    deadline.tv_sec += 10;
    int rc = pthread_timedjoin_np(t[i], nullptr, &deadline);
    victim_check(rc == 0, "thread in %s not woken: %s", what[i], std::strerror(rc));
    victim_check(result[i] == 1, "thread in %s woke into the wrong state", what[i]);
  }
  victim_pass();
}
