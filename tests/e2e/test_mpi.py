#!/usr/bin/env python3
"""End-to-end tests of unmodified MPI programs under the MPI layer.

The victims (tests/mpi, built against Debian's Open MPI as mpicc would
build them) are deterministic: rank 0 prints `step K` lines, then every
rank's checksum of all it received and PASS or FAIL of its self-checks.
Each case compares the output of jobs run under

  mpirun -np N ckpt-run --ckpt-dir D -- mpi_VICTIM ARGS
  mpirun -np N ckpt-run --ckpt-dir D --restart

with the reference, the output of `mpirun -np N mpi_VICTIM ARGS` without the
engine and without ARGS' timing options (at full speed), rank by rank
(mpirun --tag-output), with test_apps.py's piece comparison: a run restored
after `checkpoint --stop` resumes exactly where the stopped run ended; one
restored from an older checkpoint resumes at or before the point where the
earlier run ended and after the line waited for before that checkpoint; the
last piece ends with the reference's verdict.

  test_mpi.py --bin BUILD [--np N ...] VICTIM ... [--case CASE ...]
    the cases for each victim and each N (default 4 and 8; oversubscribed):
      continue  `checkpoint` at 25 % and at 60 % of rank 0's progress lines;
                the job goes on and ends exactly like the reference
      chain     `checkpoint --stop` at 40 %, SIGKILL of anything left (nothing
                may be), `--restart`; the restored job is stopped again at
                70 % and restarted again: the three pieces make the reference
      early     `checkpoint --stop` as soon as rank 0 printed `step 0` (just
                after MPI_Init and the program's setup), restart
      blocked   the job's laggard (rank N-1; rank 0 for master_worker; the
                even ranks for comm_split, see laggards()) sleeps
                1 ms more than the others every step (--lag), so that the
                others spend most of each step inside a blocking call or a
                collective waiting for it: `checkpoint` at 30 %; at 60 % the
                laggard stalls for 3 s (--stall), so that the `checkpoint
                --stop` asked for when rank 0 printed that step surely finds
                the others blocked (in MPI_Recv, MPI_Waitall, MPI_Allreduce,
                MPI_Probe ...); restart the newest checkpoint, then the older
  test_mpi.py --bin BUILD --native-only [--np N ...] VICTIM ...
    the harness itself, without the engine (passes on plain Open MPI): the
    arguments of the blocked case (pace, laggard, stall) give the same
    output as the reference, which runs without --pace, --lag and --stall
    (untimed: at full speed), every self-check passes, the progress lines
    the cases wait for are there and unique
  test_mpi.py --bin BUILD --nodes [--native-only] VICTIM ...
    4 ranks across 2 "nodes" (network namespaces, test_nodes.py's Cluster),
    launched by mpirun itself through an rsh agent (`--mca plm_rsh_agent`, a
    script that runs orted in the node's namespaces with nsenter), under
    ckpt-run: `checkpoint` at 30 %, `checkpoint --stop` at 60 %, restart on
    2 other nodes, then the older checkpoint on 4 nodes; the pieces make
    the single-host reference. With --native-only: natively, the output
    must equal the single-host reference (needs root: SKIP otherwise)

The cases fail until the MPI layer (mpi_plugin/) works: a failure then says
so. Nothing waits a fixed time: every step waits for a line, an exit or a
file with a deadline (test_apps.TIMEOUT).
"""
import argparse
import glob
import os
import shlex
import subprocess
import sys
import threading
import time
import types

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import test_apps as ta  # noqa: E402
from test_apps import Failure, Run, check, check_pieces, descendants, end_harness, run_cases  # noqa: E402
from test_job import TAG, JobHarness, piece, rank_lines, wait_rank_line  # noqa: E402
import test_nodes  # noqa: E402

ta.TIMEOUT = 240  # (test_nodes lowers it for its own short jobs)

VICTIMS = ["ring", "halo2d", "cg", "master_worker", "comm_split", "collectives", "nbc", "heap"]
# Steps of each victim: about 2 to 4 s natively at N=4 with the pace below.
STEPS = {"ring": 800, "comm_split": 800, "heap": 300}
DEFAULT_STEPS = 1000
PROGRESS_LINES = 20
PACE = "1500"  # us every rank sleeps every step (cases without a laggard)
LAG_PACE, LAG, STALL = "500", "1000", "3000000"  # us: every rank, the laggard's more, its stall
NODE_STEPS = {"halo2d": 600, "comm_split": 100}  # TCP between the nodes is slow; default: STEPS // 10


