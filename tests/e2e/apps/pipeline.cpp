// app_pipeline: a fork tree of workers connected by pipes.
//
//   app_pipeline OUTFILE [RECORDS=20000] [WORK=20000] [EVERY=500]
//
// The parent forks four workers and waits for them:
//   generator --pipe--> transform A --pipe--> transform B --pipe--> collector
// The generator emits RECORDS fixed-size records (sequence number, seed
// value); each transform replaces the value by WORK rounds of a mixing
// function keyed by its own constant (CPU work, so the run takes seconds);
// the collector appends one line per record to OUTFILE (opened O_APPEND for
// the whole run), keeps an FNV-1a digest of those lines and every EVERY
// records prints
//   collected K digest D
// then at the end
//   final records K digest D
// The parent checks that every worker exited 0 and prints
//   pipeline ok workers 4 records K
#include "app_common.h"

#include <fcntl.h>
#include <sys/wait.h>

namespace {

struct Record {
  uint64_t seq;
  uint64_t value;
};

uint64_t transform(uint64_t v, long work, uint64_t key) {
  for (long i = 0; i < work; ++i) v = app::splitmix(v ^ key) + static_cast<uint64_t>(i);
  return v;
}

[[noreturn]] void generator(int out, long records) {
  for (long i = 0; i < records; ++i) {
    Record r{static_cast<uint64_t>(i), app::splitmix(static_cast<uint64_t>(i) * 7919)};
    app::write_all(out, &r, sizeof r, "the generator's pipe");
  }
  close(out);
  _exit(0);
}

[[noreturn]] void transformer(int in, int out, long work, uint64_t key) {
  Record r{};
  uint64_t expect = 0;
  while (app::read_all(in, &r, sizeof r, "a transform's input")) {
    if (r.seq != expect) app::die("transform %llx: record %llu out of order (expected %llu)", (unsigned long long)key,
                                  (unsigned long long)r.seq, (unsigned long long)expect);
    ++expect;
    r.value = transform(r.value, work, key);
    app::write_all(out, &r, sizeof r, "a transform's output");
  }
  close(out);
  _exit(0);
}

[[noreturn]] void collector(int in, const char* path, long records, long every) {
  int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_APPEND | O_CLOEXEC, 0644);
  if (fd < 0) app::die("open %s: %s", path, strerror(errno));
  uint64_t digest = app::kFnvBasis;
  Record r{};
  long k = 0;
  while (app::read_all(in, &r, sizeof r, "the collector's input")) {
    if (r.seq != static_cast<uint64_t>(k)) app::die("collector: record %llu out of order", (unsigned long long)r.seq);
    char line[64];
    int len = snprintf(line, sizeof line, "%07llu %016llx\n", (unsigned long long)r.seq, (unsigned long long)r.value);
    app::write_all(fd, line, static_cast<size_t>(len), path);
    digest = app::fnv1a(digest, line, static_cast<size_t>(len));
    ++k;
    if (k % every == 0) app::say(1, "collected %ld digest %016llx\n", k, (unsigned long long)digest);
  }
  if (k != records) app::die("collector: %ld records, expected %ld", k, records);
  close(fd);
  app::say(1, "final records %ld digest %016llx\n", k, (unsigned long long)digest);
  _exit(0);
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) app::die("usage: app_pipeline OUTFILE [RECORDS] [WORK] [EVERY]");
  const long records = app::arg_long(argc, argv, 2, 20000);
  const long work = app::arg_long(argc, argv, 3, 20000);
  const long every = app::arg_long(argc, argv, 4, 500);
  app::say(1, "start pipeline records %ld work %ld\n", records, work);

  int p[3][2];
  for (auto& fds : p)
    if (pipe2(fds, O_CLOEXEC) != 0) app::die("pipe: %s", strerror(errno));
  auto close_all_but = [&](int keep_read, int keep_write) {
    for (int i = 0; i < 3; ++i) {
      if (i != keep_read) close(p[i][0]);
      if (i != keep_write) close(p[i][1]);
    }
  };
  const char* names[4] = {"generator", "transform-a", "transform-b", "collector"};
  pid_t pids[4];
  for (int w = 0; w < 4; ++w) {
    pids[w] = fork();
    if (pids[w] < 0) app::die("fork: %s", strerror(errno));
    if (pids[w] == 0) {
      switch (w) {
        case 0: close_all_but(-1, 0); generator(p[0][1], records);
        case 1: close_all_but(0, 1); transformer(p[0][0], p[1][1], work, 0x5851f42d4c957f2dULL);
        case 2: close_all_but(1, 2); transformer(p[1][0], p[2][1], work, 0x14057b7ef767814fULL);
        default: close_all_but(2, -1); collector(p[2][0], argv[1], records, every);
      }
    }
  }
  close_all_but(-1, -1);
  int failures = 0;
  for (int w = 0; w < 4; ++w) {
    int st = 0;
    while (waitpid(pids[w], &st, 0) < 0)
      if (errno != EINTR) app::die("waitpid %s: %s", names[w], strerror(errno));
    if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) {
      app::say(1, "worker %s failed: status 0x%x\n", names[w], st);
      ++failures;
    }
  }
  if (failures) return 1;
  app::say(1, "pipeline ok workers 4 records %ld\n", records);
  return 0;
}
