#!/usr/bin/env python3
"""A real SLURM cluster on this one machine, for the tests (Debian's SLURM 22.05).

Everything lives under one state directory: munged (its own key and
socket), slurmctld, and one slurmd per node. Nodes are network namespaces
(tests/e2e/test_nodes.py's Cluster: a bridge, one namespace per node with
its own address, host name nK and /etc/hosts, and a /dev/shm of its own)
or, with --loopback, a single node n1 on 127.0.0.1 in the host's own
namespaces. Job ids start at a number of the cluster's own (FirstJobId).

  local_slurm.py up   --state DIR [--nodes N | --loopback] [--cpus C] [--grace S] [--no-user-signal]
  local_slurm.py env  --state DIR      # `export SLURM_CONF=...` lines for a shell
  local_slurm.py down --state DIR      # cancels every job, stops everything it started

Partitions: `low` (the default, PriorityTier=1, preempted with
PreemptMode=REQUEUE after GraceTime) and `high` (PriorityTier=10), both on
every node; JobRequeue=1, MpiDefault=pmix, proctrack/cgroup (v1 freezer),
SlurmctldParameters=preempt_send_user_signal (unless --no-user-signal).

Every process the cluster starts carries CKPT_LOCAL_SLURM=<state dir> in
its environment (the daemons, the slurmstepds they fork, and the jobs that
are submitted with env() of this module); `down` kills the daemons by the
pids in their pid files, then whatever still carries that mark, and
nothing else. It removes the namespaces and the bridge and the freezer
cgroups slurmd made for its nodes (only those that did not exist before).

Used as a module by the tests (tests/e2e/test_slurm.py): LocalSlurm(...).up(),
.env(), .sbatch(), .job(), .wait_job(), .down().
"""
import argparse
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "..", "tests", "e2e"))
import test_nodes  # noqa: E402  (network-namespace nodes)

MARK = "CKPT_LOCAL_SLURM"
DAEMONS = {"munged": "/usr/sbin/munged", "slurmctld": "/usr/sbin/slurmctld", "slurmd": "/usr/sbin/slurmd"}
FREEZER = "/sys/fs/cgroup/freezer"
START_TIMEOUT = 60  # seconds for the cluster to come up
JOB_IDS = 100  # job ids of one cluster: FirstJobId .. FirstJobId + 99 (a cluster started a second later has the next ones)


class SlurmError(Exception):
    pass


def unavailable():
    """Why a local cluster cannot run here, or None."""
    if os.geteuid() != 0:
        return "a local SLURM cluster (munged, slurmctld, slurmd) needs root"
    missing = [p for p, path in DAEMONS.items() if not os.path.exists(path)]
    missing += [t for t in ("srun", "sbatch", "scontrol", "squeue", "sinfo") if not shutil.which(t)]
    if missing:
        return f"not installed: {', '.join(missing)} (slurm/testing/install.sh)"
    if not os.path.exists("/usr/lib/x86_64-linux-gnu/pmix2/lib/libpmix.so"):
        return "libpmix-dev is not installed (SLURM's pmix plugin loads its libpmix.so; slurm/testing/install.sh)"
    return test_nodes.unavailable()


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_until(cond, what, timeout=START_TIMEOUT, poll=0.05):
    deadline = time.time() + timeout
    while True:
        got = cond()
        if got:
            return got
        if time.time() > deadline:
            raise SlurmError(f"{what} within {timeout} s")
        time.sleep(poll)


def read_pid(path):
    try:
        with open(path) as f:
            return int(f.read().split()[0])
    except (OSError, ValueError, IndexError):
        return None


def marked_pids(mark):
    """Processes whose environment holds CKPT_LOCAL_SLURM=mark."""
    want = f"{MARK}={mark}".encode()
    found = []
    for d in os.listdir("/proc"):
        if not d.isdigit() or int(d) == os.getpid():
            continue
        try:
            with open(f"/proc/{d}/environ", "rb") as f:
                if want in f.read().split(b"\0"):
                    found.append(int(d))
        except OSError:
            pass
    return found


def pid_alive(pid):
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


