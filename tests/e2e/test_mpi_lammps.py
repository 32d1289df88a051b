#!/usr/bin/env python3
"""A real simulation code, unmodified: Debian's LAMMPS (`lmp`, installed by
scripts/install-deps.sh) under the MPI layer.

  test_mpi_lammps.py --bin BUILD [--np N]

A 3-d Lennard-Jones melt of 6912 atoms, 3000 steps, a thermo line every 50.
The reference is `mpirun -np N lmp` without the engine. Under
`mpirun -np N ckpt-run --ckpt-dir D -- lmp ...` the job is checkpointed when
its step-1000 line appears and goes on; it is stopped with a checkpoint at
its step-2000 line; `mpirun -np N ckpt-run --ckpt-dir D --restart` resumes
it. The thermo lines of the stopped run followed by those of the restored
one must be the reference's, byte for byte: none lost, none repeated, every
value identical (the reductions run in the real library, so floating point
matches a native run bit for bit).
"""
import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from test_apps import Failure  # noqa: E402

STEPS = 3000


def deck(steps=STEPS):
    """The input deck: the melt, `steps` steps, a thermo line every 50 steps.
    `thermo_modify flush yes`: each thermo line is flushed when printed, as
    under mpirun (whose ranks write to a terminal) also where stdout is a
    pipe (srun), so that output is read (and cut by a kill) a line at a time."""
    return f"""\
units		lj
atom_style	atomic
lattice		fcc 0.8442
region		box block 0 12 0 12 0 12
create_box	1 box
create_atoms	1 box
mass		1 1.0
velocity	all create 3.0 87287 loop geom
pair_style	lj/cut 2.5
pair_coeff	1 1 1.0 1.0 2.5
neighbor	0.3 bin
neigh_modify	every 20 delay 0 check no
fix		1 all nve
thermo		50
thermo_modify	flush yes
run		{steps}
"""


THERMO = re.compile(r"^\s+(\d+)(\s+-?[0-9.e+-]+){5}\s*$")
TIMEOUT = 300  # seconds for any run or line


def is_thermo(line):
    """A thermo line (str or bytes): the step and five values."""
    return bool(THERMO.match(line.decode(errors="replace") if isinstance(line, bytes) else line))


def thermo_lines(text):
    return [line for line in text.splitlines() if is_thermo(line)]


def thermo_count(steps=STEPS):
    """How many thermo lines a run of `steps` prints (step 0 and every 50th)."""
    return steps // 50 + 1


def compare_lines(got, reference, what, kind="thermo lines"):
    """got, the lines (of `kind`) of what, must be the reference's, byte for
    byte: none lost, none repeated, every value identical."""
    if got == reference:
        return
    n = next((i for i, (x, y) in enumerate(zip(got, reference)) if x != y), min(len(got), len(reference)))
    raise Failure(f"{what}: {len(got)} {kind} differ from the reference's {len(reference)} at line {n}:\n"
                  f"  got      {got[n] if n < len(got) else '(none)'}\n"
                  f"  expected {reference[n] if n < len(reference) else '(none)'}")


def mpirun(np_):
    cmd = ["mpirun", "--oversubscribe", "--bind-to", "none", "-np", str(np_)]
    return cmd + (["--allow-run-as-root"] if os.geteuid() == 0 else [])


def run(cmd, what, cwd):
    p = subprocess.run(cmd, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=TIMEOUT)
    if p.returncode != 0:
        raise Failure(f"{what} exited {p.returncode}:\n{p.stdout[-3000:]}")
    return p.stdout


def app_test_main(name, package, tools, body):
    """The frame of a test of a real application: `--bin BUILD [--np N]`,
    the application's programs `tools` found on PATH (Debian's `package`),
    a scratch directory. body(args, programs, ckpt_run, ckpt_ctl, work)
    returns what passed; any Failure, timeout or I/O error fails the test."""
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", required=True, help="the build directory")
    ap.add_argument("--np", type=int, default=4)
    a = ap.parse_args()
    programs = [shutil.which(t) for t in tools]
    if not all(programs):
        print(f"FAIL: no {' and '.join(f'`{t}`' for t in tools)} (Debian's {package} package; scripts/install-deps.sh installs it)")
        return 1
    a.bin = os.path.abspath(a.bin)
    work = tempfile.mkdtemp(prefix=f"ckpt-{name}-")
    try:
        print("PASS: " + body(a, programs, os.path.join(a.bin, "agent", "ckpt-run"), os.path.join(a.bin, "coordinator", "ckpt-ctl"), work))
        return 0
    except (Failure, subprocess.TimeoutExpired, OSError) as e:
        print(f"FAIL: {e}")
        return 1
    finally:
        shutil.rmtree(work, ignore_errors=True)


def checkpoint_and_stop(cmd, work, ctl, ck, step_of, checkpoint_at, stop_at):
    """Runs the job cmd, reading its output: `ckpt-ctl checkpoint` when the
    line of step checkpoint_at comes, `checkpoint --stop` at step stop_at.
    step_of(line) is the step of one of the program's lines, "" for one
    without a step, None for any other line. Returns the program's lines;
    the job must end stopped (exit 75)."""
    job = subprocess.Popen(cmd, cwd=work, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    first, out = [], []
    try:
        for line in job.stdout:
            out.append(line)
            line = line.rstrip("\n")
            step = step_of(line)
            if step is None:
                continue
            first.append(line)
            if step == checkpoint_at:
                run([ctl, "--ckpt-dir", ck, "checkpoint"], f"ckpt-ctl checkpoint at step {step}", work)
            elif step == stop_at:
                run([ctl, "--ckpt-dir", ck, "checkpoint", "--stop"], f"ckpt-ctl checkpoint --stop at step {step}", work)
        rc = job.wait(timeout=TIMEOUT)
    finally:
        if job.poll() is None:
            job.kill()
    if rc != 75:
        raise Failure(f"the job was not stopped by `checkpoint --stop` at step {stop_at} (exit {rc}):\n" + "".join(out[-40:]))
    return first


def lammps(a, programs, run_bin, ctl, work):
    lmp = programs[0]
    with open(os.path.join(work, "in.lj"), "w") as f:
        f.write(deck())
    app = [lmp, "-in", "in.lj", "-log", "none"]
    reference = thermo_lines(run(mpirun(a.np) + app, "the native LAMMPS", work))
    if len(reference) != thermo_count():
        raise Failure(f"the native run printed {len(reference)} thermo lines, not {thermo_count()}")
    ck = os.path.join(work, "ck")
    first = checkpoint_and_stop(mpirun(a.np) + [run_bin, "--ckpt-dir", ck, "--"] + app, work, ctl, ck,
                                lambda line: (m := THERMO.match(line)) and m.group(1), "1000", "2000")
    restored = thermo_lines(run(mpirun(a.np) + [run_bin, "--ckpt-dir", ck, "--restart"], "the restart", work))
    compare_lines(first + restored, reference, f"the stopped run's {len(first)} and the restored run's {len(restored)}")
    return (f"LAMMPS, {a.np} ranks: checkpointed at step 1000, stopped after step 2000 "
            f"({len(first)} thermo lines), restored ({len(restored)} more): identical to the native run")


if __name__ == "__main__":
    sys.exit(app_test_main("lammps", "lammps", ["lmp"], lammps))
