/* nbc: nonblocking collectives and requests. Every step: MPI_Ibarrier,
 * Ibcast, Iallreduce, Ialltoall and Igather posted together, then a fixed
 * amount of computation in chunks with MPI_Testall between them (and
 * MPI_Waitall for what is left); persistent requests to the neighbours
 * (MPI_Send_init/MPI_Recv_init made once) started with MPI_Startall and
 * completed with MPI_Waitany together with an Isend/Irecv pair, another
 * persistent pair started one by one with MPI_Start and MPI_Wait; four
 * Isend/Irecv completed with MPI_Waitsome; an MPI_Issend and its receive
 * polled with MPI_Test; an MPI_Irecv that nobody matches, cancelled with
 * MPI_Cancel (MPI_Test_cancelled must say so). How often a test is repeated
 * depends on timing; nothing hashed does. */
#include "mpi_victim.h"

enum { WORK = 16, CELLS = 2048 };

static double cells[CELLS];

static void compute(int chunk) {
    for (int i = 0; i < CELLS; i++) cells[i] = cells[i] * 0.999 + (double)((i * 7 + chunk) % 13);
}

static int64_t val(long k, int rank, int i) { return k * 100003 + rank * 1009 + i; }

static void fill(int64_t *buf, int n, long k, int rank) {
    for (int i = 0; i < n; i++) buf[i] = val(k, rank, i);
}

/* buf must hold what fill(k, rank) wrote: one check, and buf is hashed. */
static void expect(victim *v, const char *what, const int64_t *buf, int n, long k, int rank) {
    long bad = 0;
    for (int i = 0; i < n; i++) bad += buf[i] != val(k, rank, i);
    CHECK(v, bad == 0, "step %ld: %s from rank %d: %ld wrong values", k, what, rank, bad);
    victim_hash(v, buf, sizeof(int64_t) * (size_t)n);
}

