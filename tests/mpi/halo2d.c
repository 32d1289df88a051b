/* halo2d: a periodic 2-D Jacobi smoother on an MPI_Cart_create grid of
 * ranks (MPI_Dims_create, MPI_Cart_shift). The halo is exchanged with
 * MPI_Isend/MPI_Irecv/MPI_Waitall of a column type (MPI_Type_vector) and a
 * row type (MPI_Type_contiguous, made anew and freed every 50 steps). Every
 * 5 steps the squared residual is summed with MPI_Allreduce and hashed.
 * Checks: every 8 steps a second field holding global coordinates is
 * exchanged and each ghost cell must hold its neighbour's coordinates; the
 * global sum of the field (conserved by the periodic averaging) stays. */
#include <math.h>

#include "mpi_victim.h"

enum { NX = 40, NY = 32 };  /* interior cells per rank: x along a row, y rows */
#define AT(f, x, y) (f)[(y) * (NX + 2) + (x)]

typedef struct {
    MPI_Comm cart;
    MPI_Datatype row, col;
    int west, east, south, north;
} grid;

/* Fills the ghost cells of f: rows from south/north, columns from west/east. */
static void exchange(const grid *g, double *f) {
    MPI_Request rq[8];
    MPI_Irecv(&AT(f, 1, 0), 1, g->row, g->south, 0, g->cart, &rq[0]);
    MPI_Irecv(&AT(f, 1, NY + 1), 1, g->row, g->north, 1, g->cart, &rq[1]);
    MPI_Irecv(&AT(f, 0, 1), 1, g->col, g->west, 2, g->cart, &rq[2]);
    MPI_Irecv(&AT(f, NX + 1, 1), 1, g->col, g->east, 3, g->cart, &rq[3]);
    MPI_Isend(&AT(f, 1, NY), 1, g->row, g->north, 0, g->cart, &rq[4]);
    MPI_Isend(&AT(f, 1, 1), 1, g->row, g->south, 1, g->cart, &rq[5]);
    MPI_Isend(&AT(f, NX, 1), 1, g->col, g->east, 2, g->cart, &rq[6]);
    MPI_Isend(&AT(f, 1, 1), 1, g->col, g->west, 3, g->cart, &rq[7]);
    MPI_Waitall(8, rq, MPI_STATUSES_IGNORE);
}

/* The coordinate field's value at global cell (gx, gy), periodic, with a step stamp. */
static double stamp(int gx, int gy, const int *dims, long k) {
    gx = (gx + dims[0] * NX) % (dims[0] * NX);
    gy = (gy + dims[1] * NY) % (dims[1] * NY);
    return (double)k * 1e8 + gx * 1e4 + gy;
}

static void new_row_type(grid *g) {
    if (g->row != MPI_DATATYPE_NULL) MPI_Type_free(&g->row);
    MPI_Type_contiguous(NX, MPI_DOUBLE, &g->row);
    MPI_Type_commit(&g->row);
}

int main(int argc, char **argv) {
    victim v;
    victim_init(&v, &argc, &argv, "halo2d");
    int dims[2] = {0, 0}, periods[2] = {1, 1}, me[2];
    grid g = {.row = MPI_DATATYPE_NULL};
    MPI_Dims_create(v.size, 2, dims);
    MPI_Cart_create(MPI_COMM_WORLD, 2, dims, periods, 0, &g.cart);
    MPI_Cart_coords(g.cart, v.rank, 2, me);
    MPI_Cart_shift(g.cart, 0, 1, &g.west, &g.east);
    MPI_Cart_shift(g.cart, 1, 1, &g.south, &g.north);
    MPI_Type_vector(NY, 1, NX + 2, MPI_DOUBLE, &g.col);
    MPI_Type_commit(&g.col);
    size_t cells = (size_t)(NX + 2) * (NY + 2);
    double *u = xmalloc(sizeof(double) * cells), *w = xmalloc(sizeof(double) * cells);
    double *c = xmalloc(sizeof(double) * cells);
    int x0 = me[0] * NX, y0 = me[1] * NY;
    double local = 0, total0;
    for (int y = 1; y <= NY; y++)
        for (int x = 1; x <= NX; x++) {
            int gx = x0 + x - 1, gy = y0 + y - 1;
            AT(u, x, y) = sin(0.05 * gx * (1 + gy % 7)) + 0.001 * ((gx * 131 + gy * 71) % 97);
            local += AT(u, x, y);
        }
    MPI_Allreduce(&local, &total0, 1, MPI_DOUBLE, MPI_SUM, g.cart);
    for (long k = 0; k < v.steps; k++) {
        victim_step(&v, k);
        if (k % 50 == 0) new_row_type(&g);
        if (k % 8 == 0) {
            for (int y = 1; y <= NY; y++)
                for (int x = 1; x <= NX; x++) AT(c, x, y) = stamp(x0 + x - 1, y0 + y - 1, dims, k);
            exchange(&g, c);
            long bad = 0;
            for (int i = 1; i <= NX; i++)
                bad += (AT(c, i, 0) != stamp(x0 + i - 1, y0 - 1, dims, k)) +
                       (AT(c, i, NY + 1) != stamp(x0 + i - 1, y0 + NY, dims, k));
            for (int j = 1; j <= NY; j++)
                bad += (AT(c, 0, j) != stamp(x0 - 1, y0 + j - 1, dims, k)) +
                       (AT(c, NX + 1, j) != stamp(x0 + NX, y0 + j - 1, dims, k));
            CHECK(&v, bad == 0, "step %ld: %ld ghost cells do not hold their neighbour's coordinates", k, bad);
        }
        exchange(&g, u);
        double res = 0;
        local = 0;
        for (int y = 1; y <= NY; y++)
            for (int x = 1; x <= NX; x++) {
                double avg = 0.25 * (AT(u, x - 1, y) + AT(u, x + 1, y) + AT(u, x, y - 1) + AT(u, x, y + 1));
                AT(w, x, y) = 0.5 * AT(u, x, y) + 0.5 * avg;
                res += (AT(w, x, y) - AT(u, x, y)) * (AT(w, x, y) - AT(u, x, y));
                local += AT(w, x, y);
            }
        double *t = u;
        u = w, w = t;
        if (k % 5 == 4) {
            double sums[2] = {res, local}, got[2];
            MPI_Allreduce(sums, got, 2, MPI_DOUBLE, MPI_SUM, g.cart);
            victim_hash(&v, got, sizeof got);
            CHECK(&v, fabs(got[1] - total0) <= 1e-9 * fabs(total0) + 1e-9,
                  "step %ld: the field's sum went from %.17g to %.17g", k, total0, got[1]);
        }
    }
    for (int y = 1; y <= NY; y++) victim_hash(&v, &AT(u, 1, y), sizeof(double) * NX);
    MPI_Type_free(&g.row);
    MPI_Type_free(&g.col);
    MPI_Comm_free(&g.cart);
    free(u), free(w), free(c);
    return victim_finish(&v);
}
