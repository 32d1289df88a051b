/* heap: the program's own memory management around MPI, which the MPI layer
 * takes over for large blocks (its shared heap, docs/architecture.md). Every
 * step: a block grows and shrinks with realloc (its content must survive);
 * a dirty block is freed and calloc must give zeros; posix_memalign and
 * aligned_alloc must honour their alignment; malloc_usable_size must cover
 * the request. Messages go from and to unaligned places inside large
 * blocks (Isend/Irecv/Waitall with the left and right neighbours, a
 * blocking Sendrecv of bytes at odd offsets, an Allreduce of a large
 * array); every value received is checked and hashed. Every 7 steps a child
 * is forked that allocates and writes large blocks of its own and exits;
 * the parent's blocks must be unchanged. */
#define _GNU_SOURCE  /* fork, posix_memalign, malloc_usable_size */
#include "mpi_victim.h"

#include <malloc.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#define BIG (1L << 20)  /* bytes of the largest block */

static int64_t value(long step, int origin, long i) { return step * 7777 + origin * 1000003 + i * 13; }

static long wrong_values(const int64_t *p, long n, long step, int origin) {
    long bad = 0;
    for (long i = 0; i < n; i++) bad += p[i] != value(step, origin, i);
    return bad;
}

static void fill(int64_t *p, long n, long step, int origin) {
    for (long i = 0; i < n; i++) p[i] = value(step, origin, i);
}

/* The size of step k's growing block, 64 B to 1 MiB. */
static size_t grow_size(long k) { return (size_t)64 << (k % 15); }

static void check_allocators(victim *v, long k, unsigned char **grower, size_t *grower_size) {
    /* realloc keeps what fits. */
    size_t want = grow_size(k) + (size_t)(k % 5) * 24;
    if (want > BIG) want = BIG;
    unsigned char *g = realloc(*grower, want);
    CHECK(v, g != NULL, "step %ld: realloc to %zu failed", k, want);
    if (!g) return;
    size_t kept = want < *grower_size ? want : *grower_size, bad = 0;
    for (size_t i = 0; i < kept; i++) bad += g[i] != (unsigned char)(i * 7 + 1);
    CHECK(v, bad == 0, "step %ld: realloc from %zu to %zu lost %zu bytes", k, *grower_size, want, bad);
    for (size_t i = kept; i < want; i++) g[i] = (unsigned char)(i * 7 + 1);
    CHECK(v, malloc_usable_size(g) >= want, "step %ld: malloc_usable_size %zu < %zu", k, malloc_usable_size(g), want);
    *grower = g, *grower_size = want;

    /* calloc after a dirty free of the same size. */
    size_t n = (size_t)(256 << 10) + (size_t)(k % 3) * 4096;
    unsigned char *dirty = xmalloc(n);
    memset(dirty, 0xa5, n);
    free(dirty);
    unsigned char *zero = calloc(n, 1);
    size_t nonzero = 0;
    for (size_t i = 0; zero && i < n; i++) nonzero += zero[i] != 0;
    CHECK(v, zero && nonzero == 0, "step %ld: calloc of %zu bytes has %zu non-zero bytes", k, n, nonzero);
    free(zero);

    /* Alignment. */
    void *a = NULL;
    size_t align = (size_t)64 << (k % 7);  /* 64 B to 4 KiB */
    int rc = posix_memalign(&a, align, 300 << 10);
    CHECK(v, rc == 0 && ((uintptr_t)a % align) == 0, "step %ld: posix_memalign(%zu) gave %p (rc %d)", k, align, a, rc);
    if (a) memset(a, 1, 300 << 10);
    free(a);
    void *b = aligned_alloc(256, 512 << 10);
    CHECK(v, b && ((uintptr_t)b % 256) == 0, "step %ld: aligned_alloc(256) gave %p", k, b);
    free(b);
}

/* A forked child allocates and writes large blocks of its own; the
 * parent's must not change. */
static void check_fork(victim *v, long k, const int64_t *mine, long n) {
    uint64_t before = fnv1a(FNV_BASIS, mine, sizeof *mine * (size_t)n);
    pid_t child = fork();
    if (child == 0) {
        for (int i = 0; i < 4; i++) {
            unsigned char *p = malloc(BIG);
            if (!p) _exit(3);
            memset(p, 0x5a, BIG);
            free(p);
        }
        _exit(0);
    }
    int status = 0;
    CHECK(v, child > 0 && waitpid(child, &status, 0) == child && WIFEXITED(status) && WEXITSTATUS(status) == 0,
          "step %ld: the forked child failed (status %d)", k, status);
    uint64_t after = fnv1a(FNV_BASIS, mine, sizeof *mine * (size_t)n);
    CHECK(v, before == after, "step %ld: the parent's block changed while a forked child allocated", k);
}

