// app_sockcalc: a parent and a worker child talking over a socketpair.
//
//   app_sockcalc OUTFILE [ITEMS=20000] [WORK=20000] [EVERY=500]
//
// The parent sends ITEMS work items over an AF_UNIX socketpair, the child
// computes each (WORK rounds of a mixing function) and sends the result
// back; the parent prints
//   item K sum S
// every EVERY items (to stdout and to OUTFILE, open for the whole run) and
// at the end
//   final items K sum S
// The engine does not checkpoint sockets: a checkpoint of this program must
// be refused, naming the process, the descriptor and the socket, and the
// program must go on and finish with the same output as without it.
#include "app_common.h"

#include <fcntl.h>
#include <sys/socket.h>
#include <sys/wait.h>

int main(int argc, char** argv) {
  if (argc < 2) app::die("usage: app_sockcalc OUTFILE [ITEMS] [WORK] [EVERY]");
  const long items = app::arg_long(argc, argv, 2, 20000);
  const long work = app::arg_long(argc, argv, 3, 20000);
  const long every = app::arg_long(argc, argv, 4, 500);
  int out = open(argv[1], O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (out < 0) app::die("open %s: %s", argv[1], strerror(errno));
  int sv[2];
  if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0) app::die("socketpair: %s", strerror(errno));
  app::say(1, "start sockcalc items %ld work %ld\n", items, work);
  pid_t child = fork();
  if (child < 0) app::die("fork: %s", strerror(errno));
  if (child == 0) {
    close(sv[0]);
    uint64_t v = 0;
    while (app::read_all(sv[1], &v, sizeof v, "the worker's socket")) {
      for (long i = 0; i < work; ++i) v = app::splitmix(v) + static_cast<uint64_t>(i);
      app::write_all(sv[1], &v, sizeof v, "the worker's socket");
    }
    _exit(0);
  }
  close(sv[1]);
  uint64_t sum = 0;
  for (long k = 1; k <= items; ++k) {
    uint64_t v = static_cast<uint64_t>(k) * 0x9e3779b97f4a7c15ULL;
    app::write_all(sv[0], &v, sizeof v, "the parent's socket");
    if (!app::read_all(sv[0], &v, sizeof v, "the parent's socket")) app::die("the worker went away");
    sum = app::fnv1a(sum ^ v, &k, sizeof k);
    if (k % every == 0) {
      app::say(1, "item %ld sum %016llx\n", k, static_cast<unsigned long long>(sum));
      app::say(out, "item %ld sum %016llx\n", k, static_cast<unsigned long long>(sum));
    }
  }
  shutdown(sv[0], SHUT_WR);
  int st = 0;
  while (waitpid(child, &st, 0) < 0)
    if (errno != EINTR) app::die("waitpid: %s", strerror(errno));
  if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) app::die("worker failed: status 0x%x", st);
  app::say(1, "final items %ld sum %016llx\n", items, static_cast<unsigned long long>(sum));
  app::say(out, "final items %ld sum %016llx\n", items, static_cast<unsigned long long>(sum));
  close(out);
  return 0;
}
