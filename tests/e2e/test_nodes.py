#!/usr/bin/env python3
"""A job of several ranks across several "nodes" on this one machine.

The nodes are network namespaces this test creates (and removes): a bridge
with an address of a free private 10.77.X.0/24, one namespace per node with a
veth into the bridge, its own address and no default route. A node's
processes run in its network namespace, in a UTS namespace of their own
(host name nK) and a private mount namespace where /etc/hosts is a
test-written file that maps n1..nK to their addresses (not `ip netns exec`:
it remounts /sys, which the cgroup freezer needs). The file system is the
host's: the checkpoint directory is shared by all nodes.

The test is the launcher: rank r on node n runs
  ckpt-run --ckpt-dir D -- app_heat ...
with OMPI_COMM_WORLD_RANK/SIZE/LOCAL_RANK and a PMIX_NAMESPACE of its own
per launch, rank 0 on the first node. Each rank runs app_heat with other
parameters; its reference is an uninterrupted run without the engine
(test_apps.py's harness and comparisons).

  test_nodes.py --bin BUILD [--keep] [scenario ...]
    placements  4 ranks on 2 nodes (2+2); `ckpt-ctl status` lists 2 nodes;
                `checkpoint --stop` from the host (through the bridge) ends
                every ckpt-run with 75; the checkpoint is restarted on 4
                nodes (1 rank each), then again on a single node (4 ranks):
                every rank's output pieces and files equal its reference
    agent_kill  4 ranks on 2 nodes, a committed checkpoint, then SIGKILL of
                node n2's agent: `ckpt-ctl status` shows n2's ranks out of
                reach, the next checkpoint fails naming n2's ranks,
                the committed one stays the newest and intact, every rank
                still ends with its reference output, and a restart of the
                committed checkpoint resumes correctly

Needs root (prints SKIP otherwise). Nothing waits a fixed time.
"""
import argparse
import os
import re
import shutil
import signal
import subprocess
import sys
import time
import types

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import test_apps as ta  # noqa: E402
from test_apps import Failure, Skip, check, check_files, check_pieces, descendants, expect_exit, line_at  # noqa: E402

ta.TIMEOUT = 90  # seconds for any single wait (the whole test takes well under a minute)
APP = "heat"
RANKS = 4


def rank_args(rank):
    """app_heat's STEPS N THREADS EVERY for a rank: every rank computes something else.
    The ranks of n1 (0 and 1) run longest: when n2's agent is lost, they are
    still running whatever the load, so the refusal can only name n2's ranks."""
    return [str(90000 - 10000 * rank), "128", "2", "1000"]


def sh(*cmd):
    r = subprocess.run(list(cmd), capture_output=True, text=True, timeout=30)
    if r.returncode != 0:
        raise Failure(f"{' '.join(cmd)} exited {r.returncode}: {r.stderr.strip()}")
    return r.stdout


# ---- the nodes -----------------------------------------------------------------


