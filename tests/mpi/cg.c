/* cg: conjugate gradients on a shifted 1-D Laplacian, A = tridiag(-1, 2.5,
 * -1), NLOC unknowns per rank (Dirichlet ends). A step is one iteration: a
 * neighbour exchange of one value each way (MPI_Irecv/MPI_Isend/MPI_Waitall,
 * MPI_PROC_NULL at the ends) for the product A p, and two MPI_Allreduce of
 * doubles with MPI_SUM. Every SOLVE steps the system is solved to the end:
 * the true residual |b - A x| (one more product and MPI_Allreduce) must be
 * tiny and agree with the recurrence, x is hashed and a new right-hand side
 * starts. Every residual norm is hashed as well. */
#include <math.h>

#include "mpi_victim.h"

enum { NLOC = 2000, SOLVE = 40 };

typedef struct {
    int left, right;
    double *ghost;  /* p[-1] and p[NLOC] */
} line;

/* y = A p on this rank's piece. */
static void apply(const line *l, const double *p, double *y) {
    MPI_Request rq[4];
    MPI_Irecv(&l->ghost[0], 1, MPI_DOUBLE, l->left, 0, MPI_COMM_WORLD, &rq[0]);
    MPI_Irecv(&l->ghost[1], 1, MPI_DOUBLE, l->right, 1, MPI_COMM_WORLD, &rq[1]);
    MPI_Isend(&p[NLOC - 1], 1, MPI_DOUBLE, l->right, 0, MPI_COMM_WORLD, &rq[2]);
    MPI_Isend(&p[0], 1, MPI_DOUBLE, l->left, 1, MPI_COMM_WORLD, &rq[3]);
    MPI_Waitall(4, rq, MPI_STATUSES_IGNORE);
    for (int i = 0; i < NLOC; i++) {
        double lo = i > 0 ? p[i - 1] : l->ghost[0], hi = i < NLOC - 1 ? p[i + 1] : l->ghost[1];
        y[i] = 2.5 * p[i] - lo - hi;
    }
}

static double dot(const double *a, const double *b) {
    double s = 0, all;
    for (int i = 0; i < NLOC; i++) s += a[i] * b[i];
    MPI_Allreduce(&s, &all, 1, MPI_DOUBLE, MPI_SUM, MPI_COMM_WORLD);
    return all;
}

int main(int argc, char **argv) {
    victim v;
    victim_init(&v, &argc, &argv, "cg");
    double ghost[2] = {0, 0};
    line l = {v.rank > 0 ? v.rank - 1 : MPI_PROC_NULL, v.rank < v.size - 1 ? v.rank + 1 : MPI_PROC_NULL, ghost};
    double *b = xmalloc(sizeof(double) * NLOC), *x = xmalloc(sizeof(double) * NLOC);
    double *r = xmalloc(sizeof(double) * NLOC), *p = xmalloc(sizeof(double) * NLOC);
    double *q = xmalloc(sizeof(double) * NLOC);
    double rr = 0, bb = 1;
    for (long k = 0; k < v.steps; k++) {
        victim_step(&v, k);
        if (k % SOLVE == 0) {  /* a new system: b depends on the solve's number */
            for (int i = 0; i < NLOC; i++) {
                long gi = (long)v.rank * NLOC + i;
                b[i] = cos(0.001 * gi * (1 + k / SOLVE % 5)) + (gi % 17) * 0.01;
                x[i] = 0, r[i] = b[i], p[i] = b[i];
            }
            rr = bb = dot(r, r);
        }
        apply(&l, p, q);
        double alpha = rr / dot(p, q);
        for (int i = 0; i < NLOC; i++) x[i] += alpha * p[i], r[i] -= alpha * q[i];
        double next = dot(r, r);
        for (int i = 0; i < NLOC; i++) p[i] = r[i] + next / rr * p[i];
        rr = next;
        victim_hash(&v, &rr, sizeof rr);
        if (k % SOLVE == SOLVE - 1) {
            apply(&l, x, q);
            for (int i = 0; i < NLOC; i++) q[i] = b[i] - q[i];
            double true_rr = dot(q, q);
            CHECK(&v, sqrt(true_rr) < 1e-9 * sqrt(bb), "step %ld: |b - Ax| = %.3g after %d iterations (|b| = %.3g)", k,
                  sqrt(true_rr), SOLVE, sqrt(bb));
            CHECK(&v, fabs(sqrt(true_rr) - sqrt(rr)) < 1e-11 * sqrt(bb), "step %ld: recurrence |r| = %.3g, true %.3g", k,
                  sqrt(rr), sqrt(true_rr));
            victim_hash(&v, x, sizeof(double) * NLOC);
        }
    }
    free(b), free(x), free(r), free(p), free(q);
    return victim_finish(&v);
}
