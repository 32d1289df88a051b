#!/usr/bin/env python3
"""End-to-end tests of a job of several ranks: `mpirun -np 4 ckpt-run ...`.

Every rank runs app_heat (tests/e2e/apps) with a rank-dependent number of
steps and its own output directory; mpirun tags each output line with its
rank (--tag-output), so every rank's stdout is compared on its own with an
uninterrupted run of the same command (the reference), and so are its
output files, byte for byte.

  test_job.py --bin BUILD [--user USER] GROUP [CASE ...]
    restart   stop_restart: checkpoint (going on) at 20 %, `ckpt-ctl status`
              (4 ranks, the last checkpoint), `checkpoint --stop` at 40 %,
              SIGKILL of whatever is left, `mpirun ... --restart`: every rank
              resumes exactly where it stopped and ends like its reference;
              kill_restart: checkpoint at 30 %, SIGKILL of the whole job at
              50 %, restart. With --user nobody, every process of the job
              runs as that user (checked from /proc).
    fallback  damaged: --restart=auto with the newest checkpoint's
              rank-00002.h5 damaged in its page data falls back to the older
              checkpoint and says so; missing: a missing rank file and a
              single checkpoint: the restart fails naming the file, nothing
              left behind
    faults    a fault during a checkpoint round, from outside: kill_rank
              (SIGKILL of one rank's ckpt-run), kill_agent (the node agent),
              kill_coordinator, stall (one rank's ckpt-run stopped past
              --phase-timeout 3), all in the freeze phase; full_disk (a 1 MiB
              tmpfs, root only); and at named fault points (CKPT_FAULT, image/fault.hpp; armed
              once a first checkpoint is committed):
              dump_kill_rank, written_kill_rank (rank 2 killed as its dump
              starts, and once its file is written), stall_write (rank 2
              stopped before renaming its file, --stop, --phase-timeout 3),
              agent_dumping (the node agent killed as the dumps start;
              status shows the ranks out of reach), coordinator_dumping,
              commit_before_manifest (the coordinator killed),
              commit_before_latest (killed after the rename: the checkpoint
              is committed and the restart takes it), commit_stall (the
              coordinator stopped in the commit of a --stop checkpoint:
              ckpt-ctl gives up, the ranks thaw by themselves),
              committed_fanout (the node agent, ended by rank 0 right after
              it handed it COMMITTED of a --stop checkpoint, still hands it
              to the other ranks: all stop at the checkpoint; not a failed
              checkpoint), restore_coordinator (the
              coordinator killed in a restart before it releases the ranks).
              Each: ckpt-ctl exits 1 naming the phase (and rank, node),
              `latest` stays, no partial checkpoint is left, the job goes on
              (or ends, when a rank was killed), nothing is left running,
              and the newest committed checkpoint restarts correctly.
    security  wrong_secret (a client with a bad secret is refused and the
              coordinator logs it), second_job (a second mpirun on the same
              --ckpt-dir is refused: "already running"; the first goes on),
              ended (ckpt-ctl for a job that has ended exits 3)

A fault is put in the round deterministically: at a fault point, or the
rank it concerns is stopped (SIGSTOP) before the checkpoint is asked for, so
the round waits for it, and the fault comes once ckpt-ctl reports the round
started. Nothing waits a fixed time: every step waits for a line, an exit or
a file, with a deadline.
"""
import argparse
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import types

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from test_apps import (TIMEOUT, Failure, Harness, Run, alive, check, check_files, check_pieces,  # noqa: E402
                       descendants, end_harness, line_at, proc_stat, run_cases, tiny_tmpfs)

NRANKS = 4
HEAT = ("256", "2", "250")  # N, threads, report every


def rank_steps(rank, scale=1):
    """app_heat's steps for a rank; scale > 1 for a job that must run longer."""
    return str(scale * (30000 + 2000 * rank))


TAG = re.compile(rb"^\[\d+,(\d+)\]<stdout>:(.*)$", re.S)


def rank_lines(run, rank):
    """The stdout lines rank printed in an mpirun run (tags removed)."""
    with run.cond:
        out = []
        for line in run.lines:
            m = TAG.match(line)
            if m and int(m.group(1)) == rank:
                out.append(m.group(2))
        return out


def wait_rank_line(run, rank, line):
    """Waits until `rank` printed `line`; returns its index in that rank's output."""
    deadline = time.time() + TIMEOUT
    with run.cond:
        while True:
            lines = rank_lines(run, rank)
            if line in lines:
                return lines.index(line)
            if run.eof:
                raise Failure(f"{run.label}: ended before rank {rank} printed {line!r}{run.stderr_tail()}")
            left = deadline - time.time()
            if left <= 0:
                raise Failure(f"{run.label}: rank {rank} did not print {line!r} within {TIMEOUT} s")
            run.cond.wait(left)


def job_stderr(run):
    """An mpirun's stderr without the rank tags (mpirun tags every chunk it reads,
    which may be part of a line)."""
    return re.sub(r"\[\d+,\d+\]<stderr>:", "", run.stderr())


def piece(run, rank):
    return types.SimpleNamespace(lines=rank_lines(run, rank), label=f"{run.label} rank {rank}")


