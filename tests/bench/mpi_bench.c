/* MPI figures for tests/bench/mpi-bench.sh: the same binary runs on plain
 * Open MPI and under ckpt-run (the MPI layer), so the two can be compared.
 *
 *   mpi_bench p2p     (2 ranks or more; ranks 0 and 1 measure, the others wait)
 *     pingpong_8B_us      half the round trip of 8 bytes, MPI_Send/MPI_Recv
 *     pingpong_1MiB_MBps  1 MiB each way, bytes moved / time (1 MB = 10^6 bytes)
 *   mpi_bench coll    (any number of ranks)
 *     allreduce_8B_us     one MPI_Allreduce of a double, MPI_SUM
 *     allreduce_1MiB_us   one MPI_Allreduce of 131072 doubles
 *   mpi_bench halo    (any number of ranks; N: how many ran)
 *     halo_iter_us_Nranks one iteration of a 2-D halo mini-application: 512 x
 *                         512 doubles per rank on an MPI_Cart_create grid,
 *                         MPI_Sendrecv of rows and of columns (a vector type)
 *                         with the four neighbours, a 5-point update, an
 *                         MPI_Allreduce of the residual every 10 iterations
 *     halo_nb_iter_us_Nranks  the same with the exchange's four receives and
 *                         four sends posted (MPI_Irecv, MPI_Isend), then one
 *                         MPI_Waitall
 *
 * Each figure is the median of TRIALS (7) timed trials after one untimed
 * one; a trial's time is the slowest rank's (MPI_MAX). Rank 0 prints
 * "name value" lines. Never passes or fails on timing. */
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { TRIALS = 7, SIDE = 512 };

typedef double (*trial_fn)(int reps);  /* seconds of reps repetitions on this rank */

static int rank, size;
static char *buf, *buf2;  /* 1 MiB each */

