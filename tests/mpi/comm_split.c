/* comm_split: communicators, groups and attributes. Made once and kept:
 * `half` (MPI_Comm_split by parity, reversed keys, named with
 * MPI_Comm_set_name, carrying an attribute of a keyval with copy and delete
 * callbacks) and `node` (MPI_Comm_split_type MPI_COMM_TYPE_SHARED). Every
 * step: MPI_Allreduce on half; a new MPI_Comm_split in 3 step-dependent
 * colours with an MPI_Allreduce and MPI_Comm_compare; MPI_Comm_dup of half
 * (the attribute is copied), MPI_Comm_compare, MPI_Bcast on the duplicate,
 * MPI_Comm_free (the attribute is deleted); MPI_Comm_group, MPI_Group_incl
 * of a rotated subset, MPI_Comm_create and an MPI_Allreduce on it; the
 * MPI_TAG_UB attribute. Which ranks share a node depends on the placement,
 * so nothing about `node` is hashed: it must only stay what it was (same
 * size, an MPI_Allreduce over it agrees, the node sizes add up to the world). */
#include <string.h>

#include "mpi_victim.h"

static long copies, deletes;

static int copy_attr(MPI_Comm c, int key, void *extra, void *in, void *out, int *flag) {
    (void)c, (void)key, (void)extra;
    copies++;
    *(void **)out = in;
    *flag = 1;
    return MPI_SUCCESS;
}

static int delete_attr(MPI_Comm c, int key, void *value, void *extra) {
    (void)c, (void)key, (void)value, (void)extra;
    deletes++;
    return MPI_SUCCESS;
}

static long isum(MPI_Comm c, long x) {
    long s;
    MPI_Allreduce(&x, &s, 1, MPI_LONG, MPI_SUM, c);
    return s;
}

