// State: an epoll instance watching a pipe (EPOLLIN, data 0x1111), an
// eventfd (EPOLLIN|EPOLLET, data 0x2222) and a second pipe (EPOLLIN|
// EPOLLONESHOT, data 0x3333); a thread blocked in epoll_wait() on it.
// Checks: after go, a write to the second pipe wakes the thread with exactly
// one event carrying 0x3333; the registrations survived (EPOLL_CTL_ADD of
// the first pipe fails with EEXIST, EPOLL_CTL_MOD of the disarmed oneshot
// succeeds); the first pipe's readiness reports 0x1111; the eventfd is
// edge-triggered (reported once per write, not again while still readable).
#include "victim.h"

#include <atomic>
#include <pthread.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/syscall.h>
#include <unistd.h>

namespace {

int ep, p1[2], p2[2], efd;
std::atomic<pid_t> waiter_tid{0};
std::atomic<int> waiter_n{-2};
epoll_event waiter_ev[4];

void* waiter(void*) {
  waiter_tid = gettid();
  waiter_n = epoll_wait(ep, waiter_ev, 4, -1);
  return nullptr;
}

int wait_now(epoll_event* ev) { return epoll_wait(ep, ev, 4, 0); }

}  // namespace

int main() {
  ep = victim_sys(epoll_create1(EPOLL_CLOEXEC));
  victim_sys(pipe(p1));
  victim_sys(pipe(p2));
  efd = victim_sys(eventfd(0, EFD_NONBLOCK));
  epoll_event e{};
  e.events = EPOLLIN;
  e.data.u64 = 0x1111;
  victim_sys(epoll_ctl(ep, EPOLL_CTL_ADD, p1[0], &e));
  e.events = EPOLLIN | EPOLLET;
  e.data.u64 = 0x2222;
  victim_sys(epoll_ctl(ep, EPOLL_CTL_ADD, efd, &e));
  e.events = EPOLLIN | EPOLLONESHOT;
  e.data.u64 = 0x3333;
  victim_sys(epoll_ctl(ep, EPOLL_CTL_ADD, p2[0], &e));
  pthread_t t;
  victim_check(pthread_create(&t, nullptr, waiter, nullptr) == 0, "pthread_create");
  while (waiter_tid == 0) sched_yield();
  victim_wait_in_syscall(waiter_tid, {SYS_epoll_wait, SYS_epoll_pwait, SYS_epoll_pwait2});

  victim_ready();
  victim_wait_go();

  victim_check(waiter_n == -2, "epoll_wait returned before go");
  victim_check(write(p2[1], "x", 1) == 1, "write");
  timespec deadline{};
  clock_gettime(CLOCK_REALTIME, &deadline);
  deadline.tv_sec += 10;
  victim_check(pthread_timedjoin_np(t, nullptr, &deadline) == 0, "epoll_wait not woken by the watched pipe");
  victim_check(waiter_n == 1 && waiter_ev[0].data.u64 == 0x3333 && (waiter_ev[0].events & EPOLLIN),
               "epoll_wait returned %d events, first data %#lx", waiter_n.load(),
               static_cast<unsigned long>(waiter_ev[0].data.u64));

  epoll_event ev[4];
  victim_check(wait_now(ev) == 0, "oneshot pipe reported again (or others ready)");
  e.events = EPOLLIN;
  e.data.u64 = 0x1111;
  victim_check(epoll_ctl(ep, EPOLL_CTL_ADD, p1[0], &e) == -1 && errno == EEXIST, "first pipe no longer registered");
  e.events = EPOLLIN | EPOLLONESHOT;
  e.data.u64 = 0x3333;
  victim_sys(epoll_ctl(ep, EPOLL_CTL_MOD, p2[0], &e));
  victim_check(wait_now(ev) == 1 && ev[0].data.u64 == 0x3333, "re-armed oneshot pipe not reported");

  victim_check(write(p1[1], "y", 1) == 1, "write");
  int n = wait_now(ev);
  victim_check(n == 1 && ev[0].data.u64 == 0x1111, "first pipe: %d events", n);
  char c;
  victim_check(read(p1[0], &c, 1) == 1, "read");

  std::uint64_t one = 1;
  victim_check(write(efd, &one, sizeof one) == sizeof one, "eventfd write");
  n = wait_now(ev);
  victim_check(n == 1 && ev[0].data.u64 == 0x2222, "eventfd: %d events", n);
  victim_check(wait_now(ev) == 0, "edge-triggered eventfd reported twice for one write");
  victim_pass();
}