def laggards(name, n):
    """The ranks the others wait for, as (rank, stride) of --lag and --stall:
    the master for master_worker (its workers wait in MPI_Probe); the even
    ranks for comm_split, so that its odd half enters the step's
    MPI_Comm_split of MPI_COMM_WORLD while the even half has yet to enter
    the step's collective on its own half (a checkpoint then finds the
    halves on either side of a collective of the world: the even ranks must
    go past their half's target to reach the world's); else the last rank."""
    return {"master_worker": (0, 0), "comm_split": (0, 2)}.get(name, (n - 1, 0))


def victim_args(name, n, blocked=False, steps=None):
    steps = steps or STEPS.get(name, DEFAULT_STEPS)
    args = [str(steps), str(steps // PROGRESS_LINES)]
    if not blocked:
        return args + ["--pace", PACE]
    rank, stride = laggards(name, n)
    every = f":{stride}" if stride else ""
    return args + ["--pace", LAG_PACE, "--lag", f"{rank}:{LAG}{every}", "--stall", f"{rank}:{at(args, 0.6)}:{STALL}{every}"]


def at(args, fraction):
    """The step of the progress line at `fraction` of a run with these arguments."""
    steps, every = int(args[0]), int(args[1])
    return int(steps * fraction) // every * every


def step_line(k):
    return f"step {k}\n".encode()


def outputs(run, n):
    """Every rank's stdout lines; mpirun itself must print nothing untagged."""
    with run.cond:
        stray = [line for line in run.lines if not TAG.match(line)]
    check(not stray, f"{run.label}: untagged lines on mpirun's stdout: {stray[:3]!r}")
    return [rank_lines(run, r) for r in range(n)]


def verdict(name, out, label):
    """A native run's output must be a passing, usable reference."""
    lines = out[0]
    fails = [(r, line) for r, rl in enumerate(out) for line in rl if line.startswith(b"FAIL")]
    check(not fails, f"{label}: self-checks failed: {fails[:5]!r}")
    check(lines and lines[-1].startswith(f"PASS {name}: ".encode()), f"{label}: rank 0 did not end with PASS: {lines[-3:]!r}")
    steps = [line for line in lines if line.startswith(b"step ")]
    check(len(steps) >= PROGRESS_LINES, f"{label}: only {len(steps)} progress lines")
    check(len(set(lines)) == len(lines), f"{label}: rank 0's lines are not unique")
    check(not any(out[1:]), f"{label}: ranks other than 0 printed {[len(rl) for rl in out]} lines")


def compare(ref, pieces, what):
    """pieces: [(run, 'stop' | 'kill' | 'end', min_start)], min_start an index in
    rank 0's reference. Every rank's output, piece after piece, must make its
    reference (ranks other than 0 print nothing, unless a check fails)."""
    for r, want in enumerate(ref):
        per_rank = [(piece(run, r), how, start if r == 0 else 0) for run, how, start in pieces]
        if want:
            check_pieces(want, per_rank, f"{what}, rank {r}")
        else:
            printed = [(p.label, p.lines[:3]) for p, _, _ in per_rank if p.lines]
            check(not printed, f"{what}: rank {r} printed what its reference does not: {printed!r}")


class MpiHarness(JobHarness):
    def __init__(self, a):
        super().__init__(a)
        self.mpi_refs = {}
        shim = glob.glob(os.path.join(self.bin, "lib", "ckpt-mpi", "libmpi.so.40"))
        self.no_layer = None if shim else (
            f"{os.path.join(self.bin, 'lib', 'ckpt-mpi')} holds no libmpi.so.40 shim: the MPI layer is not built yet, and until it "
            "works these cases are expected to fail")

    def victim(self, name):
        return os.path.join(self.bin, "tests", "mpi", f"mpi_{name}")

    def mpi(self, label, n, cmd, prefix=None):
        return Run(self, (prefix or self.mpirun) + ["-np", str(n)] + cmd, label, self.mkdir(label))

    def native(self, name, n, args, label, prefix=None):
        run = self.mpi(label, n, [self.victim(name), *args], prefix)
        rc = run.finish()
        out = outputs(run, n)
        check(rc == 0, f"{label}: `mpirun -np {n} mpi_{name} {' '.join(args)}` exited {rc}{run.stderr_tail()}")
        verdict(name, out, label)
        return out

    def mpi_reference(self, name, n, args):
        """The output of a native run, untimed (at full speed: same lines)."""
        args = ta.untimed(args)
        key = (name, n, tuple(args))
        if key not in self.mpi_refs:
            self.mpi_refs[key] = self.native(name, n, args, f"ref-{name}-{n}-{len(self.mpi_refs)}")
        return self.mpi_refs[key]

    def mpi_job(self, label, name, n, args, prefix=None):
        """The job under ckpt-run; returns (run, checkpoint directory)."""
        ck = os.path.join(self.mkdir(label), "ckpt")
        run = self.mpi(label, n, [self.tool("agent/ckpt-run"), "--ckpt-dir", ck, "--", self.victim(name), *args], prefix)
        return run, ck

    def mpi_restart(self, label, n, ck, path=None, prefix=None):
        opt = "--restart" if path is None else f"--restart={path}"
        return self.mpi(label, n, [self.tool("agent/ckpt-run"), "--ckpt-dir", ck, opt], prefix)

    def wait_step(self, run, ref, k):
        """Waits until rank 0 printed `step k`; returns that line's index in the reference."""
        line = step_line(k)
        check(line in ref[0], f"{run.label}: internal: the reference has no {line!r}")
        wait_rank_line(run, 0, line)
        return ref[0].index(line)

    def stop(self, run, ck, what):
        """`checkpoint --stop`: mpirun exits 75 and nothing of the job is left
        (whatever is, is killed and named)."""
        self.checkpoint(ck, stop=True)
        job = descendants(run.pid)
        rc = run.finish()
        check(rc == 75, f"{what}: the stopped job's mpirun exited {rc}, expected 75{run.stderr_tail()}")
        left = self.kill_left(job)
        check(not left, f"{what}: processes outlived the stopped job:\n  " + "\n  ".join(left))
        self.expect_no_leftovers(f"{what}: after checkpoint --stop")

    def ended(self, run, what):
        rc = run.finish()
        check(rc == 0, f"{what}: {run.label} exited {rc}{run.stderr_tail()}")


# ---- the cases -------------------------------------------------------------------


def begin(h, name, n, case, blocked=False):
    """A case's reference and its job: (args, ref, label, run, ck)."""
    args = victim_args(name, n, blocked)
    label = f"{name}-{n}-{case}"
    ref = h.mpi_reference(name, n, args)
    return (args, ref, label) + h.mpi_job(label, name, n, args)


def case_continue(h, name, n):
    args, ref, _, run, ck = begin(h, name, n, "continue")
    for fraction in (0.25, 0.6):
        h.wait_step(run, ref, at(args, fraction))
        h.checkpoint(ck)
    h.ended(run, "continue")
    compare(ref, [(run, "end", 0)], "continue")
    h.expect_no_leftovers("continue: at the end")


def case_chain(h, name, n):
    args, ref, label, run, ck = begin(h, name, n, "chain")
    seen1 = h.wait_step(run, ref, at(args, 0.4))
    h.stop(run, ck, "chain, first stop")
    again = h.mpi_restart(f"{label}-restart1", n, ck)
    seen2 = h.wait_step(again, ref, at(args, 0.7))
    h.stop(again, ck, "chain, restored job stopped")
    last = h.mpi_restart(f"{label}-restart2", n, ck)
    h.ended(last, "chain")
    compare(ref, [(run, "stop", 0), (again, "stop", seen1 + 1), (last, "end", seen2 + 1)], "chain")
    h.expect_no_leftovers("chain: at the end")


def case_early(h, name, n):
    _, ref, label, run, ck = begin(h, name, n, "early")
    wait_rank_line(run, 0, step_line(0))
    h.stop(run, ck, "early")
    s = h.mpi_restart(f"{label}-restart", n, ck)
    h.ended(s, "early")
    compare(ref, [(run, "stop", 0), (s, "end", 1)], "early")
    h.expect_no_leftovers("early: at the end")


def checkpoint_then_stop(h, label, run, ck, args, ref):
    """`checkpoint` at 30 % and `checkpoint --stop` at the stall step (60 %);
    returns the index of the line seen before each checkpoint."""
    seen1 = h.wait_step(run, ref, at(args, 0.3))
    h.checkpoint(ck)
    seen2 = h.wait_step(run, ref, at(args, 0.6))
    h.stop(run, ck, label)
    return seen1, seen2


def restart_both(h, label, n, ck, ref, run, seen1, seen2, prefixes=(None, None)):
    """Restarts the newest checkpoint, then the older ckpt-000001."""
    s = h.mpi_restart(f"{label}-newest", n, ck, prefix=prefixes[0])
    h.ended(s, f"{label}, newest checkpoint")
    compare(ref, [(run, "stop", 0), (s, "end", seen2 + 1)], f"{label}, newest checkpoint")
    h.expect_no_leftovers(f"{label}: after the restart of the newest checkpoint")
    o = h.mpi_restart(f"{label}-older", n, ck, path=os.path.join(ck, "ckpt-000001"), prefix=prefixes[1])
    h.ended(o, f"{label}, older checkpoint")
    compare(ref, [(run, "kill", 0), (o, "end", seen1 + 1)], f"{label}, older checkpoint")
    h.expect_no_leftovers(f"{label}: at the end")


def case_blocked(h, name, n):
    args, ref, label, run, ck = begin(h, name, n, "blocked", blocked=True)
    seen1, seen2 = checkpoint_then_stop(h, label, run, ck, args, ref)
    restart_both(h, label, n, ck, ref, run, seen1, seen2)


CASES = {"continue": case_continue, "chain": case_chain, "early": case_early, "blocked": case_blocked}


def native_only(h, name, n):
    """The cases' arguments: the untimed reference is what the run with the
    most timing options (pace, laggard and stall) prints too."""
    plain, blocked = victim_args(name, n), victim_args(name, n, blocked=True)
    t0 = time.time()
    ref = h.mpi_reference(name, n, plain)
    t1 = time.time()
    lagged = h.native(name, n, blocked, f"lagged-{name}-{n}")
    t2 = time.time()
    for r in range(n):
        check(lagged[r] == ref[r], f"rank {r} printed other lines with {' '.join(blocked[2:])} than without: "
                                   f"{len(lagged[r])} and {len(ref[r])} lines, first difference "
                                   f"{next(((a, b) for a, b in zip(lagged[r], ref[r]) if a != b), None)!r}")
    for k in (at(plain, f) for f in (0, 0.25, 0.3, 0.4, 0.6, 0.7)):
        check(step_line(k) in ref[0], f"no progress line {step_line(k)!r} to wait for")
    self_check(ref)
    print(f"  {name} -np {n}: {t1 - t0:.1f} s untimed, {t2 - t1:.1f} s with a laggard; {ref[0][-1].decode().strip()}",
          flush=True)


def self_check(ref):
    """compare() takes rank 0's reference cut in two at a stop, and refuses it
    with a line lost, a line repeated or a checksum changed."""
    def run(label, lines):
        return types.SimpleNamespace(label=label, lines=[b"[1,0]<stdout>:" + x for x in lines], cond=threading.Condition())
    lines, cut = ref[0], len(ref[0]) // 2
    compare(ref, [(run("first", lines[:cut]), "stop", 0), (run("second", lines[cut:]), "end", cut)], "self-check")
    for what, second in (("lost", lines[cut + 1:]), ("repeated", lines[cut - 1:]),
                         ("changed", lines[cut:-3] + [b"rank 0 checksum 0000000000000000\n"] + lines[-2:])):
        try:
            compare(ref, [(run("first", lines[:cut]), "stop", 0), (run("second", second), "end", cut)], "self-check")
        except Failure:
            continue
        raise Failure(f"internal: the comparison accepted an output with a line {what}")


# ---- across nodes ------------------------------------------------------------------


class Nodes:
    """test_nodes.py's network-namespace nodes n1..n4, and an rsh agent for
    mpirun: `AGENT NODE COMMAND...` runs the command line (orted's, as ssh
    would pass it to a shell) in NODE's network namespace, with its host name
    and /etc/hosts (Cluster.wrap's namespaces)."""

    def __init__(self, h):
        self.cluster = test_nodes.Cluster(h.work, 4)
        self.agent = os.path.join(h.work, "rsh-agent")
        self.h = h

    def up(self):
        self.cluster.up()
        # orted's command line comes as words for a remote shell (as ssh passes them): "$*".
        nodes = "".join(f"  {node}) exec {' '.join(shlex.quote(w) for w in self.cluster.wrap(node, []))} sh -c \"$*\" ;;\n"
                        for node in self.cluster.netns)
        with open(self.agent, "w") as f:
            f.write("#!/bin/sh\n# mpirun's rsh agent (test_mpi.py): AGENT NODE COMMAND...\n"
                    f"node=$1\nshift\ncase $node in\n{nodes}esac\necho \"rsh-agent: no node $node\" >&2\nexit 255\n")
        os.chmod(self.agent, 0o755)

    def down(self):
        return self.cluster.down()

    def check_placement(self, hosts):
        """mpirun with this --host puts its ranks on those nodes (run `hostname`)."""
        want = [node for spec in hosts.split(",") for node in [spec.split(":")[0]] * int((spec + ":1").split(":")[1])]
        run = Run(self.h, self.prefix(hosts) + ["-np", str(len(want)), "hostname"], f"placement-{hosts}", self.h.work)
        rc = run.finish()
        got = [b"".join(rank_lines(run, r)).decode().strip() for r in range(len(want))]
        check(rc == 0 and got == want, f"mpirun --host {hosts} placed its ranks on {got} (exit {rc}), expected {want}"
                                       f"{run.stderr_tail()}")

    def prefix(self, hosts):
        net = f"{self.cluster.prefix}.0/24"
        return self.h.mpirun + ["--host", hosts, "--mca", "plm_rsh_agent", self.agent,
                                "--mca", "oob_tcp_if_include", net, "--mca", "btl_tcp_if_include", net]


def under_layer(h, fn, *args):
    """fn(h, *args); a failure says when the MPI layer is not there yet."""
    try:
        fn(h, *args)
    except Failure as e:
        if h.no_layer:
            raise Failure(f"{e}\n  ({h.no_layer})") from e
        raise


def node_args(name):
    return victim_args(name, 4, steps=NODE_STEPS.get(name, STEPS.get(name, DEFAULT_STEPS) // 10))


def nodes_native(h, nodes, name):
    """Natively across 2 nodes, the output equals the single-host reference."""
    args = node_args(name)
    ref = h.mpi_reference(name, 4, args)
    nodes.check_placement("n1:2,n2:2")
    out = h.native(name, 4, args, f"{name}-nodes-native", prefix=nodes.prefix("n1:2,n2:2"))
    for r in range(4):
        check(out[r] == ref[r], f"rank {r}: across 2 nodes {len(out[r])} lines, on one host {len(ref[r])}; first difference "
                                f"{next(((a, b) for a, b in zip(out[r], ref[r]) if a != b), None)!r}")


def nodes_restart(h, nodes, name):
    """Checkpointed on n1+n2, restarted on n3+n4, the older checkpoint on n1..n4."""
    args = node_args(name)
    ref = h.mpi_reference(name, 4, args)
    for hosts in ("n1:2,n2:2", "n3:2,n4:2", "n1,n2,n3,n4"):
        nodes.check_placement(hosts)
    label = f"{name}-nodes"
    run, ck = h.mpi_job(label, name, 4, args, nodes.prefix("n1:2,n2:2"))
    seen1, seen2 = checkpoint_then_stop(h, label, run, ck, args, ref)
    restart_both(h, label, 4, ck, ref, run, seen1, seen2, (nodes.prefix("n3:2,n4:2"), nodes.prefix("n1,n2,n3,n4")))


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bin", required=True, help="build directory")
    ap.add_argument("--np", type=int, action="append", help="ranks (repeatable; default 4 and 8)")
    ap.add_argument("--case", action="append", choices=sorted(CASES), help="the cases to run (repeatable; default all)")
    ap.add_argument("--native-only", action="store_true", help="check the victims and the harness without the engine")
    ap.add_argument("--nodes", action="store_true", help="4 ranks across 2 network-namespace nodes")
    ap.add_argument("--keep", action="store_true", help="keep the work directory")
    ap.add_argument("--user", help="run the jobs (mpirun, ckpt-run, ckpt-ctl) as this unprivileged user")
    ap.add_argument("victims", nargs="+", choices=VICTIMS + ["all"])
    a = ap.parse_args()
    victims = VICTIMS if "all" in a.victims else a.victims
    if a.user and os.geteuid() != 0:
        print(f"SKIP: running as {a.user} needs root")
        return 0
    if a.nodes and test_nodes.unavailable():
        print(f"SKIP: {test_nodes.unavailable()}")
        return 0
    h = MpiHarness(a)
    nodes = None
    failed = 0
    try:
        if a.nodes:
            nodes = Nodes(h)
            nodes.up()
            if a.native_only:
                cases = {v: (lambda h, v=v: nodes_native(h, nodes, v)) for v in victims}
            else:
                cases = {v: (lambda h, v=v: under_layer(h, nodes_restart, nodes, v)) for v in victims}
            what = "nodes native" if a.native_only else "nodes"
        else:
            if a.native_only:
                fns = {"native": native_only}
            else:
                fns = {c: (lambda h, v, n, f=CASES[c]: under_layer(h, f, v, n)) for c in (a.case or CASES)}
            cases = {f"{v} -np {n} {c}": (lambda h, f=f, v=v, n=n: f(h, v, n))
                     for v in victims for n in (a.np or [4, 8]) for c, f in fns.items()}
            what = "mpi"
        failed = run_cases(h, what, cases, list(cases))
    except (Failure, subprocess.TimeoutExpired) as e:
        failed += 1
        print(f"FAIL: {e}", flush=True)
    finally:
        if nodes:
            problems = nodes.down()
            if problems:
                failed += 1
                print("FAIL: could not remove the test's network:\n  " + "\n  ".join(problems), flush=True)
        end_harness(h, a.keep or failed)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
