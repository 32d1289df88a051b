#!/usr/bin/env python3
"""MPI jobs under a real SLURM (slurm/testing/local_slurm.py: munged,
slurmctld and one slurmd per network-namespace node, started and stopped by
the test), submitted with sbatch from the shipped templates
(slurm/templates/): `srun --mpi=pmix ckpt-run --interval T -- mpi_VICTIM ...`.

Each scenario compares rank 0's output (the job's output file, cut into
runs by the template's `=== job J, run N` lines) with the reference, the
same victim run uninterrupted by `srun` natively on the same cluster (at
full speed: without --pace, which changes the timing, never the output), with
test_apps.py's piece comparison: a run after a stop continues exactly where
it stopped, a run after a kill at or before where the killed run ended and
after the line seen before the checkpoint waited for; the last run ends
with the reference's checksums and verdict, byte for byte.

  test_slurm.py --bin BUILD SCENARIO
    requeue    4 ranks on 2 nodes, --interval 2; `scontrol requeue` once two
               checkpoints were committed after 30 % of the output: its
               SIGTERM makes ckpt-run checkpoint and stop the job (a kill
               if that checkpoint is not committed within KillWait); the
               requeued job (same id, SLURM_RESTART_COUNT=1) resumes from
               its newest checkpoint by itself and ends like the reference
    lammps     the requeue scenario with a real simulation code, Debian's
               LAMMPS (`lmp`, test_mpi_lammps.py's deck: 3000 steps),
               --interval 1, requeued after 10 % of its thermo lines: they,
               in the job's output and in its log file, are the native
               run's, byte for byte, none lost or repeated
    preempt    the same job in the preemptable partition `low`; a job of
               the partition `high` (PriorityTier) that needs every node:
               the low job gets SIGUSR1 (preempt_send_user_signal), ckpt-run
               checkpoints and stops it, the template requeues it; it
               resumes after the high job and ends like the reference
    preempt_term  the same without SlurmctldParameters=preempt_send_user_signal:
               SLURM sends SIGTERM when the grace time begins, ckpt-run
               (--checkpoint-signal TERM) checkpoints and stops the job, the
               template's script outlives the signal and requeues it
    cancel     scancel: SIGTERM, ckpt-run checkpoints and stops the job, which
               is cancelled (not requeued); a new job resumes from that
               checkpoint with --restart=DIR/slurm-OLDJOB
    serial     a program without MPI (app_heat, threads and output files), one
               task: stopped by `ckpt-ctl --job-id J` from outside, requeued,
               resumed; stdout and files equal an uninterrupted run's
    walltime   --time=1 and `--before-walltime 45`: every run checkpoints
               and stops 45 s before its limit and is requeued, until the
               job is done; it never reaches its limit (no TIMEOUT)
    move       4 nodes: the job (the batch-trap template) runs on n1+n2;
               `scancel --batch --signal=USR1` makes its script run
               `ckpt-ctl checkpoint --stop` and requeue it; it is moved to one
               node (n3, 4 ranks) with `scontrol update`, stopped again with
               `ckpt-ctl --job-id J checkpoint --stop` from outside the job
               (the host is the login node), and ends on all 4 nodes
    full_disk  the checkpoint directory on a 64 MiB tmpfs; after a committed
               checkpoint the file system is filled: the next checkpoints fail
               (No space left on device, in the job's output), the job goes
               on; requeued, it resumes from the committed checkpoint and ends
               like the reference
    mpirun     the requeue scenario with `mpirun ckpt-run ...` in the batch
               script (the template's LAUNCH=mpirun): Open MPI's launcher
               inside the allocation, the ranks' PMIx from its daemons
    unprivileged  the requeue scenario as nobody: srun and sbatch run as
               nobody (setpriv), so do the job's processes; everything in
               the job's checkpoint directory is nobody's
    restore_lost_rank, restore_lost_rank0  rank 2 (which runs n2's node
               agent), rank 0 (the coordinator, n1's agent) killed at the
               fault point rank-restoring as the requeued job is restored:
               every other rank exits naming it, the step and the job end
               (FAILED), nothing is left running

Needs root (SKIP otherwise) and the SLURM packages (slurm/testing/install.sh).
Nothing waits a fixed time: every step waits for a line, a file or a job
state, with a deadline.
"""
import argparse
import os
import re
import shutil
import subprocess
import sys
import time
import types

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.abspath(os.path.join(HERE, "..", ".."))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(ROOT, "slurm", "testing"))
import test_apps as ta  # noqa: E402
from test_apps import Failure, Run, check, check_pieces, line_at  # noqa: E402
import test_mpi_lammps as lammps_deck  # noqa: E402
import local_slurm  # noqa: E402