class Cluster:
    """A bridge and `count` network namespaces n1..n<count> on it."""

    def __init__(self, work, count):
        tag = str(os.getpid())
        self.count = count
        self.bridge = f"ckbr{tag}"[:15]
        self.netns = {f"n{k}": f"ckpt-n{k}-{tag}" for k in range(1, count + 1)}
        self.veths = {f"n{k}": f"ckv{k}-{tag}"[:15] for k in range(1, count + 1)}
        self.hosts = os.path.join(work, "hosts")
        self.made_netns_dir = not os.path.isdir("/run/netns")
        self.prefix = None
        self.created = []  # ("netns" | "link", name), in creation order

    def free_prefix(self):
        used = sh("ip", "-4", "-o", "addr") + sh("ip", "-4", "route")
        for x in range(0, 256):
            if f"10.77.{x}." not in used:
                return f"10.77.{x}"
        raise Failure("no free 10.77.X.0/24 for the test's bridge")

    def address(self, node):
        return f"{self.prefix}.{10 + int(node[1:])}"

    def up(self):
        self.prefix = self.free_prefix()
        sh("ip", "link", "add", self.bridge, "type", "bridge")
        self.created.append(("link", self.bridge))
        sh("ip", "addr", "add", f"{self.prefix}.1/24", "dev", self.bridge)
        sh("ip", "link", "set", self.bridge, "up")
        for node, ns in self.netns.items():
            sh("ip", "netns", "add", ns)
            self.created.append(("netns", ns))
            sh("ip", "link", "add", self.veths[node], "type", "veth", "peer", "name", "eth0", "netns", ns)
            self.created.append(("link", self.veths[node]))
            sh("ip", "link", "set", self.veths[node], "master", self.bridge, "up")
            sh("ip", "-n", ns, "addr", "add", f"{self.address(node)}/24", "dev", "eth0")
            sh("ip", "-n", ns, "link", "set", "eth0", "up")
            sh("ip", "-n", ns, "link", "set", "lo", "up")
        with open(self.hosts, "w") as f:
            f.write("127.0.0.1\tlocalhost\n")
            for node in self.netns:
                f.write(f"{self.address(node)}\t{node}\n")
        os.chmod(self.hosts, 0o644)

    def down(self):
        """Removes whatever up() made (also after a failure half-way); returns what could not go."""
        problems = []
        for kind, name in reversed(self.created):
            if kind == "netns":
                cmd = ["ip", "netns", "delete", name]
            else:
                if subprocess.run(["ip", "link", "show", name], capture_output=True).returncode != 0:
                    continue  # a veth goes with its peer's namespace
                cmd = ["ip", "link", "delete", name]
            r = subprocess.run(cmd, capture_output=True, text=True)
            if r.returncode != 0:
                problems.append(f"{' '.join(cmd)}: {r.stderr.strip()}")
        self.created = []
        if self.made_netns_dir and os.path.isdir("/run/netns") and not os.listdir("/run/netns"):
            # `ip netns add` made it, and mounted it on itself.
            for _ in range(4):
                if subprocess.run(["umount", "/run/netns"], capture_output=True).returncode != 0:
                    break
            try:
                os.rmdir("/run/netns")
            except OSError:
                pass
        return problems

    def wrap(self, node, cmd):
        """cmd as a process of `node`."""
        script = f'hostname {node} && mount --bind "$0" /etc/hosts && exec "$@"'
        return ["nsenter", f"--net=/run/netns/{self.netns[node]}", "unshare", "--uts", "--mount", "--propagation", "private",
                "sh", "-c", script, self.hosts] + list(cmd)


# ---- a job of ranks on the nodes --------------------------------------------------


class Job:
    serial = 0

    def __init__(self, h, cluster, placement, ck, label, wdirs, restart=False):
        """placement: the node of each rank (rank 0 first)."""
        Job.serial += 1
        self.name = f"{label}-{os.getpid()}-{Job.serial}"
        self.placement = placement
        self.runs = []
        local = {}
        for rank, node in enumerate(placement):
            env = {k: v for k, v in h.env.items() if not k.startswith(("SLURM_", "OMPI_", "PMIX_"))}
            env.update(OMPI_COMM_WORLD_RANK=str(rank), OMPI_COMM_WORLD_SIZE=str(len(placement)),
                       OMPI_COMM_WORLD_LOCAL_RANK=str(local.get(node, 0)), PMIX_NAMESPACE=self.name)
            local[node] = local.get(node, 0) + 1
            cmd = [h.tool("agent/ckpt-run"), "--ckpt-dir", ck]
            if restart:
                cmd += ["--restart"]
            else:
                paths, _ = ta.app_args(APP, wdirs[rank])
                cmd += ["--", h.exe(APP)] + paths + rank_args(rank)
            self.runs.append(ta.Run(h, cluster.wrap(node, cmd), f"{label}-rank{rank}-{node}", wdirs[rank], env=env))

    def expect_exits(self, want, what):
        for run in self.runs:
            expect_exit(run, want, what)


def status(h, ck):
    r = h.ctl(ck, "status")
    return r.returncode, r.stdout + r.stderr


def wait_status(h, ck, pattern, what):
    """Waits until `ckpt-ctl status` prints something matching pattern; returns the output."""
    deadline = time.time() + ta.TIMEOUT
    while True:
        rc, out = status(h, ck)
        if rc == 0 and re.search(pattern, out, re.M):
            return out
        if time.time() > deadline:
            raise Failure(f"{what}: `ckpt-ctl status` never matched {pattern!r}; last (exit {rc}):\n{out}")
        time.sleep(0.05)


def rank_dirs(h, scenario):
    return [h.mkdir(scenario, f"rank{r}") for r in range(RANKS)]


def references(h):
    return [h.reference(APP, rank_args(r)) for r in range(RANKS)]


def wait_progress(job, refs, fraction):
    """Waits until every rank printed the line at `fraction` of its reference; returns their indices."""
    return [run.wait_line(line_at(refs[r][0], fraction)) for r, run in enumerate(job.runs)]


