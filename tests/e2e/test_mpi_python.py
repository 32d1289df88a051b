#!/usr/bin/env python3
"""A Python MPI program, unmodified: Debian's python3-mpi4py (installed by
scripts/install-deps.sh) on Debian's /usr/bin/python3, under the MPI layer.

  test_mpi_python.py --bin BUILD [--np N]

The program (PROGRAM below) runs 300 steps of pickled-object and buffer
communication: allreduce, bcast of a dict, gather and scatter of lists,
sendrecv around a ring, isend/irecv pairs waited with Request.waitall, and
an allreduce on a communicator split in two; rank 0 prints a running digest
every 20 steps and the final one. The reference is `mpirun -np N python3
PROGRAM` without the engine. Under `mpirun -np N ckpt-run --ckpt-dir D --
python3 PROGRAM` the job is checkpointed when its step-100 line appears and
goes on, stopped with a checkpoint at its step-200 line, and restarted with
`ckpt-run --restart`: the lines of the stopped run followed by those of the
restored one must be the reference's, byte for byte.
"""
import os
import re
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from test_apps import Failure  # noqa: E402
from test_mpi_lammps import app_test_main, checkpoint_and_stop, compare_lines, mpirun, run  # noqa: E402

PROGRAM = """\
import hashlib, time
from mpi4py import MPI

comm = MPI.COMM_WORLD
rank, size = comm.Get_rank(), comm.Get_size()
half = comm.Split(rank % 2, rank)
digest = hashlib.sha256()
for step in range(300):
    total = comm.allreduce(rank * 1.5 + step, op=MPI.SUM)
    info = comm.bcast({"step": step, "from": rank} if rank == step % size else None, root=step % size)
    gathered = comm.gather([rank, step * rank], root=0)
    part = comm.scatter([[i, step] for i in range(size)] if rank == 0 else None, root=0)
    left = comm.sendrecv((rank, step), dest=(rank + 1) % size, source=(rank - 1) % size)
    reqs = [comm.isend(step * 100 + rank, dest=(rank + k) % size, tag=k) for k in (1, 2)]
    got = [comm.recv(source=(rank - k) % size, tag=k) for k in (1, 2)]
    MPI.Request.waitall(reqs)
    pair = half.allreduce(rank + step, op=MPI.MAX)
    digest.update(repr((total, info, gathered, part, left, got, pair)).encode())
    if rank == 0 and step % 20 == 0:
        print(f"step {step} digest {digest.hexdigest()[:16]}", flush=True)
    time.sleep(0.01)
digests = comm.gather(digest.hexdigest(), root=0)
if rank == 0:
    print("final " + " ".join(d[:16] for d in digests), flush=True)
"""
LINE = re.compile(r"^(step (\d+) digest [0-9a-f]{16}|final( [0-9a-f]{16})+)$")
PYTHON = "/usr/bin/python3"  # Debian's, with python3-mpi4py (not a python3 of another PATH entry)


def program_lines(text):
    return [line for line in text.splitlines() if LINE.match(line)]


def python(a, programs, run_bin, ctl, work):
    path = os.path.join(work, "program.py")
    with open(path, "w") as f:
        f.write(PROGRAM)
    app = [PYTHON, path]
    reference = program_lines(run(mpirun(a.np) + app, "the native Python program", work))
    if len(reference) != 300 // 20 + 1 or not reference[-1].startswith("final"):
        raise Failure(f"the native run printed {len(reference)} lines, not {300 // 20 + 1} ending with the final one")
    ck = os.path.join(work, "ck")
    first = checkpoint_and_stop(mpirun(a.np) + [run_bin, "--ckpt-dir", ck, "--"] + app, work, ctl, ck,
                                lambda line: (m := LINE.match(line)) and (m.group(2) or ""), "100", "200")
    restored = program_lines(run(mpirun(a.np) + [run_bin, "--ckpt-dir", ck, "--restart"], "the restart", work))
    compare_lines(first + restored, reference, f"the stopped run's {len(first)} and the restored run's {len(restored)}", "lines")
    return (f"Python with mpi4py, {a.np} ranks: checkpointed at step 100, stopped after step 200 ({len(first)} lines), "
            f"restored ({len(restored)} more): identical to the native run")


def have_mpi4py():
    return subprocess.run([PYTHON, "-c", "import mpi4py"], capture_output=True).returncode == 0


if __name__ == "__main__":
    if not os.path.exists(PYTHON) or not have_mpi4py():
        print(f"FAIL: {PYTHON} cannot import mpi4py (Debian's python3-mpi4py package; scripts/install-deps.sh installs it)")
        sys.exit(1)
    sys.exit(app_test_main("python", "python3-mpi4py", [PYTHON], python))
