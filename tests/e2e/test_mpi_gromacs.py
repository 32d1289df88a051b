#!/usr/bin/env python3
"""A second real simulation code, unmodified: Debian's GROMACS (`gmx_mpi`,
installed by scripts/install-deps.sh) under the MPI layer.

  test_mpi_gromacs.py --bin BUILD [--np N]

A box of 510 SPC water molecules (gmx solvate, OPLS-AA), 5000 steps of MD
with PME electrostatics, velocity-rescaling thermostat and SETTLE, an
energy block in md.log every 250 steps. mdrun runs with `-reprod -dlb no`
(no timing-dependent load balancing), one OpenMP thread per rank and its own
checkpoints off (`-cpt -1`). The reference is `mpirun -np N gmx_mpi mdrun`
without the engine. Under `mpirun -np N ckpt-run --ckpt-dir D -- gmx_mpi ...`
the job is checkpointed once its log reaches step 1500 and goes on; it is
stopped with a checkpoint once the log reaches step 3500; `mpirun -np N
ckpt-run --ckpt-dir D --restart` resumes it. Its log's energy blocks (the
restored run goes on writing the stopped run's md.log from where the
checkpoint left it) and its binary energy file (md.edr, a frame every 250
steps, written the same way) must be the
reference's, byte for byte.

GROMACS distributes the state with MPI_Scatterv and collects it with
MPI_Gatherv passing NULL counts on the ranks that are not the root, which
MPI allows; the shim once took those calls for MPI_Scatter and MPI_Gather
and the job hung in its first step.
"""
import os
import re
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from test_apps import Failure  # noqa: E402
from test_mpi_lammps import TIMEOUT, app_test_main, compare_lines, mpirun, run  # noqa: E402

STEPS = 5000
EVERY = 250  # nstlog
CHECKPOINT_AT, STOP_AT = 1500, 3500

MDP = f"""\
integrator = md
dt = 0.002
nsteps = {STEPS}
nstlog = {EVERY}
nstcalcenergy = 50
nstenergy = {EVERY}
cutoff-scheme = Verlet
coulombtype = PME
rcoulomb = 1.0
rvdw = 1.0
tcoupl = V-rescale
tc-grps = System
tau-t = 0.1
ref-t = 300
gen-vel = yes
gen-temp = 300
gen-seed = 1234
constraints = h-bonds
"""


def prepare(gmx, work):
    """The water box and its run input, md.tpr (deterministic: fixed seed)."""
    run([gmx, "-quiet", "solvate", "-cs", "spc216.gro", "-box", "2.5", "2.5", "2.5", "-o", "water.gro"], "gmx solvate", work)
    with open(os.path.join(work, "water.gro")) as f:
        waters = sum(1 for line in f if "OW" in line)
    with open(os.path.join(work, "topol.top"), "w") as f:
        f.write(f'#include "oplsaa.ff/forcefield.itp"\n#include "oplsaa.ff/spc.itp"\n\n[ system ]\nwater\n\n[ molecules ]\nSOL {waters}\n')
    with open(os.path.join(work, "md.mdp"), "w") as f:
        f.write(MDP)
    run([gmx, "-quiet", "grompp", "-f", "md.mdp", "-c", "water.gro", "-p", "topol.top", "-o", "md.tpr", "-maxwarn", "2"],
        "gmx grompp", work)
    return os.path.join(work, "md.tpr")


def log_lines(log):
    """md.log's lines (none before mdrun made it)."""
    try:
        with open(log, errors="replace") as f:
            return f.read().splitlines()
    except FileNotFoundError:
        return []


STEP_HEADER = re.compile(r"^\s+Step\s+Time\s*$")


def step_at(lines, i):
    """The step number under line i when it is md.log's "Step Time" header."""
    if STEP_HEADER.match(lines[i]) and i + 1 < len(lines):
        m = re.match(r"^\s*(\d+)", lines[i + 1])
        return int(m.group(1)) if m else None
    return None