def wait_for(cond, what, timeout=TIMEOUT):
    deadline = time.time() + timeout
    while not cond():
        if time.time() > deadline:
            raise Failure(f"no {what} within {timeout} s")
        time.sleep(0.02)


class JobHarness(Harness):
    def __init__(self, a):
        # (As another user, the binaries are staged where that user can run
        # them and every command runs through setpriv: test_apps.Harness.)
        super().__init__(types.SimpleNamespace(bin=a.bin, compression="none", user=a.user))
        self.mpirun = ["mpirun", "--oversubscribe", "--bind-to", "none", "--tag-output"]
        if os.geteuid() == 0 and not a.user:
            self.mpirun.insert(1, "--allow-run-as-root")

    def job_refs(self, scale=1):
        """Per rank: (reference stdout lines, reference files)."""
        return self.references("heat", [(rank_steps(r, scale),) + HEAT for r in range(NRANKS)])

    def job(self, name, ck=None, options=(), env=None, scale=1, hold=False):
        """Starts the 4-rank job (in environment env, default the harness's);
        returns (run, work dir, ckpt dir). Rank r writes into <work>/rank-r.
        With hold, no rank ends before compare_job releases it: a test that
        needs the whole job running while it works does not depend on the
        machine's speed."""
        wdir = self.mkdir(name)
        ck = ck or os.path.join(wdir, "ckpt")
        release = os.path.join(wdir, "release") if hold else None
        cmd = list(self.mpirun)
        for r in range(NRANKS):
            rdir = self.mkdir(name, f"rank-{r}")
            if r:
                cmd.append(":")
            cmd += ["-np", "1", self.tool("agent/ckpt-run"), "--ckpt-dir", ck, "--mpi", "none", *options, "--", self.exe("heat"),
                    os.path.join(rdir, "heat.log"), os.path.join(rdir, "heat.grid"), rank_steps(r, scale), *HEAT]
            if release:
                cmd.append(release)
        run = Run(self, cmd, f"{name}-run", wdir, env=env)
        run.release = release
        return run, wdir, ck

    def job_restart(self, ck, label, path=None, nranks=NRANKS, options=(), env=None):
        opt = "--restart" if path is None else f"--restart={path}"
        cmd = self.mpirun + ["-np", str(nranks), self.tool("agent/ckpt-run"), "--ckpt-dir", ck, opt, *options]
        return Run(self, cmd, label, self.work, env=env)

    def wait_all(self, run, refs, fraction):
        """Waits until every rank printed its line at `fraction`; returns their indices."""
        return [wait_rank_line(run, r, line_at(refs[r][0], fraction)) for r in range(NRANKS)]

    def role_pid(self, run, role):
        """The pid of the job's `ckpt-run --role=ROLE` (coordinator or agent)."""
        found = [pid for pid, (_, cmd) in descendants(run.pid).items() if f"--role={role}" in cmd]
        check(len(found) == 1, f"{run.label}: expected one ckpt-run --role={role}, found {found}")
        return found[0]

    def rank_pid(self, run, rank):
        """The pid of rank's ckpt-run: the one whose environment says it is that rank."""
        for pid, (_, cmd) in descendants(run.pid).items():
            if not cmd.startswith(self.tool("agent/ckpt-run")) or "--role=" in cmd:
                continue
            try:
                with open(f"/proc/{pid}/environ", "rb") as f:
                    env = f.read().split(b"\0")
            except OSError:
                continue
            if f"OMPI_COMM_WORLD_RANK={rank}".encode() in env:
                return pid
        raise Failure(f"{run.label}: no ckpt-run of rank {rank}")

    def rank_dir(self, name, r):
        return os.path.join(self.work, name, f"rank-{r}")

    def kill_left(self, pids):
        """SIGKILL of whatever is still alive of pids ({pid: (start, cmd)}); returns them."""
        left = [f"{pid} {cmd}" for pid, (start, cmd) in pids.items() if alive(pid, start)]
        for pid, (start, _) in pids.items():
            if alive(pid, start):
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
        self.orphans.update({pid: start for pid, (start, _) in pids.items()})
        return left

    def expect_owner(self, run):
        """As another user, every process of the job (mpirun, ckpt-run in
        each role, the programs) runs as that user (capabilities they have
        inside ckpt-run's user namespace are not the machine's)."""
        if self.uid is None:
            return
        for pid, (_, cmd) in list(descendants(run.pid).items()) + [(run.pid, (0, "mpirun"))]:
            try:
                with open(f"/proc/{pid}/status") as f:
                    status = dict(line.split(":", 1) for line in f if ":" in line)
            except OSError:
                continue  # ended meanwhile
            uids = status["Uid"].split()
            check(all(int(u) == self.uid for u in uids), f"{run.label}: pid {pid} ({cmd}) runs with uids {uids}, not as {self.user_name}")

    def kill_job(self, run):
        """SIGKILL of mpirun and of every process below it at once, as a
        preemption would; nothing may survive."""
        job = descendants(run.pid)
        check(job, f"{run.label}: mpirun has no processes below it to kill")
        os.kill(run.pid, signal.SIGKILL)
        self.kill_left(job)
        rc = run.finish()
        check(rc == -signal.SIGKILL, f"{run.label}: mpirun ended with {rc} instead of being killed")
        self.expect_no_leftovers(f"{run.label}: after SIGKILL of the whole job")


