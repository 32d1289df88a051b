#!/usr/bin/env python3
"""End-to-end tests of a job of several ranks: `mpirun -np 4 ckpt-run ...`.

Every rank runs app_heat (tests/e2e/apps) with a rank-dependent number of
steps and its own output directory; mpirun tags each output line with its
rank (--tag-output), so every rank's stdout is compared on its own with an
uninterrupted run of the same command (the reference), and so are its
output files, byte for byte.

  test_job.py --bin BUILD GROUP [CASE ...]
    restart   checkpoint (going on) at 20 %, `ckpt-ctl status` (4 ranks, the
              last checkpoint), `checkpoint --stop` at 50 %, SIGKILL of
              whatever is left, `mpirun ... --restart`: every rank resumes
              exactly where it stopped and ends like its reference
    fallback  damaged: --restart=auto with the newest checkpoint's
              rank-00002.h5 damaged in its page data falls back to the older
              checkpoint and says so; missing: a missing rank file and a
              single checkpoint: the restart fails naming the file, nothing
              left behind
    faults    a fault during a checkpoint round: kill_rank (SIGKILL of one
              rank's ckpt-run), kill_agent (the node agent), kill_coordinator,
              stall (one rank's ckpt-run stopped past --phase-timeout 3),
              full_disk (a 1 MiB tmpfs, root only): ckpt-ctl exits 1 naming
              the cause, `latest` stays, no .partial is left, and the job goes
              on (and ends, when a rank was killed) with nothing left behind
    security  wrong_secret (a client with a bad secret is refused and the
              coordinator logs it), second_job (a second mpirun on the same
              --ckpt-dir is refused: "already running"; the first goes on),
              ended (ckpt-ctl for a job that has ended exits 3)

A fault is put in the round deterministically: the rank it concerns is
stopped (SIGSTOP) before the checkpoint is asked for, so the round waits for
it; the fault comes once ckpt-ctl reports the round started. Nothing waits a
fixed time: every step waits for a line, an exit or a file, with a deadline.
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
                       descendants, end_harness, line_at, run_cases, tiny_tmpfs)

NRANKS = 4
HEAT = ("256", "2", "250")  # N, threads, report every


def rank_steps(rank):
    return str(30000 + 2000 * rank)


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
        super().__init__(types.SimpleNamespace(bin=a.bin, compression="none", user=getattr(a, "user", None)))
        self.mpirun = ["mpirun", "--oversubscribe", "--bind-to", "none", "--tag-output"]
        if os.geteuid() == 0:
            self.mpirun.insert(1, "--allow-run-as-root")

    def job_refs(self):
        """Per rank: (reference stdout lines, reference files)."""
        return [self.reference("heat", (rank_steps(r),) + HEAT) for r in range(NRANKS)]

    def job(self, name, ck=None, options=()):
        """Starts the 4-rank job; returns (run, work dir, ckpt dir). Rank r writes
        into <work>/rank-r."""
        wdir = self.mkdir(name)
        ck = ck or os.path.join(wdir, "ckpt")
        cmd = list(self.mpirun)
        for r in range(NRANKS):
            rdir = self.mkdir(name, f"rank-{r}")
            if r:
                cmd.append(":")
            cmd += ["-np", "1", self.tool("agent/ckpt-run"), "--ckpt-dir", ck, "--mpi", "none", *options, "--", self.exe("heat"),
                    os.path.join(rdir, "heat.log"), os.path.join(rdir, "heat.grid"), rank_steps(r), *HEAT]
        return Run(self, cmd, f"{name}-run", wdir), wdir, ck

    def job_restart(self, ck, label, path=None, nranks=NRANKS, options=()):
        opt = "--restart" if path is None else f"--restart={path}"
        cmd = self.mpirun + ["-np", str(nranks), self.tool("agent/ckpt-run"), "--ckpt-dir", ck, opt, *options]
        return Run(self, cmd, label, self.work)

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


def compare_job(h, run, refs, name, before=None):
    """Waits for the end (exit 0) of job `name`; every rank's output, after its
    earlier pieces (before[rank]: ([(piece, 'stop' | 'kill', 0)], min_start)),
    and its output files must equal its reference."""
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
        self.proc = subprocess.Popen([h.tool("coordinator/ckpt-ctl"), "--ckpt-dir", ck, *args], stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, text=True, cwd=h.work)
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
    seen = h.wait_all(run, refs, 0.5)
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
    run, ck, seen = stopped_job(h, "damaged", refs, (0.2, 0.5))
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
    wait_for(lambda: not [e for e in os.listdir(ck) if e.endswith(".partial")], f"{name}: removal of the partial checkpoint", 30)
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


FAULTS = {"kill_rank": fault_kill_rank, "kill_agent": fault_kill_agent, "kill_coordinator": fault_kill_coordinator,
          "stall": fault_stall, "full_disk": fault_full_disk}


# ---- security / rendezvous -------------------------------------------------------


def read_rendezvous(ck):
    with open(os.path.join(ck, ".coordinator")) as f:
        words = f.read().split()
    return dict(w.split("=", 1) for w in words[1:])


def security_wrong_secret(h):
    refs = h.job_refs()
    run, wdir, ck = h.job("wrong_secret")
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
    run, wdir, ck = h.job("second_job")
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
    "restart": {"stop_restart": restart_stop_restart},
    "fallback": FALLBACK,
    "faults": FAULTS,
    "security": SECURITY,
}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bin", required=True, help="build directory")
    ap.add_argument("--keep", action="store_true", help="keep the work directory")
    ap.add_argument("group", choices=sorted(GROUPS))
    ap.add_argument("cases", nargs="*", help="cases of the group (default: all)")
    a = ap.parse_args()
    cases = GROUPS[a.group]
    unknown = [c for c in a.cases if c not in cases]
    if unknown:
        ap.error(f"unknown cases of {a.group}: {unknown} (known: {sorted(cases)})")
    h = JobHarness(a)
    failed = 0
    try:
        failed = run_cases(h, a.group, cases, [c for c in cases if not a.cases or c in a.cases])
    finally:
        end_harness(h, a.keep or failed)
    return 1 if failed else 0

if __name__ == "__main__":
    sys.exit(main())
