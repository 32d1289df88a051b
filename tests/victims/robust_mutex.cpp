// State: robust futex lists. A forked child holds a process-shared robust
// mutex (in MAP_SHARED memory) that a thread of the victim is blocked on;
// another thread holds a process-private robust mutex. Each thread's robust
// list head (set_robust_list, done by glibc for every thread) is saved.
// Checks: after go the child is told to exit, and does so without unlocking: the kernel walks its
// robust list, so the blocked thread gets EOWNERDEAD (rather than hanging);
// the holder thread exits without unlocking and the main thread's lock then
// gets EOWNERDEAD; every thread's get_robust_list() equals the saved head.
#include "victim.h"

#include <atomic>
#include <pthread.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

namespace {

struct Shared {
  pthread_mutex_t m;
};

void* robust_head() {
  void* head = nullptr;
  std::size_t len = 0;
  syscall(SYS_get_robust_list, 0, &head, &len);
  return head;
}

void init_robust(pthread_mutex_t* m, bool pshared) {
  pthread_mutexattr_t a;
  pthread_mutexattr_init(&a);
  pthread_mutexattr_setrobust(&a, PTHREAD_MUTEX_ROBUST);
  if (pshared) pthread_mutexattr_setpshared(&a, PTHREAD_PROCESS_SHARED);
  pthread_mutex_init(m, &a);
  pthread_mutexattr_destroy(&a);
}

Shared* shared;
pthread_mutex_t priv;
std::atomic<pid_t> waiter_tid{0};
std::atomic<int> waiter_rc{-1};
std::atomic<bool> waiter_head_ok{false}, holder_head_ok{false}, holder_locked{false};
int holder_cmd[2];

void* waiter(void*) {
  void* head = robust_head();
  waiter_tid = gettid();
  int rc = pthread_mutex_lock(&shared->m);
  waiter_head_ok = robust_head() == head;
  if (rc == EOWNERDEAD) {
    pthread_mutex_consistent(&shared->m);
    pthread_mutex_unlock(&shared->m);
  }
  waiter_rc = rc;
  return nullptr;
}

void* holder(void*) {
  void* head = robust_head();
  pthread_mutex_lock(&priv);
  holder_locked = true;
  char c;
  while (read(holder_cmd[0], &c, 1) < 0 && errno == EINTR) {
  }
  holder_head_ok = robust_head() == head;
  return nullptr;  // exits holding priv
}

}  // namespace

int main() {
  shared = static_cast<Shared*>(
      victim_sys(mmap(nullptr, sizeof(Shared), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0)));
  init_robust(&shared->m, true);
  init_robust(&priv, false);
  victim_sys(pipe(holder_cmd));
  int ack[2], child_cmd[2];
  victim_sys(pipe(ack));
  victim_sys(pipe(child_cmd));
  pid_t pid = victim_sys(fork());
  if (pid == 0) {
    void* head = robust_head();
    victim_check(pthread_mutex_lock(&shared->m) == 0, "child: lock");
    char c = 'l';
    victim_sys(write(ack[1], &c, 1));
    victim_wait_go();
    victim_check(robust_head() == head, "child: robust list head changed");
    while (read(child_cmd[0], &c, 1) < 0 && errno == EINTR) {
    }
    _exit(0);  // holding the mutex
  }
  char c = 0;
  victim_check(read(ack[0], &c, 1) == 1, "child did not lock");
  void* main_head = robust_head();
  victim_check(main_head != nullptr, "glibc set no robust list");
  pthread_t tw, th;
  victim_check(pthread_create(&tw, nullptr, waiter, nullptr) == 0, "pthread_create");
  victim_check(pthread_create(&th, nullptr, holder, nullptr) == 0, "pthread_create");
  while (waiter_tid == 0 || !holder_locked) sched_yield();
  victim_wait_in_syscall(waiter_tid, {SYS_futex});

  victim_ready();
  victim_wait_go();

  victim_check(robust_head() == main_head, "main thread's robust list head changed");
  victim_check(waiter_rc == -1, "thread blocked on the child's mutex returned before go");
  victim_sys(write(child_cmd[1], "x", 1));  // child: exit now, holding the mutex
  int st = victim_wait_child(pid);
  victim_check(WIFEXITED(st) && WEXITSTATUS(st) == 0, "child %s", victim_status_str(st).c_str());
  timespec deadline{};
  clock_gettime(CLOCK_REALTIME, &deadline);
  deadline.tv_sec += 10;
  int rc = pthread_timedjoin_np(tw, nullptr, &deadline);
  victim_check(rc == 0, "thread blocked on the child's robust mutex was not woken when the child died");
  victim_check(waiter_rc == EOWNERDEAD, "lock of the dead child's mutex returned %d, expected EOWNERDEAD",
               waiter_rc.load());
  victim_check(waiter_head_ok, "waiter thread's robust list head changed");

  victim_sys(write(holder_cmd[1], "x", 1));
  pthread_join(th, nullptr);
  victim_check(holder_head_ok, "holder thread's robust list head changed");
  rc = pthread_mutex_lock(&priv);
  victim_check(rc == EOWNERDEAD, "lock of the dead thread's mutex returned %d, expected EOWNERDEAD", rc);
  victim_pass();
}
