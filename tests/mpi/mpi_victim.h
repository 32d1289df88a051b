/* The frame shared by the MPI victim programs (see README.md).
 *
 *   mpi_NAME STEPS EVERY [--pace USEC] [--lag RANK:USEC[:STRIDE]] [--stall RANK:STEP:USEC[:STRIDE]]
 *
 * A victim runs STEPS steps. At the top of step k, rank 0 prints "step k"
 * when k is a multiple of EVERY; then every rank sleeps --pace microseconds
 * (so that a run lasts as long as a test needs, whatever the machine), and
 * rank RANK of --lag sleeps USEC more (it stands for a rank that computes
 * longer: the others wait for it inside a blocking call or a collective),
 * and rank RANK of --stall sleeps USEC more at step STEP only (a moment
 * when the others are surely blocked: a test checkpoints the job when it
 * sees "step STEP"). With STRIDE, ranks RANK+STRIDE, RANK+2*STRIDE ... lag
 * or stall too. Pace, lag and stall change the timing, never the
 * output. Every rank
 * folds what it received, in the order it received it, into an FNV-1a hash
 * and runs self-checks; at the end rank 0 prints every rank's checksum, the
 * number of checks and PASS (exit 0 on every rank) or FAIL (exit 1).
 * Every line is written with one write(2); rank 0 writes all of stdout but
 * the FAIL lines of a failing check. */
#ifndef CKPT_MPI_VICTIM_H
#define CKPT_MPI_VICTIM_H

#include <mpi.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

/* Rank `rank` (-1: none), and with a stride, every stride-th rank after it. */
typedef struct {
    int rank, stride;
} victim_ranks;

typedef struct {
    const char *name;
    int rank, size;
    long steps, every;
    long pace_us;    /* every rank, every step */
    victim_ranks lag;    /* the ranks that sleep lag_us more every step */
    long lag_us;
    victim_ranks stall;  /* the ranks that sleep stall_us more at step stall_step */
    long stall_step, stall_us;
    uint64_t hash;   /* of everything received, in order */
    long checks, failed;
} victim;

/* MPI_Init and the command line; exits 2 on a bad command line. */
void victim_init(victim *v, int *argc, char ***argv, const char *name);
/* The top of step k: the progress line, the pace and the lag. */
void victim_step(victim *v, long k);
/* Folds n bytes into the rank's hash. */
void victim_hash(victim *v, const void *data, size_t n);
uint64_t fnv1a(uint64_t h, const void *data, size_t n);
#define FNV_BASIS 0xcbf29ce484222325ull
/* A self-check; a failure prints "FAIL NAME rank R FILE:LINE: message". */
#define CHECK(v, cond, ...) victim_check((v), (cond) != 0, __FILE__, __LINE__, __VA_ARGS__)
void victim_check(victim *v, int ok, const char *file, int line, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));
/* A line on stdout from rank 0 only. */
void victim_say(const victim *v, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Prints the checksums and the verdict, MPI_Finalize; returns the exit status. */
int victim_finish(victim *v);
/* malloc that ends the program when out of memory. */
void *xmalloc(size_t n);

#endif