class LocalSlurm:
    def __init__(self, state, nodes=2, loopback=False, cpus=4, grace=20, user_signal=True):
        self.state = os.path.abspath(state)
        self.count = 1 if loopback else nodes
        self.loopback = loopback
        self.cpus = cpus
        self.grace = grace
        self.user_signal = user_signal
        self.nodes = [f"n{k}" for k in range(1, self.count + 1)]
        self.net = None  # test_nodes.Cluster
        self.ctld_port = None
        self.made_cgroups = []
        self.first_job_id = 1
        self.started = False

    # ---- paths
    def path(self, *parts):
        return os.path.join(self.state, *parts)

    @property
    def conf(self):
        return self.path("etc", "slurm.conf")

    def env(self, base=None):
        """The environment for SLURM commands (and the jobs they submit) of this cluster."""
        env = dict(os.environ if base is None else base)
        env.update(SLURM_CONF=self.conf, **{MARK: self.state})
        return env

    def address(self, node):
        return "127.0.0.1" if self.loopback else self.net.address(node)

    # ---- commands
    def cmd(self, *args, check=True, timeout=30):
        r = subprocess.run(list(args), capture_output=True, text=True, env=self.env(), timeout=timeout)
        if check and r.returncode != 0:
            raise SlurmError(f"`{' '.join(args)}` exited {r.returncode}: {(r.stderr or r.stdout).strip()}")
        return r.stdout

    def sbatch(self, script, *options, env=None, cwd=None, prefix=()):
        """Submits a batch script (a path); returns the job id. prefix: a
        command that runs sbatch as another user (setpriv ... --)."""
        return self._submit([*options, script], env, cwd, prefix)

    def sbatch_wrap(self, command, *options, env=None, cwd=None):
        """Submits a job whose script is the shell command; returns the job id."""
        return self._submit([*options, "--wrap", command], env, cwd)

    def _submit(self, args, env, cwd, prefix=()):
        r = subprocess.run([*prefix, "sbatch", "--parsable", *args], capture_output=True, text=True, env=self.env(env), cwd=cwd, timeout=30)
        if r.returncode != 0:
            raise SlurmError(f"sbatch {' '.join(args)} exited {r.returncode}: {r.stderr.strip()}")
        return r.stdout.strip().split(";")[0]

    def job(self, job_id):
        """`scontrol show job` of job_id as a dict (empty once SLURM forgot it)."""
        r = subprocess.run(["scontrol", "-o", "show", "job", job_id], capture_output=True, text=True, env=self.env(), timeout=30)
        if r.returncode != 0:
            return {}
        fields = {}
        for m in re.finditer(r"(\w+(?::\w+)?)=(.*?)(?= \w+(?::\w+)?=|$)", r.stdout.strip()):
            fields[m.group(1)] = m.group(2)
        return fields

    def wait_job(self, job_id, cond, what, timeout=120):
        """Waits until cond(job fields) holds; returns the fields. A job that
        ends while it is waited for another state fails the wait at once."""
        deadline = time.time() + timeout
        last = {}
        while True:
            last = self.job(job_id) or last
            if cond(last):
                return last
            if time.time() > deadline:
                raise SlurmError(f"job {job_id}: no {what} within {timeout} s; last state {last.get('JobState')} "
                                 f"(Reason={last.get('Reason')}, Restarts={last.get('Restarts')})")
            time.sleep(0.1)

    # ---- up
    def up(self):
        why = unavailable()
        if why:
            raise SlurmError(why)
        if os.path.exists(self.path("cluster.json")):
            raise SlurmError(f"{self.state} already holds a cluster (local_slurm.py down --state {self.state} first)")
        for d in ("etc", "munge", "ctld", "log", "run", "spool", "tmp"):
            shutil.rmtree(self.path(d), ignore_errors=True)  # job ids start again at 1: no stale step sockets
            os.makedirs(self.path(d), exist_ok=True)
        os.chmod(self.state, 0o755)
        for n in self.nodes:
            os.makedirs(self.path("spool", n))
            os.makedirs(self.path("tmp", n))
        self.started = True
        self.save()  # from here on, down() can clean up whatever half came up
        if not self.loopback:
            self.net = test_nodes.Cluster(self.state, self.count)
            try:
                self.net.up()
            finally:
                self.save()
        self.ctld_port = free_port()
        self.first_job_id = int(time.time()) % 600000 * JOB_IDS + 1
        self.made_cgroups = [c for c in (f"{FREEZER}/slurm_{n}" for n in self.nodes) if not os.path.exists(c)]
        self.save()
        self.start_munge()
        self.write_config()
        self.start(["slurmctld", "-i"], "slurmctld")
        wait_until(lambda: subprocess.run(["scontrol", "ping"], capture_output=True, text=True, env=self.env()).stdout.count("UP"),
                   f"slurmctld did not answer `scontrol ping` (log: {self.path('log', 'slurmctld.log')})")
        for n in self.nodes:
            cmd = ["slurmd", "-N", n]
            if not self.loopback:
                # Each node has a /dev/shm of its own, gone with the node: the
                # shared-memory files of Open MPI ranks that were killed
                # (requeue, preemption) stay there, and the next cluster's jobs
                # have the same ids and host names, so the same file names.
                cmd = ["sh", "-c", 'mount -t tmpfs -o mode=1777,size=1g ckpt-node-shm /dev/shm && exec "$@"', "sh", *cmd]
            self.start(cmd if self.loopback else self.net.wrap(n, cmd), f"slurmd {n}")
        wait_until(self.all_idle, f"the nodes {self.nodes} were not all idle (logs: {self.path('log')})")
        return self

    def start_munge(self):
        key = self.path("munge", "munge.key")
        with open(key, "wb") as f:
            f.write(os.urandom(1024))
        os.chmod(key, 0o400)
        sock = self.path("munge", "munge.socket")
        self.start(["munged", "--force", "-S", sock, f"--key-file={key}", f"--pid-file={self.path('run', 'munged.pid')}",
                    f"--log-file={self.path('log', 'munged.log')}", f"--seed-file={self.path('munge', 'munged.seed')}"],
                   "munged")
        wait_until(lambda: os.path.exists(sock), f"munged did not create {sock}")

    def start(self, cmd, what):
        """Starts a daemon (it forks into the background and writes its pid file)."""
        r = subprocess.run(cmd, capture_output=True, text=True, env=self.env(), timeout=START_TIMEOUT)
        if r.returncode != 0:
            raise SlurmError(f"{what} did not start (exit {r.returncode}): {(r.stderr or r.stdout).strip()}")

    def nodes_state(self):
        out = subprocess.run(["sinfo", "-h", "-N", "-o", "%N %t"], capture_output=True, text=True, env=self.env()).stdout
        return dict(line.split() for line in out.splitlines() if len(line.split()) == 2)

    def all_idle(self):
        st = self.nodes_state()
        return all(st.get(n) == "idle" for n in self.nodes)

    def write_config(self):
        host = socket.gethostname().split(".")[0]
        ctl_addr = "127.0.0.1" if self.loopback else f"{self.net.prefix}.1"
        p = self.path
        lines = [
            f"ClusterName=ckpt{os.getpid()}",
            # Job ids of their own (not 1, 2, ... again in every cluster): what a
            # killed job leaves behind under its id is no later cluster's.
            f"FirstJobId={self.first_job_id}",
            f"SlurmctldHost={host}({ctl_addr})",
            f"SlurmctldPort={self.ctld_port}",
            "SlurmUser=root", "SlurmdUser=root",
            "AuthType=auth/munge", "CredType=cred/munge", f"AuthInfo=socket={p('munge', 'munge.socket')}",
            f"StateSaveLocation={p('ctld')}",
            f"SlurmdSpoolDir={p('spool', '%n')}", f"TmpFS={p('tmp', '%n')}",
            f"SlurmctldPidFile={p('run', 'slurmctld.pid')}", f"SlurmdPidFile={p('run', 'slurmd-%n.pid')}",
            f"SlurmctldLogFile={p('log', 'slurmctld.log')}", f"SlurmdLogFile={p('log', 'slurmd-%n.log')}",
            "SlurmctldDebug=info", "SlurmdDebug=info",
            "SlurmdParameters=config_overrides",  # a node may claim more CPUs than the machine's 2
            "ProctrackType=proctrack/cgroup", "TaskPlugin=task/none",
            "SelectType=select/cons_tres", "SelectTypeParameters=CR_CPU",
            "MpiDefault=pmix", "JobRequeue=1", "ReturnToService=2",
            "PreemptType=preempt/partition_prio", "PreemptMode=REQUEUE",
            "AccountingStorageType=accounting_storage/none", "JobCompType=jobcomp/none",
            "JobAcctGatherType=jobacct_gather/none", "PropagateResourceLimits=NONE",
            "KillWait=10", "InactiveLimit=0", "MinJobAge=600", "MailProg=/bin/true",
            # A job whose begin time passes waits for the next scheduling pass (60 s by default).
            "SchedulerParameters=sched_interval=1,bf_interval=1",
        ]
        if self.user_signal:
            lines.append("SlurmctldParameters=preempt_send_user_signal")
        if self.loopback:
            lines.append(f"NodeName=n1 NodeAddr=127.0.0.1 NodeHostname={host} Port={free_port()} CPUs={self.cpus} State=UNKNOWN")
        else:
            lines.append("SlurmdPort=6818")  # each node has its own network namespace
            for n in self.nodes:
                lines.append(f"NodeName={n} NodeAddr={self.net.address(n)} NodeHostname={n} CPUs={self.cpus} State=UNKNOWN")
        lines += [
            f"PartitionName=low Nodes=ALL Default=YES PriorityTier=1 PreemptMode=REQUEUE GraceTime={self.grace} MaxTime=INFINITE State=UP",
            "PartitionName=high Nodes=ALL PriorityTier=10 PreemptMode=OFF MaxTime=INFINITE State=UP",
        ]
        with open(self.conf, "w") as f:
            f.write("# written by slurm/testing/local_slurm.py\n" + "\n".join(lines) + "\n")
        with open(self.path("etc", "cgroup.conf"), "w") as f:
            f.write("CgroupPlugin=cgroup/v1\nCgroupAutomount=no\nConstrainCores=no\nConstrainRAMSpace=no\n")

    # ---- state kept for `down` in another process
    def save(self):
        s = {"count": self.count, "loopback": self.loopback, "cpus": self.cpus, "grace": self.grace,
             "user_signal": self.user_signal, "ctld_port": self.ctld_port, "made_cgroups": self.made_cgroups,
             "first_job_id": self.first_job_id}
        if self.net:
            s["net"] = {"bridge": self.net.bridge, "netns": self.net.netns, "veths": self.net.veths,
                        "prefix": self.net.prefix, "created": self.net.created, "made_netns_dir": self.net.made_netns_dir}
        tmp = self.path("cluster.json.tmp")
        with open(tmp, "w") as f:
            json.dump(s, f)
        os.replace(tmp, self.path("cluster.json"))

    @classmethod
    def load(cls, state):
        with open(os.path.join(state, "cluster.json")) as f:
            s = json.load(f)
        c = cls(state, s["count"], s["loopback"], s["cpus"], s["grace"], s["user_signal"])
        c.ctld_port, c.made_cgroups, c.first_job_id, c.started = s["ctld_port"], s["made_cgroups"], s["first_job_id"], True
        if "net" in s:
            n = s["net"]
            c.net = test_nodes.Cluster(c.state, c.count)
            c.net.bridge, c.net.netns, c.net.veths, c.net.prefix = n["bridge"], n["netns"], n["veths"], n["prefix"]
            c.net.created = [tuple(x) for x in n["created"]]
            c.net.made_netns_dir = n["made_netns_dir"]
        return c

    def daemon_pids(self):
        """The pids of the running munged, slurmctld and slurmds of this cluster."""
        marked = set(marked_pids(self.state))
        return [p for p in (read_pid(f) for f in self.pid_files()) if p in marked]

    def pid_files(self):
        return [self.path("run", f"slurmd-{n}.pid") for n in self.nodes] + [self.path("run", "slurmctld.pid"), self.path("run", "munged.pid")]

    # ---- down
    def down(self):
        """Stops everything up() started; returns the problems (empty when all went)."""
        if not self.started:
            return []
        problems = []
        if os.path.exists(self.conf) and read_pid(self.path("run", "slurmctld.pid")):
            try:
                jobs = self.cmd("squeue", "-h", "-o", "%i", check=False).split()
                if jobs:
                    self.cmd("scancel", *jobs, check=False)
                    wait_until(lambda: not self.cmd("squeue", "-h", "-o", "%i", check=False).split(),
                               "squeue did not empty after scancel", timeout=30)
            except (SlurmError, subprocess.TimeoutExpired) as e:
                problems.append(str(e))
        # A pid file's pid is ours only while the process carries our mark.
        daemons = self.daemon_pids()
        for pid in daemons:
            os.kill(pid, signal.SIGTERM)
        try:
            wait_until(lambda: not [p for p in daemons if pid_alive(p)], "the daemons did not end after SIGTERM", timeout=20)
        except SlurmError as e:
            problems.append(str(e))
        # slurmstepds and job processes that outlived their daemons.
        stray = marked_pids(self.state)
        for pid in stray:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        try:
            wait_until(lambda: not [p for p in marked_pids(self.state) if pid_alive(p)], "marked processes survived SIGKILL", timeout=20)
        except SlurmError as e:
            problems.append(f"{e}: {marked_pids(self.state)}")
        reap(daemons + stray)
        if self.net:
            problems += self.net.down()
        for top in (f"{FREEZER}/slurm_{n}" for n in self.nodes):
            problems += remove_cgroups(top, lambda j: self.first_job_id <= j < self.first_job_id + JOB_IDS, top in self.made_cgroups)
        self.started = False
        try:
            os.unlink(self.path("cluster.json"))
        except OSError:
            pass
        return problems