def check_restart(refs, wdirs, first, seen, second, what):
    for r in range(RANKS):
        check_pieces(refs[r][0], [(first.runs[r], "stop", 0), (second.runs[r], "end", seen[r] + 1)], f"{what}, rank {r}")
        check_files(refs[r][1], wdirs[r], f"{what}, rank {r}")


# ---- scenarios -------------------------------------------------------------------


def scenario_placements(h, cl, refs):
    wdirs = rank_dirs(h, "placements")
    ck = os.path.join(h.work, "placements", "ckpt")
    job = Job(h, cl, ["n1", "n1", "n2", "n2"], ck, "two-nodes", wdirs)
    seen = wait_progress(job, refs, 0.25)
    out = wait_status(h, ck, r"4 joined", "placements")
    check(re.search(r"4 rank\(s\) on 2 node\(s\)", out), f"placements: ckpt-ctl status does not list 2 nodes:\n{out}")
    for r, node in enumerate(job.placement):
        check(re.search(rf"^rank {r}: {node}, running$", out, re.M), f"placements: status does not put rank {r} on {node}:\n{out}")
    h.checkpoint(ck, stop=True)
    job.expect_exits(75, "placements: after checkpoint --stop")
    h.expect_no_leftovers("placements: after checkpoint --stop")

    four = Job(h, cl, ["n1", "n2", "n3", "n4"], ck, "four-nodes", wdirs, restart=True)
    four.expect_exits(0, "placements: restart on 4 nodes")
    check_restart(refs, wdirs, job, seen, four, "placements: restart on 4 nodes")
    h.expect_no_leftovers("placements: after the restart on 4 nodes")

    one = Job(h, cl, ["n3"] * RANKS, ck, "one-node", wdirs, restart=True)
    one.expect_exits(0, "placements: restart on 1 node")
    check_restart(refs, wdirs, job, seen, one, "placements: restart on 1 node")
    h.expect_no_leftovers("placements: after the restart on 1 node")


def scenario_agent_kill(h, cl, refs):
    wdirs = rank_dirs(h, "agent-kill")
    ck = os.path.join(h.work, "agent-kill", "ckpt")
    job = Job(h, cl, ["n1", "n1", "n2", "n2"], ck, "agent-kill", wdirs)
    seen = wait_progress(job, refs, 0.15)
    h.checkpoint(ck)
    info = h.info(os.path.join(ck, "latest"))
    check(info.returncode == 0, f"agent_kill: ckpt-info of the first checkpoint exited {info.returncode}:\n{info.stdout}{info.stderr}")
    latest = os.path.realpath(os.path.join(ck, "latest"))
    entries = sorted(os.listdir(ck))

    # Rank 2 is n2's local rank 0: its ckpt-run started n2's agent.
    agents = [pid for pid, (_, cmd) in descendants(job.runs[2].pid).items() if "--role=agent" in cmd]
    check(len(agents) == 1, f"agent_kill: rank 2's ckpt-run has {len(agents)} node agent(s) below it")
    sockets = agent_sockets(agents[0])
    check(sockets, f"agent_kill: n2's agent (pid {agents[0]}) serves no socket in {RUNTIME_DIR}")
    LEFT_SOCKETS.update(sockets)
    os.kill(agents[0], signal.SIGKILL)
    # n2's ranks run on, out of the job's reach: not "ended".
    out = wait_status(h, ck, r"2 out of reach", "agent_kill: after SIGKILL of n2's agent")
    for rank in (2, 3):
        check(re.search(rf"^rank {rank}: n2, out of reach: its node agent was lost$", out, re.M),
              f"agent_kill: status does not say that rank {rank} is out of reach:\n{out}")
    check(re.search(r"^rank 0: n1, running$", out, re.M) and re.search(r"^rank 1: n1, running$", out, re.M),
          f"agent_kill: n1's ranks are no longer running:\n{out}")

    r = h.ctl(ck, "checkpoint")
    check(r.returncode == 1, f"agent_kill: checkpoint after the loss of n2's agent exited {r.returncode}: {r.stderr.strip()}")
    check("n2" in r.stderr and re.search(r"rank [23]\b", r.stderr),
          f"agent_kill: the failed checkpoint's message does not name node n2 and its ranks: {r.stderr.strip()}")
    print(f"  refused as it should be: {r.stderr.strip()}", flush=True)

    # Nothing committed is lost, and no partial checkpoint stays.
    check(os.path.realpath(os.path.join(ck, "latest")) == latest,
          f"agent_kill: latest moved from {latest} to {os.path.realpath(os.path.join(ck, 'latest'))}")
    now = sorted(e for e in os.listdir(ck) if not e.startswith(".coordinator"))
    check(now == [e for e in entries if not e.startswith(".coordinator")],
          f"agent_kill: the checkpoint directory changed: {entries} -> {now}")
    info = h.info(os.path.join(ck, "latest"))
    check(info.returncode == 0 and "checksums   OK" in info.stdout,
          f"agent_kill: ckpt-info of the committed checkpoint: exit {info.returncode}\n{info.stdout}{info.stderr}")

    # The ranks went on: every one ends with its whole reference output.
    job.expect_exits(0, "agent_kill: after the loss of n2's agent")
    for rank in range(RANKS):
        check_pieces(refs[rank][0], [(job.runs[rank], "end", 0)], f"agent_kill, rank {rank}")
        check_files(refs[rank][1], wdirs[rank], f"agent_kill, rank {rank}")
    h.expect_no_leftovers("agent_kill: at the end of the job")

    # ... and the committed checkpoint still restarts (on other nodes).
    again = Job(h, cl, ["n3", "n3", "n4", "n4"], ck, "agent-kill-restart", wdirs, restart=True)
    again.expect_exits(0, "agent_kill: restart of the committed checkpoint")
    for rank in range(RANKS):
        check_pieces(refs[rank][0], [(job.runs[rank], "kill", 0), (again.runs[rank], "end", seen[rank] + 1)],
                     f"agent_kill: restart, rank {rank}")
        check_files(refs[rank][1], wdirs[rank], f"agent_kill: restart, rank {rank}")
    h.expect_no_leftovers("agent_kill: after the restart")