int main(int argc, char **argv) {
    victim v;
    victim_init(&v, &argc, &argv, "comm_split");
    int n = v.size, me = v.rank, parity = me % 2, key, flag, *tag_ub, tag_ub0;
    long attr_value = 4242, parity_sum = 0;
    MPI_Comm half, node;
    MPI_Comm_split(MPI_COMM_WORLD, parity, -me, &half);
    MPI_Comm_set_name(half, parity ? "odd" : "even");
    MPI_Comm_create_keyval(copy_attr, delete_attr, &key, NULL);
    MPI_Comm_set_attr(half, key, &attr_value);
    MPI_Comm_split_type(MPI_COMM_WORLD, MPI_COMM_TYPE_SHARED, me, MPI_INFO_NULL, &node);
    int node_size, node_rank;
    MPI_Comm_size(node, &node_size);
    MPI_Comm_rank(node, &node_rank);
    MPI_Comm_get_attr(MPI_COMM_WORLD, MPI_TAG_UB, &tag_ub, &flag);
    tag_ub0 = *tag_ub;
    for (int r = parity; r < n; r += 2) parity_sum += r;
    int last = parity + (n - 1 - parity) / 2 * 2;
    int *ranks = xmalloc(sizeof(int) * (size_t)n);
    for (long k = 0; k < v.steps; k++) {
        victim_step(&v, k);
        int hr, sr, ss, cmp;
        char name[MPI_MAX_OBJECT_NAME];
        MPI_Comm_rank(half, &hr);
        MPI_Comm_get_name(half, name, &flag);
        long s = isum(half, me * (k + 1));
        CHECK(&v, hr == (last - me) / 2 && s == parity_sum * (k + 1) && !strcmp(name, parity ? "odd" : "even"),
              "step %ld: half rank %d, sum %ld, name %s", k, hr, s, name);
        victim_hash(&v, &s, sizeof s);

        MPI_Comm sub, dup, grp;
        int colour = (me + (int)k) % 3, members = 0;
        MPI_Comm_split(MPI_COMM_WORLD, colour, me, &sub);
        MPI_Comm_rank(sub, &sr);
        MPI_Comm_size(sub, &ss);
        MPI_Comm_compare(sub, MPI_COMM_WORLD, &cmp);
        for (int r = 0; r < n; r++) members += (r + (int)k) % 3 == colour;
        s = isum(sub, me + k);
        CHECK(&v, ss == members && cmp == (ss == n ? MPI_CONGRUENT : MPI_UNEQUAL),
              "step %ld: split of colour %d: size %d of %d, compare %d", k, colour, ss, members, cmp);
        victim_hash(&v, &s, sizeof s);
        MPI_Comm_free(&sub);

        long *got, value = me == last ? 1000 * k + me : -1;
        MPI_Comm_dup(half, &dup);
        MPI_Comm_get_attr(dup, key, &got, &flag);
        MPI_Comm_compare(half, dup, &cmp);
        MPI_Bcast(&value, 1, MPI_LONG, 0, dup);
        CHECK(&v, flag && got == &attr_value && cmp == MPI_CONGRUENT && value == 1000 * k + last,
              "step %ld: dup of half: attribute %d %p, compare %d, bcast %ld", k, flag, (void *)got, cmp, value);
        MPI_Comm_free(&dup);
        CHECK(&v, copies == k + 1 && deletes == k + 1, "step %ld: %ld copies and %ld deletes of the attribute", k, copies,
              deletes);

        MPI_Group world_group, g;
        int m = 1 + (int)(k % n), gr;
        for (int i = 0; i < m; i++) ranks[i] = (int)((i * 3 + k) % n);
        for (int i = 0; i < m; i++)  /* distinct: 3 steps modulo n would repeat when 3 divides n */
            for (int j = 0; j < i; j++)
                if (ranks[j] == ranks[i]) ranks[i] = (ranks[i] + 1) % n, j = -1;
        MPI_Comm_group(MPI_COMM_WORLD, &world_group);
        MPI_Group_incl(world_group, m, ranks, &g);
        MPI_Group_rank(g, &gr);
        MPI_Comm_create(MPI_COMM_WORLD, g, &grp);
        long want = 0;
        for (int i = 0; i < m; i++) want += ranks[i] * (i + 1);
        if (grp != MPI_COMM_NULL) {
            int cr;
            MPI_Comm_rank(grp, &cr);
            s = isum(grp, me * (cr + 1));
            CHECK(&v, cr == gr && ranks[cr] == me && s == want, "step %ld: group rank %d, comm rank %d, sum %ld of %ld", k,
                  gr, cr, s, want);
            victim_hash(&v, &s, sizeof s);
            MPI_Comm_free(&grp);
        } else {
            CHECK(&v, gr == MPI_UNDEFINED, "step %ld: not in the communicator but group rank %d", k, gr);
        }
        MPI_Group_free(&g);
        MPI_Group_free(&world_group);

        int nsize;
        MPI_Comm_size(node, &nsize);
        long nodes = isum(MPI_COMM_WORLD, node_rank == 0), placed = isum(MPI_COMM_WORLD, node_rank == 0 ? nsize : 0);
        CHECK(&v, nsize == node_size && isum(node, 1) == node_size && nodes >= 1 && placed == n,
              "step %ld: node communicator of size %d (was %d), %ld nodes holding %ld ranks", k, nsize, node_size, nodes,
              placed);
        MPI_Comm_get_attr(MPI_COMM_WORLD, MPI_TAG_UB, &tag_ub, &flag);
        CHECK(&v, flag && *tag_ub == tag_ub0 && *tag_ub >= 32767, "step %ld: MPI_TAG_UB %d (was %d)", k, *tag_ub, tag_ub0);
    }
    MPI_Comm_free(&half);
    CHECK(&v, deletes == v.steps + 1, "%ld deletes of the attribute after freeing half", deletes);
    MPI_Comm_free_keyval(&key);
    MPI_Comm_free(&node);
    free(ranks);
    return victim_finish(&v);
}