int main(int argc, char **argv) {
    victim v;
    victim_init(&v, &argc, &argv, "heap");
    int right = (v.rank + 1) % v.size, left = (v.rank + v.size - 1) % v.size;
    long n = (long)(BIG / sizeof(int64_t)) - 64;
    int64_t *out = xmalloc(BIG), *in_left = xmalloc(BIG), *in_right = xmalloc(BIG);
    unsigned char *bytes_out = xmalloc(1 << 20), *bytes_in = xmalloc(1 << 20);
    double *sum = xmalloc(sizeof(double) * 40000), *total = xmalloc(sizeof(double) * 40000);
    unsigned char *grower = NULL;
    size_t grower_size = 0;
    for (long k = 0; k < v.steps; k++) {
        victim_step(&v, k);
        check_allocators(&v, k, &grower, &grower_size);

        /* From and to places inside the blocks that move every step. */
        long at = k % 61, len = 1000 + (k * 7919) % (n - 61 - 1000);
        fill(out + at, len, k, v.rank);
        MPI_Request r[4];
        MPI_Irecv(in_left + at + 1, (int)len, MPI_INT64_T, left, 5, MPI_COMM_WORLD, &r[0]);
        MPI_Irecv(in_right + at + 2, (int)len, MPI_INT64_T, right, 6, MPI_COMM_WORLD, &r[1]);
        MPI_Isend(out + at, (int)len, MPI_INT64_T, right, 5, MPI_COMM_WORLD, &r[2]);
        MPI_Isend(out + at, (int)len, MPI_INT64_T, left, 6, MPI_COMM_WORLD, &r[3]);
        MPI_Waitall(4, r, MPI_STATUSES_IGNORE);
        CHECK(&v, wrong_values(in_left + at + 1, len, k, left) == 0, "step %ld: %ld wrong values from the left", k,
              wrong_values(in_left + at + 1, len, k, left));
        CHECK(&v, wrong_values(in_right + at + 2, len, k, right) == 0, "step %ld: %ld wrong values from the right", k,
              wrong_values(in_right + at + 2, len, k, right));
        victim_hash(&v, in_left + at + 1, sizeof(int64_t) * (size_t)len);
        victim_hash(&v, in_right + at + 2, sizeof(int64_t) * (size_t)len);

        /* Bytes at odd offsets, blocking. */
        int off = (int)(k % 13) * 3 + 1, count = 100000 + (int)(k % 9) * 77777;
        for (int i = 0; i < count; i++) bytes_out[off + i] = (unsigned char)(i ^ (int)k ^ v.rank);
        MPI_Status st;
        MPI_Sendrecv(bytes_out + off, count, MPI_BYTE, right, 7, bytes_in + off + 1, count, MPI_BYTE, left, 7, MPI_COMM_WORLD, &st);
        int got = 0, bad = 0;
        MPI_Get_count(&st, MPI_BYTE, &got);
        for (int i = 0; i < count; i++) bad += bytes_in[off + 1 + i] != (unsigned char)(i ^ (int)k ^ left);
        CHECK(&v, got == count && bad == 0, "step %ld: Sendrecv of %d bytes: got %d, %d wrong", k, count, got, bad);
        victim_hash(&v, bytes_in + off + 1, (size_t)count);

        /* A large reduction in the heap. */
        for (int i = 0; i < 40000; i++) sum[i] = (double)((i + k) % 1000) * (v.rank + 1);
        MPI_Allreduce(sum, total, 40000, MPI_DOUBLE, MPI_SUM, MPI_COMM_WORLD);
        long off_by = 0;
        for (int i = 0; i < 40000; i++) off_by += total[i] != (double)((i + k) % 1000) * v.size * (v.size + 1) / 2;
        CHECK(&v, off_by == 0, "step %ld: Allreduce: %ld wrong sums", k, off_by);
        victim_hash(&v, total, sizeof(double) * 40000);

        if (k % 7 == 3) check_fork(&v, k, out, n);
    }
    free(grower);
    free(out), free(in_left), free(in_right), free(bytes_out), free(bytes_in), free(sum), free(total);
    return victim_finish(&v);
}