def reap(pids):
    """Waits for those of pids that are our children (a subreaper inherits the daemons)."""
    for pid in pids:
        try:
            os.waitpid(pid, os.WNOHANG)
        except ChildProcessError:
            pass


def remove_cgroups(top, ours, made_top):
    """Removes what is left of this cluster's jobs' cgroups below top
    (slurm_nK/uid_U/job_J/...: ours(J) says which jobs are this cluster's),
    deepest first; then the levels above them, if this cluster made top and
    no other cluster's jobs (same node names) use them."""
    if not os.path.isdir(top):
        return []
    problems = []
    for root, _, _ in sorted(os.walk(top), key=lambda x: -x[0].count("/")):
        m = re.search(r"/job_(\d+)(/|$)", root[len(top):])
        if m and ours(int(m.group(1))):
            try:
                os.rmdir(root)
            except OSError as e:
                problems.append(f"cannot remove cgroup {root}: {e.strerror}")
        elif not m and made_top:
            try:
                os.rmdir(root)
            except OSError:
                pass  # another cluster's jobs are in it
    return problems


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("action", choices=["up", "down", "env"])
    ap.add_argument("--state", required=True, help="the cluster's state directory")
    ap.add_argument("--nodes", type=int, default=2, help="network-namespace nodes n1..nN (default 2)")
    ap.add_argument("--loopback", action="store_true", help="one node n1 on 127.0.0.1, no namespaces")
    ap.add_argument("--cpus", type=int, default=4, help="CPUs each node claims (default 4)")
    ap.add_argument("--grace", type=int, default=20, help="GraceTime of the preemptable partition `low` (s)")
    ap.add_argument("--no-user-signal", action="store_true", help="without SlurmctldParameters=preempt_send_user_signal")
    a = ap.parse_args()
    try:
        if a.action == "up":
            os.makedirs(a.state, exist_ok=True)
            c = LocalSlurm(a.state, a.nodes, a.loopback, a.cpus, a.grace, not a.no_user_signal)
            try:
                c.up()
            except (SlurmError, subprocess.SubprocessError, OSError) as e:
                problems = c.down()
                raise SlurmError(f"{e}" + ("".join(f"\n  (and: {p})" for p in problems)))
            print(f"# local SLURM cluster up: nodes {', '.join(c.nodes)}; stop it with: {sys.argv[0]} down --state {c.state}")
        if a.action in ("up", "env"):
            c = LocalSlurm.load(a.state)
            print(f"export SLURM_CONF={c.conf}\nexport {MARK}={c.state}")
        if a.action == "down":
            if not os.path.exists(os.path.join(a.state, "cluster.json")):
                print(f"local_slurm: no cluster in {a.state}", file=sys.stderr)
                return 0
            problems = LocalSlurm.load(a.state).down()
            if problems:
                print("local_slurm: could not stop everything:\n  " + "\n  ".join(problems), file=sys.stderr)
                return 1
    except (SlurmError, OSError, subprocess.SubprocessError) as e:
        print(f"local_slurm: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