int main(int argc, char **argv) {
    victim v;
    victim_init(&v, &argc, &argv, "nbc");
    int n = v.size, me = v.rank, right = (me + 1) % n, left = (me + n - 1) % n, flag, idx, out, done[4];
    int64_t ps[8], pr[8], qs[8], qr[8], s4[4][8], r4[4][8], bc[16], x[4], y[4], aa[2 * 64], ar[2 * 64], *gat;
    gat = xmalloc(sizeof(int64_t) * (size_t)n);
    MPI_Request pers[2], single[2], rq[4], c[5];
    MPI_Status st;
    MPI_Send_init(ps, 8, MPI_INT64_T, right, 10, MPI_COMM_WORLD, &pers[0]);
    MPI_Recv_init(pr, 8, MPI_INT64_T, left, 10, MPI_COMM_WORLD, &pers[1]);
    MPI_Send_init(qs, 8, MPI_INT64_T, left, 14, MPI_COMM_WORLD, &single[0]);
    MPI_Recv_init(qr, 8, MPI_INT64_T, right, 14, MPI_COMM_WORLD, &single[1]);
    for (long k = 0; k < v.steps; k++) {
        victim_step(&v, k);
        int root = (int)(k % n), groot = (int)((k + 1) % n);
        if (me == root) fill(bc, 16, k, root);
        fill(x, 4, k, me);
        for (int d = 0; d < n && d < 64; d++) aa[2 * d] = val(k, me, 2 * d), aa[2 * d + 1] = val(k, me, 2 * d + 1);
        int64_t g = val(k, me, 0);
        MPI_Ibarrier(MPI_COMM_WORLD, &c[0]);
        MPI_Ibcast(bc, 16, MPI_INT64_T, root, MPI_COMM_WORLD, &c[1]);
        MPI_Iallreduce(x, y, 4, MPI_INT64_T, MPI_SUM, MPI_COMM_WORLD, &c[2]);
        MPI_Ialltoall(aa, 2, MPI_INT64_T, ar, 2, MPI_INT64_T, MPI_COMM_WORLD, &c[3]);
        MPI_Igather(&g, 1, MPI_INT64_T, gat, 1, MPI_INT64_T, groot, MPI_COMM_WORLD, &c[4]);
        flag = 0;
        for (int w = 0; w < WORK; w++) {
            compute(w);
            if (!flag) MPI_Testall(5, c, &flag, MPI_STATUSES_IGNORE);
        }
        if (!flag) MPI_Waitall(5, c, MPI_STATUSES_IGNORE);
        expect(&v, "Ibcast", bc, 16, k, root);
        int64_t sum[4] = {0, 0, 0, 0};
        for (int r = 0; r < n; r++)
            for (int i = 0; i < 4; i++) sum[i] += val(k, r, i);
        CHECK(&v, x[0] == val(k, me, 0) && y[0] == sum[0] && y[1] == sum[1] && y[2] == sum[2] && y[3] == sum[3],
              "step %ld: Iallreduce", k);
        victim_hash(&v, y, sizeof y);
        for (int s = 0; s < n && s < 64; s++) {
            CHECK(&v, ar[2 * s] == val(k, s, 2 * me) && ar[2 * s + 1] == val(k, s, 2 * me + 1), "step %ld: Ialltoall from %d", k, s);
            victim_hash(&v, &ar[2 * s], 2 * sizeof(int64_t));
        }
        if (me == groot) {
            long bad = 0;
            for (int r = 0; r < n; r++) bad += gat[r] != val(k, r, 0);
            CHECK(&v, bad == 0, "step %ld: Igather: %ld wrong", k, bad);
            victim_hash(&v, gat, sizeof(int64_t) * (size_t)n);
        }

        /* Persistent and plain requests completed with MPI_Waitany. */
        fill(ps, 8, k, me);
        fill(s4[0], 8, k + 1, me);
        MPI_Startall(2, pers);
        rq[0] = pers[0], rq[1] = pers[1];
        MPI_Irecv(r4[0], 8, MPI_INT64_T, right, 11, MPI_COMM_WORLD, &rq[2]);
        MPI_Isend(s4[0], 8, MPI_INT64_T, left, 11, MPI_COMM_WORLD, &rq[3]);
        int completed = 0;
        for (;;) {
            MPI_Waitany(4, rq, &idx, &st);
            if (idx == MPI_UNDEFINED) break;
            completed++;  /* (a completed persistent request is inactive: Waitany skips it) */
        }
        CHECK(&v, completed == 4, "step %ld: MPI_Waitany completed %d of 4 requests", k, completed);
        expect(&v, "persistent receive", pr, 8, k, left);
        expect(&v, "Irecv (Waitany)", r4[0], 8, k + 1, right);
        fill(qs, 8, k + 2, me);
        MPI_Start(&single[1]);
        MPI_Start(&single[0]);
        MPI_Wait(&single[0], MPI_STATUS_IGNORE);
        MPI_Wait(&single[1], &st);
        CHECK(&v, st.MPI_SOURCE == right && st.MPI_TAG == 14, "step %ld: MPI_Start receive from %d tag %d", k,
              st.MPI_SOURCE, st.MPI_TAG);
        expect(&v, "MPI_Start receive", qr, 8, k + 2, right);

        /* MPI_Waitsome. */
        int peer[4] = {left, right, right, left};
        for (int i = 0; i < 2; i++) fill(s4[i + 2], 8, k + 3 + i, me);
        MPI_Irecv(r4[0], 8, MPI_INT64_T, left, 12, MPI_COMM_WORLD, &rq[0]);
        MPI_Irecv(r4[1], 8, MPI_INT64_T, right, 13, MPI_COMM_WORLD, &rq[1]);
        MPI_Isend(s4[2], 8, MPI_INT64_T, right, 12, MPI_COMM_WORLD, &rq[2]);
        MPI_Isend(s4[3], 8, MPI_INT64_T, left, 13, MPI_COMM_WORLD, &rq[3]);
        completed = 0;
        for (;;) {
            MPI_Waitsome(4, rq, &out, done, MPI_STATUSES_IGNORE);
            if (out == MPI_UNDEFINED) break;
            completed += out;
        }
        CHECK(&v, completed == 4, "step %ld: MPI_Waitsome completed %d of 4 requests", k, completed);
        expect(&v, "Irecv (Waitsome)", r4[0], 8, k + 3, peer[0]);
        expect(&v, "Irecv (Waitsome)", r4[1], 8, k + 4, peer[1]);

        /* A synchronous send polled with MPI_Test. */
        fill(s4[1], 8, k + 5, me);
        MPI_Irecv(r4[2], 8, MPI_INT64_T, left, 15, MPI_COMM_WORLD, &rq[0]);
        MPI_Issend(s4[1], 8, MPI_INT64_T, right, 15, MPI_COMM_WORLD, &rq[1]);
        for (int sent = 0, got = 0; !sent || !got;) {
            if (!sent) MPI_Test(&rq[1], &sent, MPI_STATUS_IGNORE);
            if (!got) MPI_Test(&rq[0], &got, MPI_STATUS_IGNORE);
        }
        expect(&v, "Irecv of an Issend", r4[2], 8, k + 5, left);

        /* A receive nobody matches, cancelled. */
        MPI_Irecv(r4[3], 8, MPI_INT64_T, MPI_ANY_SOURCE, 99, MPI_COMM_WORLD, &rq[0]);
        MPI_Cancel(&rq[0]);
        MPI_Wait(&rq[0], &st);
        MPI_Test_cancelled(&st, &flag);
        CHECK(&v, flag, "step %ld: the cancelled receive was not cancelled", k);
    }
    victim_hash(&v, cells, sizeof cells);  /* the same work was done whatever the timing */
    for (int i = 0; i < 2; i++) MPI_Request_free(&pers[i]), MPI_Request_free(&single[i]);
    free(gat);
    return victim_finish(&v);
}
