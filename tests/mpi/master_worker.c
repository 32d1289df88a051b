/* master_worker: rank 0 hands out STEPS tasks of varying size (up to
 * 156 KiB) to the other ranks, one at a time per worker, and gives a worker
 * its next task when its result comes back; tag 0 tells a worker to stop.
 * The master takes results with MPI_Iprobe, else MPI_Probe, of
 * MPI_ANY_SOURCE/MPI_ANY_TAG and MPI_Get_count (a buffer of that size), or
 * with a plain MPI_Recv of MPI_ANY_SOURCE/MPI_ANY_TAG into the largest
 * buffer, or with a matched probe (MPI_Improbe, else MPI_Mprobe) and
 * MPI_Mrecv or MPI_Imrecv; workers probe for their next message (MPI_Probe
 * and MPI_Recv, or MPI_Mprobe and MPI_Mrecv). Which worker does which
 * task depends on timing, so the result is order-independent: the master
 * hashes (sum and xor of per-task hashes, the count) and checks that every
 * result is right and came once; the sums of the hashes of the tasks the
 * workers got and of the results they sent (MPI_Reduce) must equal the
 * master's. The workers' own checksums stay empty. */

#include "mpi_victim.h"

enum { MAX_TASK = 20000, MAX_RESULT = 301 };

static int task_len(long t) { return t % 50 == 49 ? MAX_TASK : 2 + (int)(t * 37 % 600); }
static int result_len(long t) { return 1 + (int)(t * 13 % (MAX_RESULT - 1)); }
static int tag_of(long t) { return 1 + (int)(t % 1000); }

static void make_task(long t, int64_t *buf) {
    buf[0] = t;
    for (int i = 1; i < task_len(t); i++) buf[i] = t * 2654435761 + i * 40503;
}

static void work(const int64_t *task, int n, int64_t *result) {
    int64_t s = 0;
    for (int i = 1; i < n; i++) s += task[i];
    result[0] = task[0];
    for (int j = 1; j < result_len(task[0]); j++) s = s * 6364136223846793005 + j, result[j] = s;
}

static uint64_t hash_of(const int64_t *buf, int n) { return fnv1a(FNV_BASIS, buf, sizeof(int64_t) * (size_t)n); }

static void give(long t, long tasks, int worker, int64_t *buf, uint64_t *sent) {
    if (t >= tasks) {
        MPI_Send(NULL, 0, MPI_INT64_T, worker, 0, MPI_COMM_WORLD);
        return;
    }
    make_task(t, buf);
    *sent += hash_of(buf, task_len(t));
    MPI_Send(buf, task_len(t), MPI_INT64_T, worker, tag_of(t), MPI_COMM_WORLD);
}

