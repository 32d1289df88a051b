// State: alternate signal stacks: the main thread's (64 KiB, mmap'ed) and a
// second thread's (32 KiB, malloc'ed), SIGUSR1 installed with SA_ONSTACK.
// Checks: sigaltstack() in each thread reports the same stack, size and
// flags; SIGUSR1 sent to each thread runs the handler on that thread's
// alternate stack (a local's address lies inside it and sigaltstack()
// inside the handler reports SS_ONSTACK).
#include "victim.h"

#include <atomic>
#include <csignal>
#include <cstdlib>
#include <pthread.h>
#include <unistd.h>

namespace {

thread_local std::uintptr_t handler_sp = 0;
thread_local int handler_flags = -1;

void on_usr1(int) {
  volatile int local = 0;
  handler_sp = reinterpret_cast<std::uintptr_t>(&local);
  stack_t cur{};
  sigaltstack(nullptr, &cur);
  handler_flags = cur.ss_flags;
}

// Empty if this thread's alternate stack is `want` and is used.
std::string check(const stack_t& want) {
  stack_t cur{};
  sigaltstack(nullptr, &cur);
  if (cur.ss_sp != want.ss_sp || cur.ss_size != want.ss_size || cur.ss_flags != want.ss_flags)
    return "sigaltstack() reports another stack";
  handler_sp = 0;
  pthread_kill(pthread_self(), SIGUSR1);
  auto lo = reinterpret_cast<std::uintptr_t>(want.ss_sp);
  if (handler_sp < lo || handler_sp >= lo + want.ss_size) return "handler did not run on the alternate stack";
  if (!(handler_flags & SS_ONSTACK)) return "SS_ONSTACK not set inside the handler";
  return "";
}

stack_t make(void* sp, std::size_t n) {
  stack_t s{};
  s.ss_sp = sp;
  s.ss_size = n;
  s.ss_flags = 0;
  return s;
}

pthread_barrier_t started, go;
std::string thread_result = "not run";

void* worker(void*) {
  const std::size_t n = 32 * 1024;
  stack_t s = make(std::malloc(n), n);
  sigaltstack(&s, nullptr);
  std::string pre = check(s);
  pthread_barrier_wait(&started);
  pthread_barrier_wait(&go);
  thread_result = pre.empty() ? check(s) : "before checkpoint: " + pre;
  return nullptr;
}

}  // namespace

int main() {
  struct sigaction a {};
  a.sa_handler = on_usr1;
  a.sa_flags = SA_ONSTACK;
  sigemptyset(&a.sa_mask);
  victim_sys(sigaction(SIGUSR1, &a, nullptr));
  const std::size_t n = 64 * 1024;
  stack_t s = make(victim_sys(mmap(nullptr, n, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0)), n);
  victim_sys(sigaltstack(&s, nullptr));
  std::string pre = check(s);
  victim_check(pre.empty(), "before checkpoint: %s", pre.c_str());
  pthread_barrier_init(&started, nullptr, 2);
  pthread_barrier_init(&go, nullptr, 2);
  pthread_t t;
  victim_check(pthread_create(&t, nullptr, worker, nullptr) == 0, "pthread_create");
  pthread_barrier_wait(&started);

  victim_ready();
  victim_wait_go();

  std::string r = check(s);
  victim_check(r.empty(), "main thread: %s", r.c_str());
  pthread_barrier_wait(&go);
  pthread_join(t, nullptr);
  victim_check(thread_result.empty(), "second thread: %s", thread_result.c_str());
  victim_pass();
}