def compare_job(h, run, refs, name, before=None):
    """Waits for the end (exit 0) of job `name`; every rank's output, after its
    earlier pieces (before[rank]: ([(piece, 'stop' | 'kill', 0)], min_start)),
    and its output files must equal its reference."""
    if getattr(run, "release", None):
        open(run.release, "w").close()
    rc = run.finish()
    check(rc == 0, f"{name}: {run.label} exited {rc}{run.stderr_tail()}")
    for r in range(NRANKS):
        pieces = []
        min_start = 0
        if before:
            pieces, min_start = list(before[r][0]), before[r][1]
        check_pieces(refs[r][0], pieces + [(piece(run, r), "end", min_start)], f"{name}, rank {r}")
        check_files(refs[r][1], h.rank_dir(name, r), f"{name}, rank {r}")


class Ctl:
    """ckpt-ctl running in the background, its stderr read line by line."""

    def __init__(self, h, ck, *args):
        self.proc = subprocess.Popen(h.user + [h.tool("coordinator/ckpt-ctl"), "--ckpt-dir", ck, *args], stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, text=True, cwd=h.work, env=h.env)
        self.err = []
        self.cond = threading.Condition()
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self):
        for line in self.proc.stderr:
            with self.cond:
                self.err.append(line)
                self.cond.notify_all()

    def wait_progress(self, pattern):
        deadline = time.time() + TIMEOUT
        with self.cond:
            while not any(re.search(pattern, line) for line in self.err):
                check(self.proc.poll() is None or self.reader.is_alive(),
                      f"ckpt-ctl ended ({self.proc.returncode}) before saying /{pattern}/: {''.join(self.err)}")
                left = deadline - time.time()
                check(left > 0, f"ckpt-ctl did not say /{pattern}/ within {TIMEOUT} s")
                self.cond.wait(min(left, 0.5))

    def finish(self, timeout=60):
        """(exit status, stdout, stderr); a ckpt-ctl that does not end within
        timeout hangs (a round ends within the phase timeout)."""
        try:
            rc = self.proc.wait(timeout=timeout)
            out = self.proc.stdout.read()
        except subprocess.TimeoutExpired:
            self.proc.kill()
            raise Failure(f"ckpt-ctl hangs ({timeout} s): {''.join(self.err)}")
        self.reader.join(timeout)
        return rc, out, "".join(self.err)


def entries(ck):
    return sorted(e for e in os.listdir(ck) if not e.startswith("."))


# ---- restart ------------------------------------------------------------------


def restart_stop_restart(h):
    refs = h.job_refs()
    run, wdir, ck = h.job("restart")
    h.wait_all(run, refs, 0.2)
    first = h.checkpoint(ck)
    check(first.startswith(os.path.join(ck, "ckpt-000001")), f"restart: first checkpoint {first!r}")
    st = h.ctl(ck, "status")
    check(st.returncode == 0, f"restart: ckpt-ctl status exited {st.returncode}: {st.stderr.strip()}")
    check(f"{NRANKS} rank(s)" in st.stdout and f"{NRANKS} joined" in st.stdout,
          f"restart: status does not show {NRANKS} ranks:\n{st.stdout}")
    for r in range(NRANKS):
        check(re.search(rf"^rank {r}: \S+, running$", st.stdout, re.M), f"restart: status does not show rank {r} running:\n{st.stdout}")
    check(f"last committed checkpoint: {os.path.join(ck, 'ckpt-000001')}" in st.stdout,
          f"restart: status does not name the last checkpoint:\n{st.stdout}")
    # (Every rank must still run: under load, ranks drift apart, and rank 0,
    # the shortest, ends its coordinator with it.)
    seen = h.wait_all(run, refs, 0.4)
    second = h.checkpoint(ck, stop=True)
    check(second.startswith(os.path.join(ck, "ckpt-000002")), f"restart: second checkpoint {second!r}")
    # A preemption: whatever is left of the stopped job is killed.
    job = descendants(run.pid)
    rc = run.finish()
    check(rc == 75, f"restart: the stopped job's mpirun exited {rc}, expected 75{run.stderr_tail()}")
    left = h.kill_left(job)
    check(not left, "restart: processes outlived the stopped job:\n  " + "\n  ".join(left))
    h.expect_no_leftovers("restart: after checkpoint --stop")
    stopped = [piece(run, r) for r in range(NRANKS)]
    s = h.job_restart(ck, "restart-restored")
    compare_job(h, s, refs, "restart", [([(stopped[r], "stop", 0)], seen[r] + 1) for r in range(NRANKS)])
    h.expect_no_leftovers("restart: at the end")


def restart_kill_restart(h):
    refs = h.job_refs()
    run, wdir, ck = h.job("kill_restart")
    seen = h.wait_all(run, refs, 0.3)
    h.checkpoint(ck)
    h.wait_all(run, refs, 0.5)
    h.expect_owner(run)
    h.kill_job(run)
    s = h.job_restart(ck, "kill_restart-restored")
    h.wait_all(s, refs, 0.7)
    h.expect_owner(s)
    compare_job(h, s, refs, "kill_restart", [([(piece(run, r), "kill", 0)], seen[r] + 1) for r in range(NRANKS)])
    h.expect_no_leftovers("kill_restart: at the end")


