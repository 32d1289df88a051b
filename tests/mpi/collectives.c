/* collectives: every blocking collective of MPI_COMM_WORLD, each step with
 * other roots and counts: MPI_Bcast (of an MPI_Type_vector of every other
 * int), Gather, Gatherv, Scatter, Scatterv, Allgather (of a struct type
 * made with MPI_Type_create_struct and MPI_Type_create_resized),
 * Allgatherv, Alltoall, Alltoallv, Reduce, Reduce_scatter,
 * Reduce_scatter_block, Scan, Exscan, MPI_Allreduce with a commutative
 * user op (sum modulo a prime) and MPI_Reduce with a non-commutative one
 * (composition of affine maps, which fixes the order of the ranks), and
 * MPI_MAXLOC on MPI_DOUBLE_INT. Gatherv and Scatterv get NULL counts
 * and displacements away from the root on odd steps. Every rank knows what it must receive: it
 * checks it and hashes it. */
#include <stddef.h>
#include <string.h>

#include "mpi_victim.h"

enum { MAXN = 64 };  /* ranks at most */

typedef struct {
    int64_t id;
    double x;
} item;

static long step;  /* the step, for val() */

static int val(int rank, int i) { return (int)((step + 1) * 1000 + rank * 100 + i); }
static int cnt(int rank) { return 1 + (int)((rank + step) % 4); }

/* Rank r's cnt(r) values val(r, i) + plus at displ[r], then a gap of -1. */
static void blocks(int *out, const int *displ, int n, int plus) {
    for (int r = 0; r < n; r++)
        for (int i = 0; i <= cnt(r); i++) out[displ[r] + i] = i < cnt(r) ? val(r, i) + plus : -1;
}

/* got must equal want: one check, and got goes into the hash. */
static void same(victim *v, const char *what, const void *got, const void *want, size_t bytes) {
    CHECK(v, memcmp(got, want, bytes) == 0, "step %ld: %s received something else", step, what);
    victim_hash(v, got, bytes);
}

static void mod_sum(void *in, void *inout, int *len, MPI_Datatype *t) {
    (void)t;
    for (int i = 0; i < *len; i++) ((int64_t *)inout)[i] = (((int64_t *)in)[i] + ((int64_t *)inout)[i]) % 1000003;
}

/* (a1, b1) o (a2, b2) = (a1 a2, a1 b2 + b1): x -> a1 (a2 x + b2) + b1. */
static void compose(void *in, void *inout, int *len, MPI_Datatype *t) {
    (void)t;
    uint64_t *f = in, *g = inout;
    for (int i = 0; i < *len; i++, f += 2, g += 2) g[1] = f[0] * g[1] + f[1], g[0] = f[0] * g[0];
}