static int cmp(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* The median over trials of the slowest rank's time of one repetition. */
static double median(trial_fn fn, int reps) {
    double t[TRIALS];
    for (int i = -1; i < TRIALS; i++) {
        MPI_Barrier(MPI_COMM_WORLD);
        double mine = fn(reps) / reps, slowest;
        MPI_Allreduce(&mine, &slowest, 1, MPI_DOUBLE, MPI_MAX, MPI_COMM_WORLD);
        if (i >= 0) t[i] = slowest;
    }
    qsort(t, TRIALS, sizeof t[0], cmp);
    return t[TRIALS / 2];
}

static double pingpong(int reps, int bytes) {
    double t0 = MPI_Wtime();
    for (int i = 0; i < reps && rank < 2; i++) {
        if (rank == 0) {
            MPI_Send(buf, bytes, MPI_BYTE, 1, 0, MPI_COMM_WORLD);
            MPI_Recv(buf, bytes, MPI_BYTE, 1, 0, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
        } else {
            MPI_Recv(buf, bytes, MPI_BYTE, 0, 0, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
            MPI_Send(buf, bytes, MPI_BYTE, 0, 0, MPI_COMM_WORLD);
        }
    }
    return MPI_Wtime() - t0;
}

static double pingpong_small(int reps) { return pingpong(reps, 8); }
static double pingpong_large(int reps) { return pingpong(reps, 1 << 20); }

static double allreduce(int reps, int count) {
    double t0 = MPI_Wtime();
    for (int i = 0; i < reps; i++)
        MPI_Allreduce(buf, buf2, count, MPI_DOUBLE, MPI_SUM, MPI_COMM_WORLD);
    return MPI_Wtime() - t0;
}

static double allreduce_small(int reps) { return allreduce(reps, 1); }
static double allreduce_large(int reps) { return allreduce(reps, (1 << 20) / (int)sizeof(double)); }

/* rows: first interior row down, last interior row up; columns likewise */
static void exchange_sendrecv(double *u, int w, MPI_Datatype column, const int *lo, const int *hi, MPI_Comm cart) {
    MPI_Sendrecv(&u[w + 1], SIDE, MPI_DOUBLE, lo[1], 0, &u[(SIDE + 1) * w + 1], SIDE, MPI_DOUBLE, hi[1], 0, cart,
                 MPI_STATUS_IGNORE);
    MPI_Sendrecv(&u[SIDE * w + 1], SIDE, MPI_DOUBLE, hi[1], 1, &u[1], SIDE, MPI_DOUBLE, lo[1], 1, cart,
                 MPI_STATUS_IGNORE);
    MPI_Sendrecv(&u[w + 1], 1, column, lo[0], 2, &u[w + SIDE + 1], 1, column, hi[0], 2, cart, MPI_STATUS_IGNORE);
    MPI_Sendrecv(&u[w + SIDE], 1, column, hi[0], 3, &u[w], 1, column, lo[0], 3, cart, MPI_STATUS_IGNORE);
}

/* The same four exchanges as receives and sends posted together, then one MPI_Waitall. */
static void exchange_nonblocking(double *u, int w, MPI_Datatype column, const int *lo, const int *hi, MPI_Comm cart) {
    MPI_Request req[8];
    MPI_Irecv(&u[(SIDE + 1) * w + 1], SIDE, MPI_DOUBLE, hi[1], 0, cart, &req[0]);
    MPI_Irecv(&u[1], SIDE, MPI_DOUBLE, lo[1], 1, cart, &req[1]);
    MPI_Irecv(&u[w + SIDE + 1], 1, column, hi[0], 2, cart, &req[2]);
    MPI_Irecv(&u[w], 1, column, lo[0], 3, cart, &req[3]);
    MPI_Isend(&u[w + 1], SIDE, MPI_DOUBLE, lo[1], 0, cart, &req[4]);
    MPI_Isend(&u[SIDE * w + 1], SIDE, MPI_DOUBLE, hi[1], 1, cart, &req[5]);
    MPI_Isend(&u[w + 1], 1, column, lo[0], 2, cart, &req[6]);
    MPI_Isend(&u[w + SIDE], 1, column, hi[0], 3, cart, &req[7]);
    MPI_Waitall(8, req, MPI_STATUSES_IGNORE);
}

static int halo_nonblocking;  /* 1: exchange_nonblocking, 0: exchange_sendrecv */

static double halo(int reps) {
    int dims[2] = {0, 0}, periods[2] = {0, 0}, lo[2], hi[2], w = SIDE + 2;
    MPI_Comm cart;
    MPI_Datatype column;
    MPI_Dims_create(size, 2, dims);
    MPI_Cart_create(MPI_COMM_WORLD, 2, dims, periods, 0, &cart);
    for (int d = 0; d < 2; d++) MPI_Cart_shift(cart, d, 1, &lo[d], &hi[d]);
    MPI_Type_vector(SIDE, 1, w, MPI_DOUBLE, &column);
    MPI_Type_commit(&column);
    double *u = calloc((size_t)w * w, sizeof *u), *v = calloc((size_t)w * w, sizeof *v);
    for (int i = 0; i < w * w; i++) u[i] = (i * 7 % 11) * 0.1;
    double t0 = MPI_Wtime();
    for (int it = 0; it < reps; it++) {
        if (halo_nonblocking)
            exchange_nonblocking(u, w, column, lo, hi, cart);
        else
            exchange_sendrecv(u, w, column, lo, hi, cart);
        double res = 0;
        for (int y = 1; y <= SIDE; y++)
            for (int x = 1; x <= SIDE; x++) {
                int i = y * w + x;
                v[i] = 0.25 * (u[i - 1] + u[i + 1] + u[i - w] + u[i + w]);
                res += (v[i] - u[i]) * (v[i] - u[i]);
            }
        double *t = u;
        u = v, v = t;
        if (it % 10 == 9) MPI_Allreduce(MPI_IN_PLACE, &res, 1, MPI_DOUBLE, MPI_SUM, cart);
    }
    double elapsed = MPI_Wtime() - t0;
    free(u), free(v);
    MPI_Type_free(&column);
    MPI_Comm_free(&cart);
    return elapsed;
}

static void report(const char *name, double value) {
    if (rank == 0) printf("%s %.3f\n", name, value), fflush(stdout);
}

int main(int argc, char **argv) {
    MPI_Init(&argc, &argv);
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    MPI_Comm_size(MPI_COMM_WORLD, &size);
    buf = calloc(1, 1 << 20), buf2 = calloc(1, 1 << 20);
    int status = 0;
    if (argc == 2 && !strcmp(argv[1], "p2p") && size >= 2) {
        report("pingpong_8B_us", median(pingpong_small, 2000) / 2 * 1e6);
        report("pingpong_1MiB_MBps", 2.0 * (1 << 20) / median(pingpong_large, 20) / 1e6);
    } else if (argc == 2 && !strcmp(argv[1], "coll")) {
        report("allreduce_8B_us", median(allreduce_small, 2000) * 1e6);
        report("allreduce_1MiB_us", median(allreduce_large, 20) * 1e6);
    } else if (argc == 2 && !strcmp(argv[1], "halo")) {
        char name[64];
        snprintf(name, sizeof name, "halo_iter_us_%dranks", size);
        report(name, median(halo, 50) * 1e6);
        halo_nonblocking = 1;
        snprintf(name, sizeof name, "halo_nb_iter_us_%dranks", size);
        report(name, median(halo, 50) * 1e6);
    } else {
        if (rank == 0) fprintf(stderr, "usage: mpi_bench p2p|coll|halo (p2p needs 2 ranks or more)\n");
        status = 2;
    }
    free(buf), free(buf2);
    MPI_Finalize();
    return status;
}