ta.TIMEOUT = 150
TEMPLATE = os.path.join(ROOT, "slurm", "templates", "ckpt-job.sbatch")
TRAP_TEMPLATE = os.path.join(ROOT, "slurm", "templates", "ckpt-job-trap.sbatch")
VICTIM = "halo2d"
MARKER = re.compile(rb"=== job (\d+), run (\d+), on (\S+)\n")
ENDED = ("COMPLETED", "FAILED", "CANCELLED", "TIMEOUT", "NODE_FAIL", "OUT_OF_MEMORY", "BOOT_FAIL", "DEADLINE")


def victim_args(steps, pace_us=10000):
    """mpi_VICTIM's arguments: 40 progress lines; every rank sleeps pace_us
    every step, so that a run lasts at least steps * pace_us however idle the
    machine (12 s by default: time for the checkpoints a scenario waits for)."""
    return [str(steps), str(steps // 40), "--pace", str(pace_us)]


class Harness(ta.Harness):
    """test_apps' harness; the cluster's daemons (whose command lines name
    the work directory) are not left-overs of a job."""

    cluster = None

    def leftovers(self):
        daemons = set(self.cluster.daemon_pids()) if self.cluster else set()
        return [line for line in super().leftovers() if int(line.split()[0]) not in daemons]


class Test:
    """The harness (work directory, processes), the cluster, the reference."""

    def __init__(self, a, nodes, cpus=4, grace=20, user_signal=True, before_up=None, user=None):
        # As another user (test_apps' harness): the binaries staged where it
        # can run them, the directories made for it its own, every command
        # of the test (srun, sbatch) run as it through setpriv.
        self.h = Harness(types.SimpleNamespace(bin=a.bin, compression="none", user=user))
        if before_up:
            before_up(self)  # mounts the nodes must see exist before they are made
        state = os.path.join(self.h.work, "slurm")  # root's, as the daemons are
        os.makedirs(state)
        self.cluster = self.h.cluster = local_slurm.LocalSlurm(state, nodes=nodes, cpus=cpus, grace=grace, user_signal=user_signal)
        try:
            self.cluster.up()
        except BaseException:
            self.close(keep=True)
            raise

    def env(self, **extra):
        """The environment of the jobs: this cluster, the build's tools on PATH,
        ckpt-run's registry of job directories in the work directory."""
        env = self.cluster.env(self.h.env)
        env["PATH"] = f"{self.h.tool('agent')}:{self.h.tool('coordinator')}:{env['PATH']}"
        env["CKPT_JOBS_DIR"] = self.h.mkdir("jobs")
        env.update(extra)
        return env

    def victim(self):
        return os.path.join(self.h.bin, "tests", "mpi", f"mpi_{VICTIM}")

    def reference(self, args, layout=("-N2", "--ntasks-per-node=2")):
        """Rank 0's lines of an uninterrupted native run of the victim,
        untimed: at full speed, the same lines."""
        lines = self.native([self.victim(), *ta.untimed(args)], layout)
        check(lines and lines[-1].startswith(f"PASS {VICTIM}".encode()), f"the reference did not pass: {lines[-3:]!r}")
        return lines

    def native(self, cmd, layout=("-N2", "--ntasks-per-node=2"), env=None):
        """The output of `srun LAYOUT cmd` (an MPI program whose rank 0 alone prints), which must exit 0."""
        run = Run(self.h, ["srun", *layout, *cmd], "reference", self.h.work, env=self.env(**(env or {})))
        rc = run.finish()
        shown = " ".join([*layout, os.path.basename(cmd[0]), *cmd[1:]])
        check(rc == 0, f"the native reference `srun {shown}` exited {rc}{run.stderr_tail()}")
        return run.lines

    def close(self, keep):
        problems = self.cluster.down()
        ta.end_harness(self.h, keep or bool(problems))
        return problems


def run_scenario(a, body, **cluster):
    """body(test) on a cluster of its own, stopped (and checked stopped) whatever happens."""
    t = Test(a, **cluster)
    failed = True
    try:
        body(t)
        failed = False
    finally:
        problems = t.close(a.keep or failed)
    check(not problems, "the cluster did not stop cleanly: " + "; ".join(problems))


class Job:
    """A batch job from a template; its runs are read from its output file."""

    def __init__(self, t, name, args, sbatch, interval="2", options="", template=TEMPLATE, ck=None, program=None, env=None,
                 select=None):
        """select(line): the lines of the output that are compared (default all)."""
        self.t = t
        self.select = select
        self.dir = t.h.mkdir(name)
        self.out, self.err = os.path.join(self.dir, "job.out"), os.path.join(self.dir, "job.err")
        self.ck = ck or os.path.join(self.dir, "ckpt")
        env = t.env(CKPT_DIR=self.ck, PROGRAM=" ".join([program or t.victim(), *args]), CKPT_INTERVAL=interval, CKPT_OPTIONS=options,
                    **(env or {}))
        if t.h.user:
            # The source tree may be out of the user's reach (a clone under
            # /root or in a 0700 directory): sbatch reads a copy of its own.
            staged = os.path.join(self.dir, os.path.basename(template))
            shutil.copy(template, staged)
            os.chmod(staged, 0o755)
            template = staged
        self.id = t.cluster.sbatch(template, "-o", self.out, "-e", self.err, *sbatch, env=env, cwd=self.dir, prefix=t.h.user)
        self.job_dir = os.path.join(self.ck, f"slurm-{self.id}")
        self.released = None  # the restart count the begin time was last cut short for
        print(f"  job {self.id}: {name} ({os.path.basename(template)} {' '.join(sbatch)})", flush=True)

    def read(self, path):
        try:
            with open(path, "rb") as f:
                return f.read()
        except FileNotFoundError:
            return b""

    def runs(self):
        """[(run number, node list, rank 0's lines that select keeps)] from the output file."""
        data = self.read(self.out)
        found = []
        marks = list(MARKER.finditer(data))
        for i, m in enumerate(marks):
            lines = data[m.end():marks[i + 1].start() if i + 1 < len(marks) else len(data)].splitlines(keepends=True)
            found.append((int(m.group(2)), m.group(3).decode(), [x for x in lines if not self.select or self.select(x)]))
        return found

    def stderr(self):
        return self.read(self.err).decode(errors="replace")

    def wait_progress(self, run, ref, fraction):
        """Waits until run number `run` printed the reference's line at
        `fraction`; returns that line's index in the reference."""
        line = line_at(ref, fraction)
        self.wait_line(run, line)
        return ref.index(line)

    def wait_line(self, run, line):
        """Waits until run number `run` printed line; returns its index in that run's output."""
        deadline = time.time() + ta.TIMEOUT
        while True:
            for n, _, lines in self.runs():
                if n == run and line in lines:
                    return lines.index(line)
            st = self.state()
            check(st not in ENDED, f"job {self.id} ended ({st}) before run {run} printed {line!r}{self.tail()}")
            check(time.time() < deadline, f"job {self.id}: run {run} did not print {line!r} within {ta.TIMEOUT} s{self.tail()}")
            time.sleep(0.1)

    def state(self):
        return self.t.cluster.job(self.id).get("JobState")

    def tail(self):
        return f"\n--- {self.err} ---\n{self.stderr()[-2500:]}"

    def committed(self):
        try:
            return sorted(e for e in os.listdir(self.job_dir) if re.fullmatch(r"ckpt-\d+", e))
        except FileNotFoundError:
            return []

    def wait_checkpoints(self, count, after):
        """Waits until `count` checkpoints not in `after` are committed."""
        deadline = time.time() + ta.TIMEOUT
        while len(set(self.committed()) - set(after)) < count:
            check(self.state() not in ENDED, f"job {self.id} ended before {count} new checkpoint(s){self.tail()}")
            check(time.time() < deadline, f"job {self.id}: no {count} new checkpoint(s) within {ta.TIMEOUT} s{self.tail()}")
            time.sleep(0.1)

    def wait_requeued(self, restarts):
        """Waits until the job is pending again after its restarts-th requeue."""
        self.t.cluster.wait_job(self.id, lambda f: f.get("JobState") == "PENDING" and f.get("Restarts") == str(restarts),
                                f"pending after requeue {restarts}", timeout=ta.TIMEOUT)

    def release(self):
        """A requeued job waits out a begin time (about 2 min): start it in 2 s.
        (Not at once: slurmd refuses a job whose new credential was made in the
        second it revoked the old one, "Job N already killed, do not launch".)"""
        self.t.cluster.cmd("scontrol", "update", f"JobId={self.id}", "StartTime=now+2")
        self.released = self.t.cluster.job(self.id).get("Restarts")

    def run_to_end(self):
        """Starts the job again whenever it waits for its begin time, until it
        ends; it must complete. Returns its last `scontrol show job` fields."""
        deadline = time.time() + ta.TIMEOUT
        while True:
            f = self.t.cluster.job(self.id)
            st = f.get("JobState")
            if st == "COMPLETED":
                return f
            check(st not in ENDED, f"job {self.id} ended {st} (Reason={f.get('Reason')}){self.tail()}")
            if st == "PENDING" and f.get("Reason") == "BeginTime" and f.get("Restarts") != self.released:
                self.release()
            check(time.time() < deadline, f"job {self.id} still {st} after {ta.TIMEOUT} s{self.tail()}")
            time.sleep(0.2)

    def pieces(self):
        """Its runs as pieces for check_pieces."""
        return [types.SimpleNamespace(lines=lines, label=f"job {self.id} run {n} on {nodes}") for n, nodes, lines in self.runs()]

    def compare(self, ref, endings, min_starts, what):
        """The runs' outputs, ended as `endings` says ('stop', 'kill', 'end'),
        make the reference."""
        runs = self.runs()
        check([n for n, _, _ in runs] == list(range(len(endings))),
              f"{what}: job {self.id} made runs {[n for n, _, _ in runs]}, expected {len(endings)}{self.tail()}")
        compare_pieces(ref, list(zip(self.pieces(), endings, min_starts)), what)
        return runs

    def run_stderr(self, run):
        """The job's stderr in run number `run` (the batch script's and its steps')."""
        m = re.search(rf"=== job {self.id}, run {run},.*?(?:=== job {self.id}, run|\Z)", self.stderr(), re.S)
        return m.group(0) if m else ""

    def expect_resumed(self, run, path=None):
        """Run `run`'s stderr says it resumed from a checkpoint of the job's own directory (or from path)."""
        want = re.escape(path) if path else re.escape(self.job_dir) + r"/ckpt-\d+"
        check(re.search(rf"SLURM job {self.id} \(requeued {run} time\(s\)\): resuming from {want},", self.run_stderr(run)),
              f"job {self.id}: run {run} does not say it resumed from {path or self.job_dir + '/ckpt-N'}{self.tail()}")


def compare_pieces(ref, pieces, what):
    """check_pieces, and the last lines (checksums, verdict) byte for byte."""
    check_pieces(ref, pieces, what)
    check(pieces[-1][0].lines[-3:] == ref[-3:], f"{what}: the last lines differ from the reference's")
    print(f"  {what}: {', '.join(f'{p.label}: {len(p.lines)} lines' for p, _, _ in pieces)} make the reference, "
          f"ending {ref[-1].decode().strip()!r}", flush=True)


# ---- scenarios -------------------------------------------------------------------


def requeue(t, what="requeue", env=None, options="", running=None):
    """running(job): checks while the first run goes on."""
    args = victim_args(1200)
    ref = t.reference(args)
    job = Job(t, what, args, ["-N2", "--ntasks-per-node=2"], interval="2", env=env, options=options)
    return requeued(t, job, ref, what, running)


def requeued(t, job, ref, what, running=None, fraction=0.3):
    """`scontrol requeue` of job once two checkpoints were committed after
    `fraction` of the reference's lines: the first run stopped short of the
    end, the requeued one resumed and ended like the reference.
    The requeue sends SIGTERM to every task, SIGKILL KillWait (10 s) later:
    ckpt-run (the template's --checkpoint-signal TERM) checkpoints and stops
    the job in between, and the requeued run must go on exactly where the
    first one stopped; if that checkpoint was not committed, the first run
    was killed, and the requeued one goes on from a periodic checkpoint."""
    seen = job.wait_progress(0, ref, fraction)
    job.wait_checkpoints(2, job.committed())
    if running:
        running(job)
    t.cluster.cmd("scontrol", "requeue", job.id)
    job.wait_requeued(1)
    fields = job.run_to_end()
    check(fields.get("Restarts") == "1", f"{what}: Restarts={fields.get('Restarts')}")
    ended = "stop" if "checkpoint committed, the job stops" in job.run_stderr(0) else "kill"
    print(f"  {what}: the first run was {'stopped by ckpt-run on the SIGTERM of the requeue' if ended == 'stop' else 'killed'}",
          flush=True)
    runs = job.compare(ref, [ended, "end"], [0, seen + 1], what)
    check(len(runs[0][2]) < len(ref), f"{what}: the requeue came after the first run had printed all {len(ref)} lines")
    job.expect_resumed(1)
    t.h.expect_no_leftovers(f"{what}: at the end")
    return job


def lammps(t):
    """A real simulation code: Debian's LAMMPS (test_mpi_lammps.py's melt of
    3000 steps) in the requeue scenario, its thermo lines compared. Its log
    file (which the restore cuts back to its size at the checkpoint) holds
    the reference's thermo lines once each.
    Timing: under ckpt-run on this loaded 2-core machine LAMMPS made 100 to
    320 steps/s (30 s at most); the requeue comes after 10 % of the lines
    and two checkpoints (--interval 1: 3.5 s at most), so it lands mid-run
    up to some 750 steps/s.
    The native reference runs with OMPI_MCA_mpi_yield_when_idle=1: Open
    MPI, told of 4 CPUs per node, would spin in its waits, and 4 spinning
    ranks on 2 cores took 17.8 s for 500 steps instead of 0.65 s (the
    proxies of the job yield anyway); the thermo lines are the same."""
    lmp = shutil.which("lmp")
    check(lmp, "lammps: no `lmp` (Debian's lammps package; scripts/install-deps.sh installs it)")
    wdir = t.h.mkdir("lammps-files")
    deck, log = os.path.join(wdir, "in.lj"), os.path.join(wdir, "log.lammps")
    with open(deck, "w") as f:
        f.write(lammps_deck.deck())
    ref = [x for x in t.native([lmp, "-in", deck, "-log", "none"], env=dict(OMPI_MCA_mpi_yield_when_idle="1"))
           if lammps_deck.is_thermo(x)]
    want = lammps_deck.thermo_count()
    check(len(ref) == want, f"lammps: the native run printed {len(ref)} thermo lines, not {want}")
    job = Job(t, "lammps", ["-in", deck, "-log", log], ["-N2", "--ntasks-per-node=2"], interval="1", program=lmp,
              select=lammps_deck.is_thermo)
    requeued(t, job, ref, "lammps", fraction=0.1)
    with open(log, "rb") as f:
        logged = [x for x in f.read().splitlines(keepends=True) if lammps_deck.is_thermo(x)]
    lammps_deck.compare_lines(logged, ref, f"lammps: {log}")


def mpirun(t):
    """The requeue scenario with Open MPI's mpirun inside the batch script
    (the template's LAUNCH=mpirun) instead of srun: the ranks' PMIx comes
    from mpirun's daemons, the job from SLURM_JOB_ID alone. (-v: the
    coordinator names the job of each run, mpirun's PMIx namespace.)"""
    job = requeue(t, "mpirun", dict(LAUNCH="mpirun", OMPI_ALLOW_RUN_AS_ROOT="1", OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="1"), options="-v")
    runs = re.findall(r"^ckpt-coordinator: job (\S+): 4 rank\(s\) on 2 node\(s\)$", job.stderr(), re.M)
    check(len(runs) == 2 and all(r.startswith("ompi-") for r in runs) and runs[0] != runs[1],
          f"mpirun: the coordinators did not serve one mpirun job each run (ompi-NAMESPACE): {runs}{job.tail()}")


def preempted(t, what, signal):
    """The job in the partition `low`, preempted by a job of `high` that needs
    every node: ckpt-run checkpoints and stops it on `signal`."""
    args = victim_args(1200)
    ref = t.reference(args)
    job = Job(t, what, args, ["-N2", "--ntasks-per-node=2", "-p", "low"], interval="5")
    seen = job.wait_progress(0, ref, 0.3)
    high = t.cluster.sbatch_wrap("true", "-p", "high", "-N2", "--exclusive", "-o", os.path.join(job.dir, "high.out"),
                                 env=t.env())
    print(f"  job {high}: partition high, every node: preempts job {job.id}", flush=True)
    job.wait_requeued(1)
    fields = job.run_to_end()
    check(t.cluster.job(high).get("JobState") == "COMPLETED", f"{what}: the high job {high} is {t.cluster.job(high)}")
    check(fields.get("Restarts") == "1", f"{what}: Restarts={fields.get('Restarts')}")
    err = job.stderr()
    check(f"{signal} arrived: checkpoint and stop" in err and "checkpoint committed, the job stops" in err,
          f"{what}: ckpt-run did not checkpoint and stop on {signal}{job.tail()}")
    job.compare(ref, ["stop", "end"], [0, seen + 1], what)
    job.expect_resumed(1)
    t.h.expect_no_leftovers(f"{what}: at the end")


def preempt(t):
    """With preempt_send_user_signal: the job's --signal (USR1) at once."""
    preempted(t, "preempt", "SIGUSR1")


def preempt_term(t):
    """Without preempt_send_user_signal: SIGTERM at the start of GraceTime."""
    preempted(t, "preempt_term", "SIGTERM")


def cancel(t):
    """scancel sends SIGTERM: ckpt-run checkpoints and stops the job, which is
    cancelled all the same (the template does not requeue a job that is
    ending); a new job resumes from that checkpoint (--restart=DIR)."""
    args = victim_args(1200)
    ref = t.reference(args)
    job = Job(t, "cancel", args, ["-N2", "--ntasks-per-node=2"], interval="0")
    seen = job.wait_progress(0, ref, 0.3)
    t.cluster.cmd("scancel", job.id)
    fields = t.cluster.wait_job(job.id, lambda f: f.get("JobState") in ENDED, "end after scancel", timeout=ta.TIMEOUT)
    check(fields.get("JobState") == "CANCELLED" and fields.get("Restarts") == "0",
          f"cancel: after scancel the job is {fields.get('JobState')} with Restarts={fields.get('Restarts')}{job.tail()}")
    err = job.stderr()
    check("SIGTERM arrived: checkpoint and stop" in err and "not requeued" in err,
          f"cancel: no checkpoint on SIGTERM, or the job was requeued{job.tail()}")
    check(job.committed(), f"cancel: no checkpoint in {job.job_dir}")
    again = Job(t, "cancel-resumed", args, ["-N2", "--ntasks-per-node=2"], interval="0", options=f"--restart={job.job_dir}",
                ck=job.ck)
    again.run_to_end()
    check(f"restored 4 rank(s) from {job.job_dir}/ckpt-" in again.stderr(), f"cancel: the new job did not resume{again.tail()}")
    compare_pieces(ref, [(job.pieces()[0], "stop", 0), (again.pieces()[0], "end", seen + 1)], "cancel")
    t.h.expect_no_leftovers("cancel: at the end")


def serial(t):
    """A program that does not use MPI (app_heat: threads, output files) as a
    job of one task, under the same template (--mpi auto: the proxy stays
    idle): `ckpt-ctl --job-id J checkpoint --stop` from outside, requeued by
    its script, resumed; its stdout and files equal an uninterrupted run's."""
    extra = ("20000", "128", "2", "1000")
    ref, ref_files = t.h.reference("heat", extra)
    wdir = t.h.mkdir("serial-files")
    paths, _ = ta.app_args("heat", wdir)
    job = Job(t, "serial", [*paths, *extra], ["-N1", "-n1"], interval="0", program=t.h.exe("heat"))
    seen = job.wait_progress(0, ref, 0.3)
    ctl_stop(t, job)
    job.wait_requeued(1)
    job.run_to_end()
    job.compare(ref, ["stop", "end"], [0, seen + 1], "serial")
    ta.check_files(ref_files, wdir, "serial")
    job.expect_resumed(1)
    t.h.expect_no_leftovers("serial: at the end")


def ctl_stop(t, job):
    """`ckpt-ctl --job-id J checkpoint --stop` from outside the job (the host is the login node)."""
    r = subprocess.run([t.h.tool("coordinator/ckpt-ctl"), "--job-id", job.id, "checkpoint", "--stop", "--quiet"], capture_output=True,
                       text=True, env=t.env(), timeout=ta.TIMEOUT)
    check(r.returncode == 0, f"`ckpt-ctl --job-id {job.id} checkpoint --stop` exited {r.returncode}: {r.stderr.strip()}")
    check(r.stdout.startswith(job.job_dir + "/ckpt-"), f"ckpt-ctl --job-id {job.id} committed {r.stdout.strip()!r}")


def walltime(t):
    args = victim_args(800, pace_us=20000)  # 16 s at least: more than the 15 s a run may take
    ref = t.reference(args)
    job = Job(t, "walltime", args, ["-N2", "--ntasks-per-node=2", "--time=1", "--signal=USR1@5"], interval="10", options="--before-walltime 45")
    fields = job.run_to_end()
    runs = job.runs()
    check(len(runs) >= 2, f"walltime: the job ran {len(runs)} time(s): it was never stopped before its limit{job.tail()}")
    check(fields.get("Restarts") == str(len(runs) - 1), f"walltime: Restarts={fields.get('Restarts')} after {len(runs)} runs")
    err = job.stderr()
    check(err.count("45 s or less before the time limit") == len(runs) - 1,
          f"walltime: not every run but the last was stopped before the time limit{job.tail()}")
    job.compare(ref, ["stop"] * (len(runs) - 1) + ["end"], [0] * len(runs), "walltime")
    for n in range(1, len(runs)):
        job.expect_resumed(n)
    t.h.expect_no_leftovers("walltime: at the end")


def move(t):
    args = victim_args(1500, pace_us=5000)
    ref = t.reference(args)
    job = Job(t, "move", args, ["-N2", "-n4", "-w", "n1,n2"], interval="0", template=TRAP_TEMPLATE)
    seen1 = job.wait_progress(0, ref, 0.25)
    # The batch script's trap: ckpt-ctl inside the job, then requeue.
    t.cluster.cmd("scancel", "--batch", "--signal=USR1", job.id)
    job.wait_requeued(1)
    t.cluster.cmd("scontrol", "update", f"JobId={job.id}", "NumNodes=1-1", "ReqNodeList=n3")
    job.release()
    seen2 = job.wait_progress(1, ref, 0.6)
    ctl_stop(t, job)  # from outside the job, by its id alone
    job.wait_requeued(2)
    t.cluster.cmd("scontrol", "update", f"JobId={job.id}", "NumNodes=4-4", "ReqNodeList=n[1-4]")
    job.release()
    job.run_to_end()
    runs = job.compare(ref, ["stop", "stop", "end"], [0, seen1 + 1, seen2 + 1], "move")
    nodes = [n for _, n, _ in runs]
    check(nodes == ["n[1-2]", "n3", "n[1-4]"], f"move: the runs were on {nodes}, expected n[1-2], n3, n[1-4]")
    err = job.stderr()
    check("SIGUSR1: checkpoint and stop" in err, f"move: the batch script's trap did not run{job.tail()}")
    for n in (1, 2):
        job.expect_resumed(n)
    t.h.expect_no_leftovers("move: at the end")


def mount_tmpfs(t):
    """The checkpoint directory: a small file system of its own, mounted before
    the nodes are made (each has a private copy of the mount table)."""
    ck = t.h.mkdir("full", "ckpt")
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64m,mode=0755", "tmpfs", ck], capture_output=True, text=True)
    check(r.returncode == 0, f"full_disk: cannot mount a tmpfs: {r.stderr.strip()}")
    t.h.mounts.append(ck)


def fill(path, leave):
    """Fills the file system of path but for `leave` bytes."""
    st = os.statvfs(path)
    left = st.f_bavail * st.f_frsize - leave
    chunk = b"\0" * (1 << 20)
    with open(os.path.join(path, "filler"), "wb") as f:
        while left > 0:
            f.write(chunk[:min(left, len(chunk))])
            left -= len(chunk)


def full_disk(t):
    args = victim_args(1500)
    ref = t.reference(args)
    job = Job(t, "full", args, ["-N2", "--ntasks-per-node=2"], interval="2", ck=os.path.join(t.h.work, "full", "ckpt"))
    seen = job.wait_progress(0, ref, 0.25)
    job.wait_checkpoints(2, job.committed())
    # The file system fills up (someone else's files): room for the
    # rendezvous, none for a checkpoint.
    fill(job.ck, 512 * 1024)
    latest = os.path.realpath(os.path.join(job.job_dir, "latest"))
    deadline = time.time() + ta.TIMEOUT
    while "No space left on device" not in job.stderr():
        check(job.state() not in ENDED, f"full_disk: the job ended before a checkpoint failed{job.tail()}")
        check(time.time() < deadline, f"full_disk: no checkpoint failed for lack of space within {ta.TIMEOUT} s{job.tail()}")
        time.sleep(0.1)
    check(re.search(r"checkpoint failed, the job goes on\b.*No space left on device", job.stderr()),
          f"full_disk: the job's output does not say that a checkpoint failed and the job goes on{job.tail()}")
    job.wait_progress(0, ref, 0.5)  # it runs on
    check(os.path.realpath(os.path.join(job.job_dir, "latest")) == latest, "full_disk: latest moved after a failed checkpoint")
    check(not [e for e in os.listdir(job.job_dir) if e.endswith(".partial")], "full_disk: a partial checkpoint was left behind")
    t.cluster.cmd("scontrol", "requeue", job.id)
    job.wait_requeued(1)
    job.run_to_end()
    job.compare(ref, ["kill", "end"], [0, seen + 1], "full_disk")
    job.expect_resumed(1, path=latest)
    t.h.expect_no_leftovers("full_disk: at the end")


def unprivileged(t):
    """The requeue scenario as nobody: srun and sbatch run as nobody (the
    daemons as root); every process of the job's ckpt-run runs as nobody,
    and everything in the job's checkpoint directory is nobody's."""
    def as_user(job):
        procs = {pid: cmd for pid in ta.all_pids() if job.ck in (cmd := ta.proc_cmdline(pid)) and "ckpt-run" in cmd}
        check(len(procs) >= 4, f"unprivileged: {len(procs)} ckpt-run process(es) of job {job.id} found, expected 4 or more")
        for pid, cmd in procs.items():
            uids = proc_uids(pid)
            check(uids and all(u == t.h.uid for u in uids), f"unprivileged: pid {pid} ({cmd}) runs with uids {uids}, not as nobody")
    job = requeue(t, "unprivileged", running=as_user)
    for root, dirs, files in os.walk(job.job_dir):
        for e in [root] + [os.path.join(root, n) for n in dirs + files]:
            st = os.lstat(e)
            check((st.st_uid, st.st_gid) == (t.h.uid, t.h.gid), f"unprivileged: {e} is owned by {st.st_uid}:{st.st_gid}, not nobody")
    check(len(job.committed()) >= 1, f"unprivileged: no checkpoint left in {job.job_dir}")


def proc_uids(pid):
    """The real, effective, saved and file-system uids of pid (empty once it is gone)."""
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("Uid:"):
                    return [int(u) for u in line.split()[1:]]
    except OSError:
        pass
    return []


def lost_in_restore(dead):
    """Rank `dead` dies (SIGKILL at the fault point rank-restoring) as the
    requeued job restores it; the rank's ckpt-run also ran n2's node agent
    (rank 2) or the job's coordinator and n1's agent (rank 0). Every other
    rank exits at once (1) saying which rank was lost, the srun step ends
    (137: a task was killed), the job ends FAILED (not requeued again),
    nothing stays."""
    def case(t):
        args = victim_args(1200)
        ref = t.reference(args)
        arm = os.path.join(t.h.work, "restore-armed")
        job = Job(t, f"restore_lost_rank{dead}", args, ["-N2", "--ntasks-per-node=2"], interval="2",
                  env=dict(CKPT_FAULT="rank-restoring", CKPT_FAULT_RANK=str(dead), CKPT_FAULT_ARM=arm))
        job.wait_progress(0, ref, 0.2)
        job.wait_checkpoints(1, [])
        open(arm, "w").close()
        t.cluster.cmd("scontrol", "requeue", job.id)
        job.wait_requeued(1)
        job.release()
        t0 = time.time()
        fields = t.cluster.wait_job(job.id, lambda f: f.get("JobState") in ENDED, "end after the failed restore", timeout=ta.TIMEOUT)
        took = time.time() - t0
        err = job.stderr()
        check(fields.get("JobState") == "FAILED" and fields.get("Restarts") == "1" and fields.get("ExitCode") not in (None, "0:0"),
              f"restore_lost_rank{dead}: the job is {fields.get('JobState')} (exit {fields.get('ExitCode')}), "
              f"Restarts={fields.get('Restarts')}{job.tail()}")
        run1 = err[err.index(f"=== job {job.id}, run 1,"):]
        check("ckpt fault point rank-restoring: SIGKILL" in run1, f"restore_lost_rank{dead}: the fault point was never reached{job.tail()}")
        node = "n1" if dead < 2 else "n2"
        for r in sorted(set(range(4)) - {dead}):
            check(re.search(rf"^ckpt-run \(rank {r}\): error: restart failed\b.*\brank {dead} on {node} has ended\b", run1, re.M),
                  f"restore_lost_rank{dead}: rank {r} does not say that rank {dead} was lost{job.tail()}")
        check(re.search(r"^srun: error: n\d: tasks? [\d-]+: Exited with exit code 1$", run1, re.M),
              f"restore_lost_rank{dead}: the step did not end with exit code 1{job.tail()}")
        check(took < 30, f"restore_lost_rank{dead}: the job took {took:.0f} s to end once it restarted")
        t.h.expect_no_leftovers(f"restore_lost_rank{dead}: at the end")
    return case


SCENARIOS = {  # name: (body, the cluster it runs on)
    "requeue": (requeue, dict(nodes=2)),
    "preempt": (preempt, dict(nodes=2, grace=30)),
    "preempt_term": (preempt_term, dict(nodes=2, grace=30, user_signal=False)),
    "cancel": (cancel, dict(nodes=2)),
    "serial": (serial, dict(nodes=2)),
    "walltime": (walltime, dict(nodes=2)),
    "move": (move, dict(nodes=4)),
    "lammps": (lammps, dict(nodes=2)),
    "full_disk": (full_disk, dict(nodes=2, before_up=mount_tmpfs)),
    "mpirun": (mpirun, dict(nodes=2)),
    "unprivileged": (unprivileged, dict(nodes=2, user="nobody")),
    "restore_lost_rank": (lost_in_restore(2), dict(nodes=2)),
    "restore_lost_rank0": (lost_in_restore(0), dict(nodes=2)),
}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bin", required=True, help="build directory")
    ap.add_argument("--keep", action="store_true", help="keep the work directory")
    ap.add_argument("scenario", choices=sorted(SCENARIOS))
    a = ap.parse_args()
    why = local_slurm.unavailable()
    if why:
        print(f"SKIP: {why}")
        return 0
    t0 = time.time()
    try:
        body, cluster = SCENARIOS[a.scenario]
        run_scenario(a, body, **cluster)
    except (Failure, local_slurm.SlurmError, subprocess.TimeoutExpired, OSError) as e:
        print(f"FAIL slurm {a.scenario}: {e}", flush=True)
        return 1
    print(f"PASS slurm {a.scenario} ({time.time() - t0:.1f} s)", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