int main(int argc, char **argv) {
    victim v;
    victim_init(&v, &argc, &argv, "collectives");
    int n = v.size, me = v.rank;
    if (n > MAXN) return 2;
    MPI_Datatype every_other, pair, item_t;
    MPI_Type_vector(32, 1, 2, MPI_INT, &every_other);
    MPI_Type_commit(&every_other);
    MPI_Type_contiguous(2, MPI_UINT64_T, &pair);
    MPI_Type_commit(&pair);
    int lens[2] = {1, 1};
    MPI_Aint offs[2] = {offsetof(item, id), offsetof(item, x)};
    MPI_Datatype types[2] = {MPI_INT64_T, MPI_DOUBLE}, tmp;
    MPI_Type_create_struct(2, lens, offs, types, &tmp);
    MPI_Type_create_resized(tmp, 0, sizeof(item), &item_t);
    MPI_Type_free(&tmp);
    MPI_Type_commit(&item_t);
    MPI_Op mod_op, compose_op;
    MPI_Op_create(mod_sum, 1, &mod_op);
    MPI_Op_create(compose, 0, &compose_op);
    int a[4 * MAXN * 4], b[4 * MAXN * 4], sc[MAXN], sd[MAXN], rc[MAXN], rd[MAXN];
    int64_t x[8], y[8], z[8];
    for (long k = 0; k < v.steps; k++) {
        victim_step(&v, k);
        step = k;
        int root = (int)(k % n), total = 0;
        for (int i = 0; i < 64; i++) a[i] = me == root || i % 2 ? val(root, i) : -1, b[i] = val(root, i);
        MPI_Bcast(a, 1, every_other, root, MPI_COMM_WORLD);
        same(&v, "Bcast", a, b, sizeof(int) * 64);

        root = (int)((k + 1) % n);
        for (int i = 0; i < 3; i++) a[i] = val(me, i);
        MPI_Gather(a, 3, MPI_INT, b, 3, MPI_INT, root, MPI_COMM_WORLD);
        for (int r = 0; r < n; r++) {
            sc[r] = cnt(r), sd[r] = total, total += cnt(r) + 1;  /* a gap between blocks */
            for (int i = 0; i < 3; i++) a[3 * r + i] = val(r, i);
        }
        if (me == root) same(&v, "Gather", b, a, sizeof(int) * 3 * (size_t)n);

        for (int i = 0; i < cnt(me); i++) a[i] = val(me, i);
        for (int i = 0; i < total; i++) b[i] = -1;
        /* The counts matter at the root alone: elsewhere they are NULL on odd
         * steps, as some codes pass them (GROMACS). */
        const int odd = (int)(k % 2);
        MPI_Gatherv(a, cnt(me), MPI_INT, b, odd && me != root ? NULL : sc, odd && me != root ? NULL : sd, MPI_INT, root,
                    MPI_COMM_WORLD);
        blocks(a, sd, n, 0);
        if (me == root) same(&v, "Gatherv", b, a, sizeof(int) * (size_t)total);

        root = (int)((k + 3) % n);
        blocks(a, sd, n, 7);
        MPI_Scatter(a, 2, MPI_INT, b, 2, MPI_INT, root, MPI_COMM_WORLD);
        same(&v, "Scatter", b, &a[2 * me], sizeof(int) * 2);
        MPI_Scatterv(odd && me != root ? NULL : a, odd && me != root ? NULL : sc, odd && me != root ? NULL : sd, MPI_INT, b,
                     cnt(me), MPI_INT, root, MPI_COMM_WORLD);
        same(&v, "Scatterv", b, &a[sd[me]], sizeof(int) * (size_t)cnt(me));

        item mine = {k * n + me, me + 0.5 * (double)k}, all[MAXN], want[MAXN];
        for (int r = 0; r < n; r++) want[r] = (item){k * n + r, r + 0.5 * (double)k};
        MPI_Allgather(&mine, 1, item_t, all, 1, item_t, MPI_COMM_WORLD);
        same(&v, "Allgather", all, want, sizeof(item) * (size_t)n);
        for (int i = 0; i < cnt(me); i++) a[i] = val(me, i);
        for (int i = 0; i < total; i++) b[i] = -1;
        MPI_Allgatherv(a, cnt(me), MPI_INT, b, sc, sd, MPI_INT, MPI_COMM_WORLD);
        blocks(a, sd, n, 0);
        same(&v, "Allgatherv", b, a, sizeof(int) * (size_t)total);

        for (int d = 0; d < n; d++) a[2 * d] = val(me, 2 * d), a[2 * d + 1] = val(me, 2 * d + 1);
        MPI_Alltoall(a, 2, MPI_INT, b, 2, MPI_INT, MPI_COMM_WORLD);
        for (int s = 0; s < n; s++) a[2 * s] = val(s, 2 * me), a[2 * s + 1] = val(s, 2 * me + 1);
        same(&v, "Alltoall", b, a, sizeof(int) * 2 * (size_t)n);

        int st = 0, rt = 0;
        for (int p = 0; p < n; p++) {
            sc[p] = 1 + (int)((me + p + k) % 3), sd[p] = st, st += sc[p];
            rc[p] = 1 + (int)((p + me + k) % 3), rd[p] = rt, rt += rc[p];
            for (int i = 0; i < sc[p]; i++) a[sd[p] + i] = val(me, 10 * p + i);
        }
        MPI_Alltoallv(a, sc, sd, MPI_INT, b, rc, rd, MPI_INT, MPI_COMM_WORLD);
        for (int p = 0; p < n; p++)
            for (int i = 0; i < rc[p]; i++) a[rd[p] + i] = val(p, 10 * me + i);
        same(&v, "Alltoallv", b, a, sizeof(int) * (size_t)rt);

        /* Reductions of int64 (exact): rank r contributes (k + 1) r^2 + i. */
        root = (int)((k + 2) % n);
        int64_t sq = 0, pre = 0;
        for (int r = 0; r < n; r++) sq += (int64_t)r * r * (k + 1), pre += r <= me ? r + k : 0;
        for (int i = 0; i < 8; i++) x[i] = (int64_t)me * me * (k + 1) + i, z[i] = sq + (int64_t)n * i;
        MPI_Reduce(x, y, 8, MPI_INT64_T, MPI_SUM, root, MPI_COMM_WORLD);
        if (me == root) same(&v, "Reduce", y, z, sizeof(int64_t) * 8);
        for (int r = 0; r < n; r++) rc[r] = 1 + r % 2;
        int off = 0;
        for (int r = 0; r < me; r++) off += rc[r];
        int64_t big[2 * MAXN], sum[2 * MAXN];
        for (int i = 0; i < 2 * n; i++) big[i] = (int64_t)me * me * (k + 1) + i;
        MPI_Reduce_scatter(big, y, rc, MPI_INT64_T, MPI_SUM, MPI_COMM_WORLD);
        for (int i = 0; i < rc[me]; i++) z[i] = sq + (int64_t)n * (off + i);
        same(&v, "Reduce_scatter", y, z, sizeof(int64_t) * (size_t)rc[me]);
        MPI_Reduce_scatter_block(big, sum, 2, MPI_INT64_T, MPI_SUM, MPI_COMM_WORLD);
        for (int i = 0; i < 2; i++) z[i] = sq + (int64_t)n * (2 * me + i);
        same(&v, "Reduce_scatter_block", sum, z, sizeof(int64_t) * 2);
        x[0] = me + k;
        MPI_Scan(x, y, 1, MPI_INT64_T, MPI_SUM, MPI_COMM_WORLD);
        same(&v, "Scan", y, &pre, sizeof pre);
        MPI_Exscan(x, y, 1, MPI_INT64_T, MPI_SUM, MPI_COMM_WORLD);
        pre -= me + k;
        if (me > 0) same(&v, "Exscan", y, &pre, sizeof pre);

        /* User ops. */
        for (int i = 0; i < 8; i++) x[i] = (me * 999983 + k * 7 + i) % 1000003, z[i] = 0;
        for (int r = 0; r < n; r++)
            for (int i = 0; i < 8; i++) z[i] = (z[i] + (r * 999983 + k * 7 + i) % 1000003) % 1000003;
        MPI_Allreduce(x, y, 8, MPI_INT64_T, mod_op, MPI_COMM_WORLD);
        same(&v, "Allreduce of a commutative user op", y, z, sizeof(int64_t) * 8);
        uint64_t f[2] = {2 * (uint64_t)me + 3 + (uint64_t)k, 7 * (uint64_t)me + (uint64_t)k}, g[2], h[2] = {1, 0};
        for (int r = 0; r < n; r++) {
            uint64_t e[2] = {2 * (uint64_t)r + 3 + (uint64_t)k, 7 * (uint64_t)r + (uint64_t)k};
            h[1] = h[0] * e[1] + h[1], h[0] = h[0] * e[0];  /* h = h o e */
        }
        root = (int)((k + 1) % n);
        MPI_Reduce(f, g, 1, pair, compose_op, root, MPI_COMM_WORLD);
        if (me == root) same(&v, "Reduce of a non-commutative user op", g, h, sizeof h);

        struct { double v; int i; } loc = {(double)((me * 5 + k) % 3), me}, best, top = {-1, 0};
        for (int r = n - 1; r >= 0; r--)
            if ((double)((r * 5 + k) % 3) >= top.v) top.v = (double)((r * 5 + k) % 3), top.i = r;
        MPI_Allreduce(&loc, &best, 1, MPI_DOUBLE_INT, MPI_MAXLOC, MPI_COMM_WORLD);
        CHECK(&v, best.v == top.v && best.i == top.i, "step %ld: MAXLOC %g at %d, expected %g at %d", k, best.v, best.i,
              top.v, top.i);
        victim_hash(&v, &best.v, sizeof best.v);
        victim_hash(&v, &best.i, sizeof best.i);
    }
    MPI_Op_free(&mod_op);
    MPI_Op_free(&compose_op);
    MPI_Type_free(&every_other);
    MPI_Type_free(&pair);
    MPI_Type_free(&item_t);
    return victim_finish(&v);
}