def energy_blocks(log):
    """The lines of md.log's energy blocks, each after its step line."""
    out, step, inside = [], None, False
    lines = log_lines(log)
    for i, line in enumerate(lines):
        if (n := step_at(lines, i)) is not None:
            step = n
        elif "Energies (kJ/mol)" in line:
            inside = True
            out.append(f"step {step}")
        elif inside and not line.strip():
            inside = False
        elif inside:
            out.append(line)
    return out


def last_step(log):
    """The step of md.log's latest step line (0 before the first)."""
    lines = log_lines(log)
    return next((n for i in reversed(range(len(lines))) if (n := step_at(lines, i)) is not None), 0)


def gromacs(a, programs, run_bin, ctl, work):
    gmx, gmx_mpi = programs
    tpr = prepare(gmx, work)
    mdrun = [gmx_mpi, "-quiet", "mdrun", "-s", tpr, "-deffnm", "md", "-ntomp", "1", "-dlb", "no", "-reprod", "-nb", "cpu",
             "-pin", "off", "-cpt", "-1"]
    native, job_dir = os.path.join(work, "native"), os.path.join(work, "job")
    os.makedirs(native)
    os.makedirs(job_dir)
    run(mpirun(a.np) + mdrun, "the native GROMACS", native)
    reference = energy_blocks(os.path.join(native, "md.log"))
    blocks = len([x for x in reference if x.startswith("step ")])
    if blocks < STEPS // EVERY + 1 or f"step {STEPS}" not in reference:
        raise Failure(f"the native run's md.log holds {blocks} energy blocks, not {STEPS // EVERY + 1} up to step {STEPS}")

    ck, log, out_path = os.path.join(work, "ck"), os.path.join(job_dir, "md.log"), os.path.join(work, "job.out")
    with open(out_path, "w") as out:
        job = subprocess.Popen(mpirun(a.np) + [run_bin, "--ckpt-dir", ck, "--"] + mdrun, cwd=job_dir, stdout=out,
                               stderr=subprocess.STDOUT)
    try:
        deadline = time.time() + TIMEOUT
        for at, extra, what in ((CHECKPOINT_AT, [], "checkpoint"), (STOP_AT, ["--stop"], "checkpoint --stop")):
            while last_step(log) < at:
                if job.poll() is not None or time.time() > deadline:
                    raise Failure(f"the job {'ended' if job.poll() is not None else 'was still running'} before step {at} "
                                  f"of its log (step {last_step(log)}):\n" + open(out_path).read()[-3000:])
                time.sleep(0.05)
            run([ctl, "--ckpt-dir", ck, "checkpoint", *extra], f"ckpt-ctl {what} at step {last_step(log)}", work)
        stopped_at = last_step(log)
        rc = job.wait(timeout=TIMEOUT)
    finally:
        if job.poll() is None:
            job.kill()
    if rc != 75 or stopped_at >= STEPS:
        raise Failure(f"the job was not stopped by `checkpoint --stop` (exit {rc}, step {stopped_at}):\n" + open(out_path).read()[-3000:])
    run(mpirun(a.np) + [run_bin, "--ckpt-dir", ck, "--restart"], "the restart", job_dir)
    compare_lines(energy_blocks(log), reference, "the restored run's md.log", "energy lines")
    with open(os.path.join(native, "md.edr"), "rb") as f1, open(os.path.join(job_dir, "md.edr"), "rb") as f2:
        if f1.read() != f2.read():
            raise Failure("the restored run's energy file (md.edr) differs from the native run's")
    return (f"GROMACS, {a.np} ranks: checkpointed at step {CHECKPOINT_AT}+, stopped at step {stopped_at}, restored: "
            f"{blocks} energy blocks of md.log and md.edr identical to the native run's")


if __name__ == "__main__":
    sys.exit(app_test_main("gromacs", "gromacs", ["gmx", "gmx_mpi"], gromacs))