int main(int argc, char **argv) {
    victim v;
    victim_init(&v, &argc, &argv, "master_worker");
    int64_t *task = xmalloc(sizeof(int64_t) * MAX_TASK), *result = xmalloc(sizeof(int64_t) * MAX_RESULT);
    int64_t *want = xmalloc(sizeof(int64_t) * MAX_RESULT);
    uint64_t mine[2] = {0, 0}, theirs[2];  /* sums of the hashes of the tasks and of the results */
    MPI_Status st;
    if (v.rank == 0) {
        long next = 0;
        unsigned char *seen = calloc((size_t)v.steps + 1, 1);
        uint64_t sum = 0, xr = 0;
        for (int w = 1; w < v.size; w++) give(next++, v.steps, w, task, &mine[0]);
        for (long got = 0; got < v.steps; got++) {
            victim_step(&v, got);
            int n, flag = 0;
            if (got % 3 == 2) {
                /* matched probe: the message is this one's alone (Mrecv, or Imrecv and Wait) */
                MPI_Message msg;
                MPI_Improbe(MPI_ANY_SOURCE, MPI_ANY_TAG, MPI_COMM_WORLD, &flag, &msg, &st);
                if (!flag) MPI_Mprobe(MPI_ANY_SOURCE, MPI_ANY_TAG, MPI_COMM_WORLD, &msg, &st);
                MPI_Get_count(&st, MPI_INT64_T, &n);
                int64_t *buf = xmalloc(sizeof(int64_t) * (size_t)n);
                if (got % 2) {
                    MPI_Mrecv(buf, n, MPI_INT64_T, &msg, &st);
                } else {
                    MPI_Request r;
                    MPI_Imrecv(buf, n, MPI_INT64_T, &msg, &r);
                    MPI_Wait(&r, &st);
                }
                CHECK(&v, msg == MPI_MESSAGE_NULL, "result %ld: the message handle is not MPI_MESSAGE_NULL after its receive", got);
                for (int i = 0; i < n && i < MAX_RESULT; i++) result[i] = buf[i];
                free(buf);
            } else if (got % 3 == 0) {
                MPI_Iprobe(MPI_ANY_SOURCE, MPI_ANY_TAG, MPI_COMM_WORLD, &flag, &st);
                if (!flag) MPI_Probe(MPI_ANY_SOURCE, MPI_ANY_TAG, MPI_COMM_WORLD, &st);
                MPI_Get_count(&st, MPI_INT64_T, &n);
                int64_t *buf = xmalloc(sizeof(int64_t) * (size_t)n);
                MPI_Recv(buf, n, MPI_INT64_T, st.MPI_SOURCE, st.MPI_TAG, MPI_COMM_WORLD, &st);
                for (int i = 0; i < n && i < MAX_RESULT; i++) result[i] = buf[i];
                free(buf);
            } else {
                MPI_Recv(result, MAX_RESULT, MPI_INT64_T, MPI_ANY_SOURCE, MPI_ANY_TAG, MPI_COMM_WORLD, &st);
                MPI_Get_count(&st, MPI_INT64_T, &n);
            }
            long t = result[0];
            int ok = t >= 0 && t < v.steps && n == result_len(t) && st.MPI_TAG == tag_of(t);
            if (ok) {
                make_task(t, task);
                work(task, task_len(t), want);
                for (int j = 0; j < n; j++) ok &= result[j] == want[j];
                seen[t]++;
            }
            CHECK(&v, ok, "result %ld: task %ld, %d values, tag %d from rank %d is wrong", got, t, n, st.MPI_TAG,
                  st.MPI_SOURCE);
            uint64_t h = hash_of(result, n);
            sum += h, xr ^= h, mine[1] += h;
            give(next++, v.steps, st.MPI_SOURCE, task, &mine[0]);
        }
        long once = 0;
        for (long t = 0; t < v.steps; t++) once += seen[t] == 1;
        CHECK(&v, once == v.steps, "only %ld of %ld tasks came back exactly once", once, v.steps);
        free(seen);
        victim_hash(&v, &sum, sizeof sum);
        victim_hash(&v, &xr, sizeof xr);
        victim_hash(&v, &v.steps, sizeof v.steps);
    } else {
        for (long done = 0;; done++) {
            int n;
            if (done % 2) {
                MPI_Message msg;
                MPI_Mprobe(0, MPI_ANY_TAG, MPI_COMM_WORLD, &msg, &st);
                MPI_Get_count(&st, MPI_INT64_T, &n);
                MPI_Mrecv(task, n, MPI_INT64_T, &msg, &st);
            } else {
                MPI_Probe(0, MPI_ANY_TAG, MPI_COMM_WORLD, &st);
                MPI_Get_count(&st, MPI_INT64_T, &n);
                MPI_Recv(task, n, MPI_INT64_T, 0, st.MPI_TAG, MPI_COMM_WORLD, &st);
            }
            if (st.MPI_TAG == 0) break;
            victim_step(&v, done);
            CHECK(&v, n == task_len(task[0]) && st.MPI_TAG == tag_of(task[0]), "task %lld: %d values, tag %d",
                  (long long)task[0], n, st.MPI_TAG);
            mine[0] += hash_of(task, n);
            work(task, n, result);
            mine[1] += hash_of(result, result_len(task[0]));
            MPI_Send(result, result_len(task[0]), MPI_INT64_T, 0, tag_of(task[0]), MPI_COMM_WORLD);
        }
    }
    uint64_t none[2] = {0, 0};
    MPI_Reduce(v.rank == 0 ? none : mine, theirs, 2, MPI_UINT64_T, MPI_SUM, 0, MPI_COMM_WORLD);
    if (v.rank == 0)
        CHECK(&v, theirs[0] == mine[0] && theirs[1] == mine[1], "the workers got tasks of hash sum %016llx and sent "
              "results of %016llx; the master sent %016llx and got %016llx", (unsigned long long)theirs[0],
              (unsigned long long)theirs[1], (unsigned long long)mine[0], (unsigned long long)mine[1]);
    free(task), free(result), free(want);
    return victim_finish(&v);
}