RESTART = {"stop_restart": restart_stop_restart, "kill_restart": restart_kill_restart}


# ---- fallback -----------------------------------------------------------------


def stopped_job(h, name, refs, fractions):
    """A job checkpointed (going on) at each fraction but the last, then stopped there."""
    run, wdir, ck = h.job(name)
    seen = []
    for i, f in enumerate(fractions):
        seen.append(h.wait_all(run, refs, f))
        h.checkpoint(ck, stop=i == len(fractions) - 1)
    rc = run.finish()
    check(rc == 75, f"{name}: the stopped job's mpirun exited {rc}, expected 75{run.stderr_tail()}")
    h.expect_no_leftovers(f"{name}: after checkpoint --stop")
    return run, ck, seen


def fallback_damaged(h):
    refs = h.job_refs()
    run, ck, seen = stopped_job(h, "damaged", refs, (0.2, 0.4))
    rank_file = os.path.join(ck, "ckpt-000002", "rank-00002.h5")
    size = os.path.getsize(rank_file)
    with open(rank_file, "r+b") as f:  # the middle of the file is page data
        f.seek(size // 2)
        data = f.read(8)
        f.seek(size // 2)
        f.write(bytes(b ^ 0xa5 for b in data))
    s = h.job_restart(ck, "damaged-restored")
    before = [([(piece(run, r), "kill", 0)], seen[0][r] + 1) for r in range(NRANKS)]
    compare_job(h, s, refs, "damaged", before)
    err = job_stderr(s)
    check(rank_file in err, f"damaged: the restart does not name the damaged file {rank_file}:{s.stderr_tail()}")
    check(f"trying the older checkpoint {os.path.join(ck, 'ckpt-000001')}" in err,
          f"damaged: the restart does not say it fell back to ckpt-000001:{s.stderr_tail()}")
    h.expect_no_leftovers("damaged: at the end")


def fallback_missing(h):
    refs = h.job_refs()
    run, ck, _ = stopped_job(h, "missing", refs, (0.3,))
    rank_file = os.path.join(ck, "ckpt-000001", "rank-00002.h5")
    os.unlink(rank_file)
    s = h.job_restart(ck, "missing-restored")
    rc = s.finish()
    err = job_stderr(s)
    check(rc != 0, f"missing: the restart with {rank_file} missing succeeded")
    check(rank_file in err, f"missing: the error does not name {rank_file} (exit {rc}):{s.stderr_tail()}")
    check(not any(TAG.match(line) for line in s.lines), f"missing: the failed restart printed program output {s.lines[:3]!r}")
    h.expect_no_leftovers("missing: after the failed restart")


FALLBACK = {"damaged": fallback_damaged, "missing": fallback_missing}


# ---- faults during a round ----------------------------------------------------


def wait_partial_removed(ck, name):
    """Waits until no ckpt-N.partial is left, nor the ckpt-N.partial.deleting
    a remover renames it to before it deletes it."""
    wait_for(lambda: not [e for e in os.listdir(ck) if e.endswith((".partial", ".deleting"))],
             f"{name}: removal of the partial checkpoint", 30)


def faulty_round(h, name, fault, ck_dir=None, options=(), ctl_says=None, job_ends=False, stop_rank=2):
    """A checkpoint whose round fault() breaks (the round waits for rank stop_rank,
    stopped by SIGSTOP; stop_rank None: no rank stopped). A checkpoint
    committed earlier must stay `latest`. Returns (run, refs, ctl stderr)."""
    refs = h.job_refs()
    run, wdir, ck = h.job(name, ck=ck_dir, options=options)
    h.wait_all(run, refs, 0.15)
    first = None
    if ck_dir is None:
        first = h.checkpoint(ck).split()[0]
    before = entries(ck)
    h.wait_all(run, refs, 0.3)
    stopped = h.rank_pid(run, stop_rank) if stop_rank is not None else None
    if stopped:
        os.kill(stopped, signal.SIGSTOP)
    try:
        c = Ctl(h, ck, "checkpoint")
        c.wait_progress(r"checkpoint \d+: freezing")
        fault(run, ck, stopped)
        rc, out, err = c.finish()
    finally:
        if stopped:
            try:
                os.kill(stopped, signal.SIGCONT)
            except ProcessLookupError:
                pass
    check(rc == 1, f"{name}: ckpt-ctl exited {rc}, expected 1: {out}{err}")
    if ctl_says:
        check(re.search(ctl_says, err), f"{name}: ckpt-ctl's message does not say /{ctl_says}/:\n{err}")
    # The round's partial directory goes (at once when the coordinator lives).
    wait_partial_removed(ck, name)
    check(entries(ck) == before, f"{name}: the checkpoint directory changed from {before} to {entries(ck)}")
    if first:
        check(os.path.realpath(os.path.join(ck, "latest")) == first, f"{name}: latest moved away from {first}")
    if job_ends:
        # mpirun ends the job once a rank died; nothing may hang or stay.
        rc = run.finish()
        check(rc != 0, f"{name}: the job with a killed rank exited 0")
    else:
        compare_job(h, run, refs, name)
    h.expect_no_leftovers(name)
    return run, err


def fault_kill_rank(h):
    def fault(run, ck, stopped):
        os.kill(stopped, signal.SIGKILL)
    faulty_round(h, "kill_rank", fault, ctl_says=r"rank 2 .*(ended|gone|disconnected)", job_ends=True)


def fault_kill_agent(h):
    def fault(run, ck, stopped):
        os.kill(h.role_pid(run, "agent"), signal.SIGKILL)
    faulty_round(h, "kill_agent", fault, ctl_says=r"node agent .* disconnected")


def fault_kill_coordinator(h):
    def fault(run, ck, stopped):
        os.kill(h.role_pid(run, "coordinator"), signal.SIGKILL)
    faulty_round(h, "kill_coordinator", fault, ctl_says=r"went away")


def fault_stall(h):
    def fault(run, ck, stopped):
        pass  # the round waits for the stopped rank until the phase timeout
    faulty_round(h, "stall", fault, options=("--phase-timeout", "3"),
                            ctl_says=r"timeout: .* more than 3 s; still waiting for rank 2\b")


def fault_full_disk(h):
    ck = tiny_tmpfs(h, "full_disk-ck")

    def fault(run, ck, stopped):
        pass
    # The round fails by itself (no rank is stopped).
    faulty_round(h, "full_disk", fault, ck_dir=ck, stop_rank=None, ctl_says=r"No space left on device")


# ---- faults at named points of the dump and commit phases and of a restart --------
# (CKPT_FAULT, image/fault.hpp: the process that reaches the point kills or
# stops itself there.)


def fault_env(h, spec, rank=None, arm=None):
    env = dict(h.env, CKPT_FAULT=spec)
    if rank is not None:
        env["CKPT_FAULT_RANK"] = str(rank)
    if arm:
        env["CKPT_FAULT_ARM"] = arm
    return env


class Injected:
    """A job whose first checkpoint commits, then a checkpoint request that
    meets the fault point(s) spec (CKPT_FAULT, armed after the first
    checkpoint; rank: CKPT_FAULT_RANK)."""

    def __init__(self, h, name, spec, rank=None, stop=False, options=(), scale=1):
        self.h, self.name = h, name
        self.how = None  # how the job ended: ended()
        self.points = [item.split(":")[0] for item in spec.split(",")]
        self.refs = h.job_refs(scale)
        self.arm = os.path.join(h.work, f"{name}-armed")
        self.run, _, self.ck = h.job(name, options=options, env=fault_env(h, spec, rank, self.arm), scale=scale)
        self.seen = h.wait_all(self.run, self.refs, 0.15)
        self.first = h.checkpoint(self.ck).split()[0]
        self.before = entries(self.ck)
        self.seen2 = h.wait_all(self.run, self.refs, 0.3)
        open(self.arm, "w").close()
        self.ctl = Ctl(h, self.ck, "checkpoint", *(["--stop"] if stop else []))

    def disarm(self):
        os.unlink(self.arm)

    def ckpt(self, sequence):
        return os.path.join(self.ck, f"ckpt-{sequence:06d}")

    def failed(self, says, timeout=60):
        """ckpt-ctl exits 1 and says /says/."""
        rc, out, err = self.ctl.finish(timeout)
        check(rc == 1, f"{self.name}: ckpt-ctl exited {rc}, expected 1: {out}{err}")
        check(re.search(says, err), f"{self.name}: ckpt-ctl's message does not say /{says}/:\n{err}")

    def directory_kept(self, added=()):
        """No partial checkpoint is left (whoever wrote into it last removes
        it), `latest` has not moved, nothing else changed but `added`."""
        ck = self.ck
        wait_partial_removed(ck, self.name)
        check(entries(ck) == sorted(self.before + list(added)),
              f"{self.name}: the checkpoint directory changed from {self.before} to {entries(ck)}")
        check(os.path.realpath(os.path.join(ck, "latest")) == self.first, f"{self.name}: latest moved away from {self.first}")

    def ended(self, how):
        """The job ends (how: 'killed', a rank was, and mpirun aborted the
        job; 'whole', every rank ran to its end), its stderr shows the fault
        point acting, nothing stays."""
        self.how = how
        if how == "killed":
            rc = self.run.finish()
            check(rc != 0, f"{self.name}: the job with a killed rank exited 0")
        else:
            compare_job(self.h, self.run, self.refs, self.name)
        err = job_stderr(self.run)
        for point in self.points:
            check(f"ckpt fault point {point}:" in err, f"{self.name}: the fault point {point} was never reached{self.run.stderr_tail()}")
        self.h.expect_no_leftovers(self.name)

    def restarts_from(self, sequence=1):
        """Nothing committed was lost: `--restart` resumes from checkpoint
        `sequence`, the newest committed, and every rank ends like its reference."""
        seen = self.seen if sequence == 1 else self.seen2
        s = self.h.job_restart(self.ck, f"{self.name}-restarted")
        first = "aborted" if self.how == "killed" else "kill"
        compare_job(self.h, s, self.refs, self.name, [([(piece(self.run, r), first, 0)], seen[r] + 1) for r in range(NRANKS)])
        check(f"restoring from {self.ckpt(sequence)}/rank-" in job_stderr(s),
              f"{self.name}: the restart did not restore {self.ckpt(sequence)}{s.stderr_tail()}")
        self.h.expect_no_leftovers(f"{self.name}: after the restart")


def killed_rank(point):
    """Rank 2 is killed at `point` of its dump: the round fails naming it, the
    job ends (mpirun ends the other ranks), the first checkpoint restarts."""
    def case(h):
        name = f"kill_rank-{point}"
        f = Injected(h, name, point, rank=2)
        f.failed(r"checkpoint 2, dump phase: rank 2 on \S+ has ended")
        f.directory_kept()
        f.ended("killed")
        f.restarts_from(1)
    return case


def fault_stall_write(h):
    """Rank 2 stalls writing its rank file (stopped before the rename) in a
    --stop round: the dump phase times out naming it, every rank thaws, and
    the job goes on: the next checkpoint commits and the job resumes from it."""
    f = Injected(h, "stall_write", "rank-before-rename:stop", rank=2, stop=True, options=("--phase-timeout", "3"))
    stalled = h.rank_pid(f.run, 2)
    try:
        wait_for(lambda: (proc_stat(stalled) or (0, "gone"))[1] in ("T", "gone"), "rank 2's ckpt-run stopping at rank-before-rename")
        check(proc_stat(stalled)[1] == "T", "stall_write: rank 2's ckpt-run ended instead of stalling")
        f.failed(r"checkpoint 2, dump phase: timeout: .* more than 3 s; still waiting for rank 2\b")
    finally:
        os.kill(stalled, signal.SIGCONT)
    f.directory_kept()
    f.disarm()
    seen = h.wait_all(f.run, f.refs, 0.4)
    third = h.checkpoint(f.ck, stop=True)
    check(third.startswith(f.ckpt(3)), f"stall_write: the checkpoint after the failed one is {third!r}, not ckpt-000003")
    rc = f.run.finish()
    check(rc == 75, f"stall_write: the stopped job's mpirun exited {rc}, expected 75{f.run.stderr_tail()}")
    check("ckpt fault point rank-before-rename: SIGSTOP" in job_stderr(f.run), "stall_write: the fault point was never reached")
    h.expect_no_leftovers("stall_write: after checkpoint --stop")
    s = h.job_restart(f.ck, "stall_write-restarted")
    compare_job(h, s, f.refs, "stall_write", [([(piece(f.run, r), "stop", 0)], seen[r] + 1) for r in range(NRANKS)])
    h.expect_no_leftovers("stall_write: after the restart")


def fault_agent_dumping(h):
    """The node agent dies as the ranks start dumping: the round fails naming
    the ranks out of reach; they run on (status says so, a checkpoint is
    refused) and end like their references; the first checkpoint restarts.
    (scale 2: the job outlives the status and checkpoint requests by far.)"""
    f = Injected(h, "agent_dumping", "agent-dumping", scale=2)
    f.failed(r"checkpoint 2, dump phase: rank \d on \S+ is out of reach: the node agent on \S+ disconnected")
    f.directory_kept()
    st = h.ctl(f.ck, "status")
    check(st.returncode == 0, f"agent_dumping: ckpt-ctl status exited {st.returncode}: {st.stderr.strip()}")
    check(f"0 ended, {NRANKS} out of reach" in st.stdout, f"agent_dumping: status does not count {NRANKS} ranks out of reach:\n{st.stdout}")
    for r in range(NRANKS):
        check(re.search(rf"^rank {r}: \S+, out of reach: its node agent was lost$", st.stdout, re.M),
              f"agent_dumping: status does not show rank {r} out of reach:\n{st.stdout}")
    c = h.ctl(f.ck, "checkpoint")
    check(c.returncode == 1 and "out of reach" in c.stderr, f"agent_dumping: a checkpoint without the agent: exit {c.returncode}: {c.stderr.strip()}")
    f.ended("whole")
    f.restarts_from(1)


def lost_coordinator(point, phase):
    """The coordinator dies at `point`: ckpt-ctl names the phase and says that
    nothing was committed; the ranks remove the partial checkpoint and run on
    to their end; the first checkpoint restarts."""
    def case(h):
        f = Injected(h, f"lost_coordinator-{point}", point)
        f.failed(rf"coordinator went away in the {phase} phase of checkpoint 2 .*; ckpt-000002 is not committed, `latest` names ckpt-000001")
        f.directory_kept()
        f.ended("whole")
        f.restarts_from(1)
    return case


def fault_commit_before_latest(h):
    """The coordinator dies after the checkpoint is renamed into place, before
    `latest` moves: the checkpoint is committed and not lost, ckpt-ctl says
    so, and the restart resumes from it (not from `latest`)."""
    f = Injected(h, "commit_before_latest", "commit-before-latest")
    f.failed(r"coordinator went away in the commit phase of checkpoint 2 .*ckpt-000002 was committed all the same, "
             r"but `latest` still names ckpt-000001")
    f.directory_kept(added=["ckpt-000002"])
    info = h.info(f.ckpt(2))
    check(info.returncode == 0 and "checksums   OK" in info.stdout, f"commit_before_latest: ckpt-info of ckpt-000002: {info.stdout}{info.stderr}")
    f.ended("whole")
    f.restarts_from(2)


def fault_commit_stall(h):
    """The coordinator stalls (stopped) in the commit of a --stop checkpoint,
    manifest written: ckpt-ctl gives up after twice the phase timeout and 5 s
    naming the phase; the ranks, kept frozen for the stop, thaw by themselves
    (after twice the phase timeout) and run on to their end; rank 0's
    ckpt-run then ends the stalled coordinator and removes its partial
    checkpoint. (Rank 0's ckpt-run is held stopped until ckpt-ctl gives up:
    the coordinator ends with it, and ckpt-ctl would see it go instead.)"""
    f = Injected(h, "commit_stall", "commit-before-rename:stop", stop=True, options=("--phase-timeout", "3"))
    f.ctl.wait_progress(r"^ckpt-ctl: committing$")
    rank0 = h.rank_pid(f.run, 0)
    os.kill(rank0, signal.SIGSTOP)
    try:
        f.failed(r"coordinator said nothing for 11 s in the commit phase of checkpoint 2: it is stalled; ckpt-000002 is not committed")
        coordinator = h.role_pid(f.run, "coordinator")
        check(proc_stat(coordinator)[1] == "T", f"commit_stall: the coordinator (pid {coordinator}) is not stopped")
        for r in range(1, NRANKS):
            wait_for(lambda: f"(rank {r}): checkpoint 2 was neither committed nor aborted in time" in job_stderr(f.run),
                     f"commit_stall: rank {r} thawing by itself")
    finally:
        os.kill(rank0, signal.SIGCONT)
    f.ended("whole")
    check("(rank 0): checkpoint 2 was neither committed nor aborted in time" in job_stderr(f.run),
          f"commit_stall: rank 0 does not say why it went on{f.run.stderr_tail()}")
    f.directory_kept()
    f.restarts_from(1)


def fault_restore_coordinator(h):
    """The coordinator dies in a restart once every rank is restored, before
    it releases them: every rank kills its restored tree and exits non-zero
    at once, saying why; no program output; the checkpoint restarts later."""
    refs = h.job_refs()
    run, ck, seen = stopped_job(h, "restore_coordinator", refs, (0.3,))
    t0 = time.time()
    s = h.job_restart(ck, "restore_coordinator-failed", env=fault_env(h, "coordinator-before-release"))
    rc = s.finish()
    took = time.time() - t0
    err = job_stderr(s)
    check(rc != 0, "restore_coordinator: the restart without its coordinator exited 0")
    check("ckpt fault point coordinator-before-release: SIGKILL" in err, f"restore_coordinator: the fault point was never reached{s.stderr_tail()}")
    check("restart failed before the restored ranks were released: the job's coordinator went away (killed or crashed)" in err,
          f"restore_coordinator: the ranks do not say why they failed{s.stderr_tail()}")
    check(not any(TAG.match(line) for line in s.lines), f"restore_coordinator: the unreleased job printed {s.lines[:3]!r}")
    # Far below every timeout of the job (connect 120 s, phase 600 s).
    check(took < 60, f"restore_coordinator: the ranks took {took:.0f} s to notice the lost coordinator")
    h.expect_no_leftovers("restore_coordinator: after the failed restart")
    again = h.job_restart(ck, "restore_coordinator-restarted")
    compare_job(h, again, refs, "restore_coordinator", [([(piece(run, r), "stop", 0)], seen[0][r] + 1) for r in range(NRANKS)])
    h.expect_no_leftovers("restore_coordinator: after the restart")


def fault_committed_fanout(h):
    """A --stop checkpoint whose node agent stops itself once it has handed
    COMMITTED to rank 0 and not yet to the others; rank 0's ckpt-run then
    stops its program, ends (75) and ends the agent (SIGTERM, SIGCONT): the
    agent still hands COMMITTED to every other rank first, so none of them
    sees it vanish and thaws (-v: it would say "lost the node agent"), every
    rank stops exactly at the checkpoint, and the job resumes from it."""
    refs = h.job_refs()
    run, _, ck = h.job("committed_fanout", options=("-v",), env=fault_env(h, "agent-committed-one:stop", rank=0))
    seen = h.wait_all(run, refs, 0.3)
    h.checkpoint(ck, stop=True)
    rc = run.finish()
    check(rc == 75, f"committed_fanout: the stopped job's mpirun exited {rc}, expected 75{run.stderr_tail()}")
    err = job_stderr(run)
    check("ckpt fault point agent-committed-one: SIGSTOP" in err, f"committed_fanout: the fault point was never reached{run.stderr_tail()}")
    check("lost the node agent" not in err, f"committed_fanout: a rank lost its agent before it had COMMITTED{run.stderr_tail()}")
    h.expect_no_leftovers("committed_fanout: after checkpoint --stop")
    s = h.job_restart(ck, "committed_fanout-restarted")
    compare_job(h, s, refs, "committed_fanout", [([(piece(run, r), "stop", 0)], seen[r] + 1) for r in range(NRANKS)])
    h.expect_no_leftovers("committed_fanout: after the restart")


FAULTS = {"kill_rank": fault_kill_rank, "kill_agent": fault_kill_agent, "kill_coordinator": fault_kill_coordinator,
          "stall": fault_stall, "full_disk": fault_full_disk,
          "dump_kill_rank": killed_rank("rank-dump-start"), "written_kill_rank": killed_rank("rank-dumped"),
          "stall_write": fault_stall_write, "agent_dumping": fault_agent_dumping,
          "coordinator_dumping": lost_coordinator("coordinator-dumping", "dump"),
          "commit_before_manifest": lost_coordinator("commit-before-manifest", "commit"),
          "commit_before_latest": fault_commit_before_latest, "commit_stall": fault_commit_stall,
          "committed_fanout": fault_committed_fanout, "restore_coordinator": fault_restore_coordinator}


# ---- security / rendezvous -------------------------------------------------------


def read_rendezvous(ck):
    with open(os.path.join(ck, ".coordinator")) as f:
        words = f.read().split()
    return dict(w.split("=", 1) for w in words[1:])


def security_wrong_secret(h):
    refs = h.job_refs()
    run, wdir, ck = h.job("wrong_secret", hold=True)
    h.wait_all(run, refs, 0.2)
    path = os.path.join(ck, ".coordinator")
    check(os.stat(path).st_mode & 0o777 == 0o600, f"wrong_secret: {path} is not 0600")
    rv = read_rendezvous(ck)
    with socket.create_connection((rv["host"], int(rv["port"])), timeout=30) as s:
        s.sendall(b"HELLO role=ctl secret=bad\nSTATUS\n")
        got = b""
        try:
            while chunk := s.recv(4096):
                got += chunk
        except ConnectionResetError:
            pass  # closed with our STATUS unread: refused as well
    check(got == b"", f"wrong_secret: the coordinator answered a client with a wrong secret: {got!r}")
    wait_for(lambda: re.search(r"ckpt-coordinator: refused a connection from [\d.]+:\d+: wrong secret", job_stderr(run)),
             "coordinator log line about the refused client", 30)
    h.checkpoint(ck)  # the job is unharmed
    compare_job(h, run, refs, "wrong_secret")
    h.expect_no_leftovers("wrong_secret")


def security_second_job(h):
    refs = h.job_refs()
    run, wdir, ck = h.job("second_job", hold=True)
    h.wait_all(run, refs, 0.2)
    before = read_rendezvous(ck)
    other = h.mkdir("second_job-other")
    cmd = h.mpirun + ["-np", "2", h.tool("agent/ckpt-run"), "--ckpt-dir", ck, "--", h.exe("heat"),
                      os.path.join(other, "heat.log"), os.path.join(other, "heat.grid")]
    s = Run(h, cmd, "second_job-second", other)
    rc = s.finish()
    err = job_stderr(s)
    check(rc != 0, "second_job: a second job on the same --ckpt-dir ran (exit 0)")
    check("already running" in err and ck in err, f"second_job: unclear refusal (exit {rc}):{s.stderr_tail()}")
    check(not os.listdir(other), f"second_job: the refused job started its program (it made {os.listdir(other)})")
    check(read_rendezvous(ck) == before, "second_job: the refused job changed .coordinator")
    # Nothing of the refused job stays (the first job's processes do).
    def stray():
        first = set(descendants(run.pid)) | {run.pid}
        return [line for line in h.leftovers() if int(line.split()[0]) not in first]
    wait_for(lambda: (h.reap_orphans(), not stray())[1], "end of the refused job's processes", 30)
    h.checkpoint(ck)  # the first job is still reachable and unharmed
    compare_job(h, run, refs, "second_job")
    h.expect_no_leftovers("second_job")


def security_ended(h):
    refs = h.job_refs()
    run, wdir, ck = h.job("ended")
    compare_job(h, run, refs, "ended")
    for args in (("checkpoint",), ("status",)):
        c = h.ctl(ck, *args)
        check(c.returncode == 3, f"ended: ckpt-ctl {args[0]} exited {c.returncode}, expected 3: {c.stderr.strip()}")
        check("no job" in c.stderr and ck in c.stderr, f"ended: unclear message: {c.stderr.strip()}")
    h.expect_no_leftovers("ended")


SECURITY = {"wrong_secret": security_wrong_secret, "second_job": security_second_job, "ended": security_ended}

GROUPS = {
    "restart": RESTART,
    "fallback": FALLBACK,
    "faults": FAULTS,
    "security": SECURITY,
}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bin", required=True, help="build directory")
    ap.add_argument("--keep", action="store_true", help="keep the work directory")
    ap.add_argument("--user", help="run the jobs as this unprivileged user (needs root)")
    ap.add_argument("group", choices=sorted(GROUPS))
    ap.add_argument("cases", nargs="*", help="cases of the group (default: all)")
    a = ap.parse_args()
    cases = GROUPS[a.group]
    unknown = [c for c in a.cases if c not in cases]
    if unknown:
        ap.error(f"unknown cases of {a.group}: {unknown} (known: {sorted(cases)})")
    if a.user and os.geteuid() != 0:
        print(f"SKIP: running as {a.user} needs root")
        return 0
    h = JobHarness(a)
    failed = 0
    try:
        failed = run_cases(h, a.group, cases, [c for c in cases if not a.cases or c in a.cases])
    finally:
        end_harness(h, a.keep or failed)
    return 1 if failed else 0

if __name__ == "__main__":
    sys.exit(main())
