// State: per-process and per-thread attributes set with prctl() and
// personality(): child subreaper, no_new_privs, timer slack 123456 ns (main
// thread) and 654321 ns (a second thread), THP disabled, personality with
// ADDR_NO_RANDOMIZE; a forked child with parent-death signal SIGUSR1.
// Checks: each reads back the same (PR_GET_*), in the thread that set it;
// the child's PR_GET_PDEATHSIG is still SIGUSR1.
#include "victim.h"

#include <atomic>
#include <csignal>
#include <pthread.h>
#include <sys/personality.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

namespace {

pthread_barrier_t started, go;
std::atomic<long> thread_slack{-1};

void* worker(void*) {
  prctl(PR_SET_TIMERSLACK, 654321UL);
  pthread_barrier_wait(&started);
  pthread_barrier_wait(&go);
  thread_slack = prctl(PR_GET_TIMERSLACK);
  return nullptr;
}

}  // namespace

int main() {
  victim_sys(prctl(PR_SET_CHILD_SUBREAPER, 1));
  victim_sys(prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0));
  victim_sys(prctl(PR_SET_TIMERSLACK, 123456UL));
  victim_sys(prctl(PR_SET_THP_DISABLE, 1, 0, 0, 0));
  const int pers = victim_sys(personality(0xffffffff));
  victim_sys(personality(static_cast<unsigned long>(pers | ADDR_NO_RANDOMIZE)));
  const int pers_set = victim_sys(personality(0xffffffff));
  victim_check(pers_set & ADDR_NO_RANDOMIZE, "personality not set");

  pthread_barrier_init(&started, nullptr, 2);
  pthread_barrier_init(&go, nullptr, 2);
  pthread_t t;
  victim_check(pthread_create(&t, nullptr, worker, nullptr) == 0, "pthread_create");
  pthread_barrier_wait(&started);

  int ack[2];
  victim_sys(pipe(ack));
  pid_t pid = victim_sys(fork());
  if (pid == 0) {
    victim_sys(prctl(PR_SET_PDEATHSIG, SIGUSR1));
    victim_sys(write(ack[1], "x", 1));
    victim_wait_go();
    int sig = 0;
    victim_sys(prctl(PR_GET_PDEATHSIG, &sig));
    victim_check(sig == SIGUSR1, "child: parent-death signal %d, expected SIGUSR1", sig);
    _exit(0);
  }
  char c;
  victim_check(read(ack[0], &c, 1) == 1, "child did not start");

  victim_ready();
  victim_wait_go();

  int v = 0;
  victim_sys(prctl(PR_GET_CHILD_SUBREAPER, &v));
  victim_check(v == 1, "child subreaper flag lost");
  victim_check(prctl(PR_GET_NO_NEW_PRIVS, 0, 0, 0, 0) == 1, "no_new_privs lost");
  long slack = prctl(PR_GET_TIMERSLACK);
  victim_check(slack == 123456, "main thread's timer slack %ld, expected 123456", slack);
  victim_check(prctl(PR_GET_THP_DISABLE, 0, 0, 0, 0) == 1, "THP disable flag lost");
  int p = personality(0xffffffff);
  victim_check(p == pers_set, "personality %#x, was %#x", p, pers_set);
  pthread_barrier_wait(&go);
  pthread_join(t, nullptr);
  victim_check(thread_slack == 654321, "second thread's timer slack %ld, expected 654321", thread_slack.load());
  int st = victim_wait_child(pid);
  victim_check(WIFEXITED(st) && WEXITSTATUS(st) == 0, "child %s", victim_status_str(st).c_str());
  victim_pass();
}
