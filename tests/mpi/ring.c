/* ring: a token with a payload goes around the ring with blocking
 * MPI_Send/MPI_Recv (rank 0 starts it and gets it back); then every rank
 * shifts a buffer to its right with MPI_Sendrecv and one to a step-dependent
 * distance to its left with MPI_Sendrecv_replace. Payload sizes cycle from
 * 8 bytes to 512 KiB (eager and rendezvous protocols). Every rank checks
 * every value it receives, which it can compute, and hashes it in order. */
#include "mpi_victim.h"

static const int LENGTHS[] = {1, 3, 100, 1000, 4096, 20000, 65536};  /* int64s */
#define NLEN ((long)(sizeof LENGTHS / sizeof LENGTHS[0]))

static int64_t value(long step, int origin, long i) { return step * 1000003 + origin * 7919 + i * 31; }

static void fill(int64_t *buf, long n, long step, int origin) {
    for (long i = 0; i < n; i++) buf[i] = value(step, origin, i);
}

static long wrong(const int64_t *buf, long n, long step, int origin) {
    long bad = 0;
    for (long i = 0; i < n; i++) bad += buf[i] != value(step, origin, i);
    return bad;
}

int main(int argc, char **argv) {
    victim v;
    victim_init(&v, &argc, &argv, "ring");
    int right = (v.rank + 1) % v.size, left = (v.rank + v.size - 1) % v.size;
    int64_t *a = xmalloc(sizeof(int64_t) * 65537), *b = xmalloc(sizeof(int64_t) * 65537);
    MPI_Status st;
    for (long k = 0; k < v.steps; k++) {
        victim_step(&v, k);
        long n = LENGTHS[k % NLEN];
        /* The token: a[0] counts the hops, every rank adds its rank to a[1..n]. */
        if (v.rank == 0) {
            a[0] = k * v.size + 1;
            fill(a + 1, n, k, 0);
            MPI_Send(a, (int)n + 1, MPI_INT64_T, right, 1, MPI_COMM_WORLD);
        }
        MPI_Recv(a, (int)n + 1, MPI_INT64_T, left, 1, MPI_COMM_WORLD, &st);
        int count;
        MPI_Get_count(&st, MPI_INT64_T, &count);
        CHECK(&v, count == n + 1 && st.MPI_SOURCE == left && st.MPI_TAG == 1,
              "step %ld: token of %d values from %d tag %d", k, count, st.MPI_SOURCE, st.MPI_TAG);
        long hops = v.rank == 0 ? v.size : v.rank;
        CHECK(&v, a[0] == k * v.size + hops, "step %ld: token count %lld, expected %ld", k, (long long)a[0],
              k * v.size + hops);
        int64_t sum = 0;
        for (long i = 1; i <= n; i++) sum += a[i] - value(k, 0, i - 1);
        CHECK(&v, sum == n * (hops - 1) * (hops) / 2, "step %ld: token payload is off by %lld", k, (long long)sum);
        victim_hash(&v, a, sizeof(int64_t) * (size_t)(n + 1));
        if (v.rank != 0) {
            a[0]++;
            for (long i = 1; i <= n; i++) a[i] += v.rank;
            MPI_Send(a, (int)n + 1, MPI_INT64_T, right, 1, MPI_COMM_WORLD);
        }
        /* One hop to the right. */
        long m = LENGTHS[(k + 3) % NLEN];
        fill(a, m, k, v.rank);
        MPI_Sendrecv(a, (int)m, MPI_INT64_T, right, 2, b, (int)m, MPI_INT64_T, left, 2, MPI_COMM_WORLD, &st);
        CHECK(&v, wrong(b, m, k, left) == 0, "step %ld: Sendrecv from %d: %ld wrong values", k, left, wrong(b, m, k, left));
        victim_hash(&v, b, sizeof(int64_t) * (size_t)m);
        /* d hops to the left, in place. */
        int d = 1 + (int)(k % (v.size > 1 ? v.size - 1 : 1));
        int to = (v.rank + v.size - d) % v.size, from = (v.rank + d) % v.size;
        long r = LENGTHS[(k + 5) % NLEN];
        fill(b, r, k + 1, v.rank);
        MPI_Sendrecv_replace(b, (int)r, MPI_INT64_T, to, 3, from, 3, MPI_COMM_WORLD, &st);
        CHECK(&v, wrong(b, r, k + 1, from) == 0 && st.MPI_SOURCE == from, "step %ld: Sendrecv_replace from %d: %ld wrong",
              k, from, wrong(b, r, k + 1, from));
        victim_hash(&v, b, sizeof(int64_t) * (size_t)r);
    }
    free(a);
    free(b);
    return victim_finish(&v);
}