SCENARIOS = {"placements": scenario_placements, "agent_kill": scenario_agent_kill}


RUNTIME_DIR = f"/tmp/ckpt-{os.getuid()}"
LEFT_SOCKETS = set()  # of agents this test killed: they cannot remove them


def agent_sockets(pid):
    """The agent sockets bound in the network namespace of process pid
    (/proc/PID/net/unix lists that namespace's sockets: only this test's)."""
    found = set()
    try:
        with open(f"/proc/{pid}/net/unix") as f:
            for line in f:
                path = line.split()[-1]
                if path.startswith(RUNTIME_DIR + "/agent-") and path.endswith(".sock"):
                    found.add(path)
    except OSError:
        pass
    return found


def remove_left_state(runtime_dir_existed):
    for path in LEFT_SOCKETS:
        try:
            os.unlink(path)
        except OSError:
            pass
    if not runtime_dir_existed:
        try:
            os.rmdir(RUNTIME_DIR)  # only when empty
        except OSError:
            pass


def unavailable():
    """Why nodes cannot be made here, or None."""
    if os.geteuid() != 0:
        return "several nodes as network namespaces need root"
    missing = [t for t in ("ip", "nsenter", "unshare") if not shutil.which(t)]
    return f"{', '.join(missing)} not installed" if missing else None


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bin", required=True, help="build directory")
    ap.add_argument("--keep", action="store_true", help="keep the work directory")
    ap.add_argument("only", nargs="*", help=f"scenarios: {', '.join(SCENARIOS)} (default: all)")
    a = ap.parse_args()
    for name in a.only:
        if name not in SCENARIOS:
            ap.error(f"unknown scenario {name}")
    if unavailable():
        print(f"SKIP: {unavailable()}")
        return 0
    h = ta.Harness(types.SimpleNamespace(bin=a.bin, compression="none", user=None))
    cl = Cluster(h.work, 4)
    runtime_dir_existed = os.path.isdir(RUNTIME_DIR)
    failed = 0
    try:
        cl.up()
        refs = references(h)
        for name in a.only or list(SCENARIOS):
            t0 = time.time()
            try:
                SCENARIOS[name](h, cl, refs)
                print(f"PASS {name} ({time.time() - t0:.1f} s)", flush=True)
            except Skip as e:
                print(f"SKIP {name}: {e}", flush=True)
            except (Failure, subprocess.TimeoutExpired) as e:
                failed += 1
                print(f"FAIL {name}: {e}", flush=True)
            finally:
                h.kill_runs()
    except (Failure, subprocess.TimeoutExpired) as e:
        failed += 1
        print(f"FAIL: {e}", flush=True)
    finally:
        keep = a.keep or failed
        h.cleanup(remove=False)
        problems = cl.down()
        remove_left_state(runtime_dir_existed)
        if problems:
            failed += 1
            print("FAIL: could not remove the test's network:\n  " + "\n  ".join(problems), flush=True)
        if keep:
            print(f"(work directory kept: {h.work})")
        else:
            shutil.rmtree(h.work, ignore_errors=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
