/* The frame shared by the MPI victims: command line, progress, pace and lag,
 * hashing, self-checks and the final report (mpi_victim.h). */
#define _POSIX_C_SOURCE 200809L
#include "mpi_victim.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

enum { MAX_FAIL_LINES = 10 };  /* per rank; the count is exact */

static void write_line(int fd, const char *fmt, va_list ap) {
    char buf[1024];
    int n = vsnprintf(buf, sizeof buf - 1, fmt, ap);
    if (n < 0) n = 0;
    if (n > (int)sizeof buf - 2) n = (int)sizeof buf - 2;
    buf[n++] = '\n';
    for (char *p = buf; n > 0;) {
        ssize_t w = write(fd, p, (size_t)n);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) _exit(3);
        p += w;
        n -= (int)w;
    }
}

static void say(int fd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void say(int fd, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    write_line(fd, fmt, ap);
    va_end(ap);
}

void victim_say(const victim *v, const char *fmt, ...) {
    if (v->rank != 0) return;
    va_list ap;
    va_start(ap, fmt);
    write_line(1, fmt, ap);
    va_end(ap);
}

static void bad(const char *name, const char *what, const char *arg) {
    say(2, "mpi_%s: bad %s: %s (usage: mpi_%s STEPS EVERY [--pace USEC] [--lag RANK:USEC[:STRIDE]] [--stall RANK:STEP:USEC[:STRIDE]])",
        name, what, arg, name);
    exit(2);
}

/* n non-negative numbers separated by ':'. */
static void numbers(const char *arg, long *out, int n, const char *what, const char *name) {
    const char *p = arg;
    for (int i = 0; i < n; i++) {
        char *end;
        errno = 0;
        out[i] = strtol(p, &end, 10);
        if (errno || end == p || out[i] < 0 || *end != (i < n - 1 ? ':' : '\0')) bad(name, what, arg);
        p = end + 1;
    }
}

/* n numbers and an optional STRIDE after them (0 when absent) in out[n]. */
static void numbers_and_stride(const char *arg, long *out, int n, const char *what, const char *name) {
    int colons = 0;
    for (const char *p = arg; *p; p++) colons += *p == ':';
    out[n] = 0;
    numbers(arg, out, colons == n ? n + 1 : n, what, name);
}

void victim_init(victim *v, int *argc, char ***argv, const char *name) {
    memset(v, 0, sizeof *v);
    v->name = name;
    v->lag.rank = v->stall.rank = -1;
    v->hash = FNV_BASIS;
    MPI_Init(argc, argv);
    MPI_Comm_rank(MPI_COMM_WORLD, &v->rank);
    MPI_Comm_size(MPI_COMM_WORLD, &v->size);
    char **a = *argv;
    int positional = 0;
    for (int i = 1; i < *argc; i++) {
        long f[4];
        if (i + 1 >= *argc && a[i][0] == '-') {
            bad(name, "option without its value", a[i]);
        } else if (!strcmp(a[i], "--pace")) {
            numbers(a[++i], &v->pace_us, 1, "--pace", name);
        } else if (!strcmp(a[i], "--lag")) {
            numbers_and_stride(a[++i], f, 2, "--lag", name);
            v->lag.rank = (int)f[0], v->lag_us = f[1], v->lag.stride = (int)f[2];
        } else if (!strcmp(a[i], "--stall")) {
            numbers_and_stride(a[++i], f, 3, "--stall", name);
            v->stall.rank = (int)f[0], v->stall_step = f[1], v->stall_us = f[2], v->stall.stride = (int)f[3];
        } else if (positional < 2) {
            numbers(a[i], positional ? &v->every : &v->steps, 1, positional ? "EVERY" : "STEPS", name);
            positional++;
        } else {
            bad(name, "argument", a[i]);
        }
    }
    if (positional != 2 || v->every < 1) bad(name, "command line", positional == 2 ? "EVERY 0" : "STEPS and EVERY missing");
}

static int chosen(const victim *v, victim_ranks r) {
    if (r.rank < 0 || v->rank < r.rank) return 0;
    return r.stride > 0 ? (v->rank - r.rank) % r.stride == 0 : v->rank == r.rank;
}

void victim_step(victim *v, long k) {
    if (k % v->every == 0) victim_say(v, "step %ld", k);
    long us = v->pace_us + (chosen(v, v->lag) ? v->lag_us : 0) + (chosen(v, v->stall) && k == v->stall_step ? v->stall_us : 0);
    if (us > 0) {
        struct timespec t = {us / 1000000, us % 1000000 * 1000};
        while (nanosleep(&t, &t) != 0 && errno == EINTR) {
        }
    }
}

uint64_t fnv1a(uint64_t h, const void *data, size_t n) {
    const unsigned char *p = data;
    for (size_t i = 0; i < n; i++) h = (h ^ p[i]) * 0x100000001b3ull;
    return h;
}

void victim_hash(victim *v, const void *data, size_t n) { v->hash = fnv1a(v->hash, data, n); }

void victim_check(victim *v, int ok, const char *file, int line, const char *fmt, ...) {
    v->checks++;
    if (ok) return;
    if (v->failed++ >= MAX_FAIL_LINES) return;
    char msg[768];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    say(1, "FAIL %s rank %d %s:%d: %s", v->name, v->rank, file, line, msg);
}

int victim_finish(victim *v) {
    uint64_t *hashes = v->rank == 0 ? xmalloc(sizeof *hashes * (size_t)v->size) : NULL;
    long counts[2] = {v->checks, v->failed}, total[2];
    MPI_Gather(&v->hash, 1, MPI_UINT64_T, hashes, 1, MPI_UINT64_T, 0, MPI_COMM_WORLD);
    MPI_Allreduce(counts, total, 2, MPI_LONG, MPI_SUM, MPI_COMM_WORLD);
    if (v->rank == 0) {
        uint64_t all = FNV_BASIS;
        for (int r = 0; r < v->size; r++) {
            say(1, "rank %d checksum %016llx", r, (unsigned long long)hashes[r]);
            all = fnv1a(all, &hashes[r], sizeof hashes[r]);
        }
        say(1, "%s: %d ranks, %ld steps, checksum %016llx", v->name, v->size, v->steps, (unsigned long long)all);
        if (total[1] == 0)
            say(1, "PASS %s: %ld checks", v->name, total[0]);
        else
            say(1, "FAIL %s: %ld of %ld checks failed", v->name, total[1], total[0]);
    }
    free(hashes);
    MPI_Finalize();
    return total[1] == 0 ? 0 : 1;
}

void *xmalloc(size_t n) {
    void *p = malloc(n ? n : 1);
    if (!p) {
        say(2, "out of memory (%zu bytes)", n);
        abort();
    }
    return p;
}
