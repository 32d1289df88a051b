// State: a thread blocked in poll() (no timeout) on a pipe and an eventfd,
// and a thread blocked in select() (1 hour timeout) on another pipe.
// Checks: after go the main thread signals the eventfd and writes the
// second pipe; poll returns exactly the eventfd as readable (POLLIN) and
// not the pipe; select returns the pipe as readable; neither returned
// before go.
#include "victim.h"

#include <atomic>
#include <poll.h>
#include <pthread.h>
#include <sys/eventfd.h>
#include <sys/select.h>
#include <sys/syscall.h>
#include <unistd.h>

namespace {

int pipe_a[2], pipe_b[2], efd;
std::atomic<pid_t> poll_tid{0}, select_tid{0};
std::atomic<int> poll_rc{-2}, select_rc{-2};
std::atomic<short> rev_pipe{0}, rev_efd{0};
std::atomic<bool> select_isset{false};

void* poller(void*) {
  pollfd fds[2] = {{pipe_a[0], POLLIN, 0}, {efd, POLLIN, 0}};
  poll_tid = gettid();
  poll_rc = poll(fds, 2, -1);
  rev_pipe = fds[0].revents;
  rev_efd = fds[1].revents;
  return nullptr;
}

void* selecter(void*) {
  fd_set rd;
  FD_ZERO(&rd);
  FD_SET(pipe_b[0], &rd);
  timeval tv{3600, 0};
  select_tid = gettid();
  select_rc = select(pipe_b[0] + 1, &rd, nullptr, nullptr, &tv);
  select_isset = FD_ISSET(pipe_b[0], &rd);
  return nullptr;
}

}  // namespace

int main() {
  victim_sys(pipe(pipe_a));
  victim_sys(pipe(pipe_b));
  efd = victim_sys(eventfd(0, 0));
  pthread_t tp, ts;
  victim_check(pthread_create(&tp, nullptr, poller, nullptr) == 0, "pthread_create");
  victim_check(pthread_create(&ts, nullptr, selecter, nullptr) == 0, "pthread_create");
  while (poll_tid == 0 || select_tid == 0) sched_yield();
  victim_wait_in_syscall(poll_tid, {SYS_poll, SYS_ppoll});
  victim_wait_in_syscall(select_tid, {SYS_select, SYS_pselect6});

  victim_ready();
  victim_wait_go();

  victim_check(poll_rc == -2 && select_rc == -2, "poll (%d) or select (%d) returned before go", poll_rc.load(),
               select_rc.load());
  std::uint64_t one = 1;
  victim_check(write(efd, &one, sizeof one) == sizeof one, "eventfd write");
  victim_check(write(pipe_b[1], "x", 1) == 1, "pipe write");
  for (pthread_t t : {tp, ts}) {
    timespec deadline{};
    clock_gettime(CLOCK_REALTIME, &deadline);
    deadline.tv_sec += 10;
    victim_check(pthread_timedjoin_np(t, nullptr, &deadline) == 0, "poll/select thread not woken");
  }
  victim_check(poll_rc == 1, "poll returned %d", poll_rc.load());
  victim_check(rev_efd == POLLIN, "eventfd revents %#x", rev_efd.load());
  victim_check(rev_pipe == 0, "empty pipe revents %#x", rev_pipe.load());
  victim_check(select_rc == 1 && select_isset, "select returned %d (fd set: %d)", select_rc.load(),
               select_isset.load());
  victim_pass();
}
