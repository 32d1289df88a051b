#!/usr/bin/env python3
"""End-to-end tests of the checkpoint/restore engine on realistic programs.

The programs (tests/e2e/apps, built as app_<name>) are deterministic: each
prints progress lines to stdout (every line unique, it names its step),
writes output files, and ends with a line holding a full-precision checksum.
Every test first runs the program uninterrupted, without the engine: that is
the reference (stdout lines and output files).

  test_apps.py --bin BUILD [--compression none|zstd] [--user USER] scenarios APP
      runs APP under ckpt-run and checkpoints it at several moments:
        early      `checkpoint --stop` as soon as the program printed its
                   first line (threads / children still being created)
        stop       `checkpoint --stop` at 30 %, restore, then restore the same
                   checkpoint a second time: both restored runs must print
                   the same bytes and leave the same files; the checkpoint
                   must pass ckpt-info
        kill       `checkpoint` (and continue) at 50 %, then SIGKILL of
                   ckpt-run; every process of the job must die with it
        continue   `checkpoint` at 20 %, then `checkpoint --stop` at 60 %;
                   restore the newest, then the older one explicitly
        chain      `checkpoint --stop` at 25 %, restore; checkpoint the
                   restored run at 65 % and SIGKILL it; restore that
        during     `checkpoint` at 20 %, then SIGKILL of ckpt-run while it
                   dumps a second checkpoint at 50 %: ckpt-ctl says the job went
                   away, latest still names the first (unless the commit won),
                   the restore resumes from it, and the restored run's next
                   checkpoint clears the dead one's partial directory
        interval   ckpt-run --interval 1 --keep 2: after the first periodic
                   checkpoint and some progress, SIGKILL (a preemption, maybe
                   in the middle of a checkpoint); restore the newest
      The stdout of the original run and of each restored run must be
      contiguous pieces of the reference, in order: a restored run after
      --stop starts exactly where the stopped run ended; after a
      checkpoint-and-kill it starts at or before the point where the killed
      run ended (lines printed after the checkpoint come again) and after the
      line that was waited for before the checkpoint. The last piece ends
      with the reference's final line, ckpt-run exits 0, the output files
      equal the reference's byte for byte and no process is left behind.

  test_apps.py --bin BUILD failure CASE
      damaged_image            a byte flipped in the middle of the newest
                               checkpoint's rank-00000.h5
      deleted_file             a file the program had open was deleted
      no_checkpoint            --restart with nothing (or a bad path) to restore
      refused_socket           a checkpoint of a program holding a socketpair
      ended_job                ckpt-ctl for a job that has ended (or was killed)
      second_launcher          a second ckpt-run on the same --ckpt-dir
      full_disk                the checkpoint directory on a full 1 MiB tmpfs
      full_disk_message        ... and ckpt-ctl's message says the disk is full
      restore_beside_original  restore a copy of a checkpoint while the
                               original goes on (private mount namespace)

Nothing waits a fixed time: every step waits for a line of output, a process
exit or a state visible in /proc, with a generous deadline.
Exit status 0 when everything passed (or was skipped with a reason).
"""
import argparse
import ctypes
import os
import pwd
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time

TIMEOUT = 240  # seconds for any single wait


class Failure(Exception):
    pass


class Skip(Exception):
    pass


def check(cond, message):
    if not cond:
        raise Failure(message)


# ---- processes in /proc ------------------------------------------------------


def proc_stat(pid):
    """(ppid, state, starttime) of a process, or None when it is gone."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            data = f.read().decode(errors="replace")
    except (FileNotFoundError, ProcessLookupError):
        return None
    rest = data[data.rindex(")") + 2:].split()
    return int(rest[1]), rest[0], int(rest[19])


def proc_cmdline(pid):
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return f.read().replace(b"\0", b" ").decode(errors="replace").strip()
    except (FileNotFoundError, ProcessLookupError):
        return ""


def all_pids():
    return [int(d) for d in os.listdir("/proc") if d.isdigit()]


def descendants(root):
    """Processes below root: {pid: (starttime, cmdline)}."""
    children = {}
    for pid in all_pids():
        st = proc_stat(pid)
        if st:
            children.setdefault(st[0], []).append((pid, st[2]))
    found, todo = {}, [root]
    while todo:
        for pid, start in children.get(todo.pop(), []):
            if pid not in found:
                found[pid] = (start, proc_cmdline(pid))
                todo.append(pid)
    return found


def alive(pid, start):
    st = proc_stat(pid)
    return st is not None and st[2] == start and st[1] != "Z"


# ---- one program run with its stdout collected line by line ------------------


class Run:
    def __init__(self, harness, cmd, label, cwd, env=None):
        self.label = label
        self.cmd = cmd
        self.err_path = os.path.join(harness.logs, f"{label}.stderr")
        self._err = open(self.err_path, "wb")
        self._out = open(os.path.join(harness.logs, f"{label}.stdout"), "wb")  # as read, for a kept work directory
        self.proc = subprocess.Popen(harness.user + cmd, stdout=subprocess.PIPE, stderr=self._err, cwd=cwd,
                                     env=harness.env if env is None else env)
        harness.runs.append(self)
        self.lines = []
        self.eof = False
        self.cond = threading.Condition()
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self):
        for line in iter(self.proc.stdout.readline, b""):
            self._out.write(line)
            with self.cond:
                self.lines.append(line)
                self.cond.notify_all()
        self._out.close()
        with self.cond:
            self.eof = True
            self.cond.notify_all()

    @property
    def pid(self):
        return self.proc.pid

    def wait_line(self, line):
        """Waits until the program printed `line` (bytes); returns its index."""
        deadline = time.time() + TIMEOUT
        with self.cond:
            while True:
                if line in self.lines:
                    return self.lines.index(line)
                if self.eof:
                    raise Failure(f"{self.label}: ended without printing {line!r} "
                                  f"(last lines {self.lines[-3:]!r}){self.stderr_tail()}")
                left = deadline - time.time()
                if left <= 0:
                    raise Failure(f"{self.label}: no {line!r} within {TIMEOUT} s")
                self.cond.wait(left)

    def finish(self):
        """Waits for the end of the program and of its output; returns the exit status."""
        try:
            rc = self.proc.wait(timeout=TIMEOUT)
        except subprocess.TimeoutExpired:
            raise Failure(f"{self.label}: still running after {TIMEOUT} s{self.stderr_tail()}")
        self.reader.join(TIMEOUT)
        check(not self.reader.is_alive(), f"{self.label}: ended, but its stdout stays open (something holds it)")
        self._err.close()
        return rc

    def stderr(self):
        if not self._err.closed:
            self._err.flush()
        with open(self.err_path, errors="replace") as f:
            return f.read()

    def stderr_tail(self):
        text = self.stderr().strip()
        return f"\n--- stderr of {self.label} ---\n{text[-2000:]}" if text else ""


# ---- the harness -------------------------------------------------------------


TIMING_OPTIONS = ("--pace", "--lag", "--stall")  # of the tests/mpi victims: timing only, never output


def untimed(args):
    """A tests/mpi victim's arguments without its timing options (see
    tests/mpi/mpi_victim.h): its reference runs at full speed and prints the
    same lines (test_mpi.py --native-only checks that it does)."""
    out, skip = [], False
    for a in args:
        if skip:
            skip = False
        elif a in TIMING_OPTIONS:
            skip = True
        else:
            out.append(a)
    return out


def app_args(name, wdir):
    """Command-line arguments of an app and the output files it writes (in wdir)."""
    outputs = {"heat": ["heat.log", "heat.grid"], "pipeline": ["records.txt"], "memhog": ["memhog.log"],
               "sockcalc": ["items.txt"]}[name]
    return [os.path.join(wdir, o) for o in outputs], outputs


sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import staging  # noqa: E402

class Harness:
    def __init__(self, a):
        self.bin = os.path.abspath(a.bin)
        self.compression = a.compression
        self.user = []
        self.user_name = a.user
        self.uid = None
        self.staged = None
        self.work = tempfile.mkdtemp(prefix="ckpt-apps-")
        os.chmod(self.work, 0o755)
        self.logs = os.path.join(self.work, "logs")
        os.mkdir(self.logs)
        if a.user:
            pw = pwd.getpwnam(a.user)
            self.uid, self.gid = pw.pw_uid, pw.pw_gid
            self.user = ["setpriv", f"--reuid={pw.pw_uid}", f"--regid={pw.pw_gid}", "--clear-groups", "--"]
            self.bin = staging.stage(self.bin, ["tests/e2e/apps", "tests/mpi", "lib/ckpt-mpi"])
            self.staged = self.bin
        self.env = dict(os.environ)
        self.runs = []
        self.refs = {}
        self.mounts = []
        self.orphans = {}  # pid: start time
        # Orphans of a killed ckpt-run come to us, so that we see them go.
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(36, 1, 0, 0, 0)  # PR_SET_CHILD_SUBREAPER

    # -- paths and commands
    def exe(self, app):
        return os.path.join(self.bin, "tests", "e2e", "apps", f"app_{app}")

    def tool(self, rel):
        return os.path.join(self.bin, rel)

    def mkdir(self, *parts):
        d = os.path.join(self.work, *parts)
        os.makedirs(d, exist_ok=True)
        if self.uid is not None:
            os.chown(d, self.uid, self.gid)
        return d

    def mode(self):
        return self.compression + (f", as {self.user_name}" if self.user_name else "")

    def comp(self):
        return ["--compression", self.compression]

    # -- reference
    def reference(self, app, extra=()):
        return self.references(app, [extra])[0]

    def references(self, app, extras):
        """The reference of app with each argument tuple of extras; those not
        run yet run side by side."""
        started = {}
        for extra in extras:
            key = (app, tuple(extra))
            if key in self.refs or key in started:
                continue
            label = f"ref-{app}-{len(self.refs) + len(started)}"
            wdir = self.mkdir(label)
            paths, names = app_args(app, wdir)
            started[key] = (Run(self, [self.exe(app)] + paths + list(extra), label, wdir), paths, names)
        for key, (r, paths, names) in started.items():
            rc = r.finish()
            check(rc == 0, f"reference run of {app} exited {rc}{r.stderr_tail()}")
            check(len(r.lines) >= 10, f"reference run of {app} printed only {len(r.lines)} lines")
            check(len(set(r.lines)) == len(r.lines), f"reference run of {app}: lines are not unique")
            files = {}
            for n, p in zip(names, paths):
                with open(p, "rb") as f:
                    files[n] = f.read()
            self.refs[key] = (r.lines, files)
        return [self.refs[(app, tuple(extra))] for extra in extras]

    # -- engine commands
    def launch(self, app, wdir, ckdir, label, extra=(), compression=None, options=()):
        paths, _ = app_args(app, wdir)
        cmd = [self.tool("agent/ckpt-run"), "--ckpt-dir", ckdir, "--compression", compression or self.compression,
               *options, "--", self.exe(app)] + paths + list(extra)
        return Run(self, cmd, label, wdir)

    def restart(self, ckdir, label, path=None, cwd=None, prefix=()):
        opt = "--restart" if path is None else f"--restart={path}"
        cmd = list(prefix) + [self.tool("agent/ckpt-run"), "--ckpt-dir", ckdir, opt] + self.comp()
        return Run(self, cmd, label, cwd or self.work)

    def ctl(self, ckdir, *args):
        cmd = self.user + [self.tool("coordinator/ckpt-ctl"), "--ckpt-dir", ckdir] + list(args)
        return subprocess.run(cmd, capture_output=True, text=True, timeout=TIMEOUT, cwd=self.work, env=self.env)

    def checkpoint(self, ckdir, stop=False):
        r = self.ctl(ckdir, "checkpoint", *(["--stop"] if stop else []))
        check(r.returncode == 0, f"ckpt-ctl checkpoint{' --stop' if stop else ''} exited {r.returncode}: {r.stderr.strip()}")
        return r.stdout.strip()

    def info(self, path):
        r = subprocess.run([self.tool("image/ckpt-info"), path], capture_output=True, text=True, timeout=TIMEOUT)
        return r

    # -- processes
    def reap_orphans(self):
        """Reaps the processes of killed jobs that came to us as subreaper
        (only those: the exit status of anything we started is its own)."""
        me = os.getpid()
        for pid, start in list(self.orphans.items()):
            st = proc_stat(pid)
            if st is None or st[2] != start:
                del self.orphans[pid]
            elif st[0] == me and st[1] == "Z":
                try:
                    os.waitpid(pid, os.WNOHANG)
                except ChildProcessError:
                    pass
                del self.orphans[pid]

    def leftovers(self):
        """Live processes whose command line names this test's directory."""
        me = os.getpid()
        found = []
        for pid in all_pids():
            if pid == me:
                continue
            cmd = proc_cmdline(pid)
            st = proc_stat(pid)
            if self.work in cmd and st and st[1] != "Z":
                found.append(f"{pid} [{st[1]}] {cmd}")
        return found

    def expect_no_leftovers(self, what):
        deadline = time.time() + 30
        while True:
            self.reap_orphans()
            left = self.leftovers()
            if not left:
                return
            if time.time() > deadline:
                raise Failure(f"{what}: processes left behind:\n  " + "\n  ".join(left))
            time.sleep(0.05)

    def kill_launcher(self, run, ckdir):
        """SIGKILL of ckpt-run alone; the whole job must die with it."""
        job = descendants(run.pid)
        check(job, f"{run.label}: ckpt-run has no descendants to kill")
        self.orphans.update({pid: start for pid, (start, _) in job.items()})
        os.kill(run.pid, signal.SIGKILL)
        rc = run.finish()
        check(rc == -signal.SIGKILL, f"{run.label}: ckpt-run ended with {rc} instead of being killed")
        deadline = time.time() + 30
        while True:
            self.reap_orphans()
            survivors = [f"{pid} {cmd}" for pid, (start, cmd) in job.items() if alive(pid, start)]
            if not survivors:
                break
            if time.time() > deadline:
                raise Failure(f"{run.label}: after SIGKILL of ckpt-run, processes of the job survive:\n  " +
                              "\n  ".join(survivors))
            time.sleep(0.05)
        self.expect_no_leftovers(run.label)

    def kill_runs(self):
        """Kills whatever a failed test left running."""
        for r in self.runs:
            if r.proc.poll() is None:
                for pid, (start, _) in descendants(r.pid).items():
                    if alive(pid, start):
                        try:
                            os.kill(pid, signal.SIGKILL)
                        except ProcessLookupError:
                            pass
                r.proc.kill()
                r.proc.wait()
        for line in self.leftovers():
            try:
                os.kill(int(line.split()[0]), signal.SIGKILL)
            except (ProcessLookupError, ValueError):
                pass
        self.reap_orphans()

    def cleanup(self, remove=True):
        self.kill_runs()
        for m in reversed(self.mounts):
            subprocess.run(["umount", "-l", m], capture_output=True)
        if remove:
            shutil.rmtree(self.work, ignore_errors=True)
        if self.staged:
            shutil.rmtree(self.staged, ignore_errors=True)


# ---- comparisons -------------------------------------------------------------


def show(lines, i):
    return repr(lines[i]) if 0 <= i < len(lines) else "(nothing)"


def check_pieces(ref, pieces, what):
    """pieces: [(run, how it ended: 'stop' | 'kill' | 'end' | 'aborted', min_start)] in order.
    min_start: the checkpoint was taken after the line with this index was seen.
    'aborted': a run of a job that mpirun aborted (one of its ranks died): its
    lines are not compared, mpirun may cut lines of a job it aborts in two
    (seen with plain mpirun and no ckpt-run)."""
    prev_end = 0
    for i, (run, ended, min_start) in enumerate(pieces):
        if ended == "aborted":
            check(i == 0, f"{what}: internal: only the first piece may be an aborted run")
            prev_end = len(ref)
            continue
        lines = run.lines
        if i == 0:
            start = 0
        elif not lines:
            check(pieces[i - 1][1] != "aborted", f"{what}: {run.label} printed nothing (after an aborted run)")
            start = prev_end if pieces[i - 1][1] == "stop" else None
        else:
            check(lines[0] in ref, f"{what}: {run.label} printed {lines[0]!r}, which the reference never printed")
            start = ref.index(lines[0])
        if start is not None:
            if i > 0 and pieces[i - 1][1] == "stop":
                check(start == prev_end,
                      f"{what}: {run.label} resumed at reference line {start} ({show(ref, start)}) but the stopped run "
                      f"ended after line {prev_end - 1} ({show(ref, prev_end - 1)})")
            if i > 0 and pieces[i - 1][1] == "kill":
                check(start <= prev_end,
                      f"{what}: {run.label} resumed at reference line {start}: lines {prev_end}..{start - 1} were never "
                      f"printed (the killed run ended after line {prev_end - 1})")
            if i > 0:
                check(start >= min_start,
                      f"{what}: {run.label} resumed at reference line {start} ({show(ref, start)}), before line "
                      f"{min_start - 1} that had been printed when the checkpoint was requested")
            for k, line in enumerate(lines):
                check(start + k < len(ref) and ref[start + k] == line,
                      f"{what}: {run.label} line {k}: {line!r}, reference line {start + k}: {show(ref, start + k)}")
            prev_end = start + len(lines)
    last_run, last_end, _ = pieces[-1]
    check(last_end == "end", f"{what}: internal: the last piece must run to the end")
    check(prev_end == len(ref),
          f"{what}: the output ends at reference line {prev_end} of {len(ref)}; last line {show(last_run.lines, len(last_run.lines) - 1)}")
    final = last_run.lines[-1] if last_run.lines else (pieces[-2][0].lines[-1] if len(pieces) > 1 and pieces[-2][0].lines else b"")
    check(final == ref[-1], f"{what}: final line {final!r}, reference {ref[-1]!r}")


def check_files(ref_files, wdir, what):
    for name, want in ref_files.items():
        path = os.path.join(wdir, name)
        check(os.path.exists(path), f"{what}: output file {path} is missing")
        with open(path, "rb") as f:
            got = f.read()
        if got != want:
            first = next((i for i in range(min(len(got), len(want))) if got[i] != want[i]), min(len(got), len(want)))
            raise Failure(f"{what}: output file {name}: {len(got)} bytes, reference {len(want)} bytes, "
                          f"first difference at byte {first}")


def expect_exit(run, want, what):
    rc = run.finish()
    check(rc == want, f"{what}: {run.label} exited {rc}, expected {want}{run.stderr_tail()}")


def line_at(ref, fraction):
    return ref[max(1, min(len(ref) - 3, int(len(ref) * fraction)))]


# ---- scenarios ---------------------------------------------------------------


def scenario_early(h, app, ref, ref_files):
    wdir = h.mkdir("early")
    ck = os.path.join(wdir, "ckpt")
    r = h.launch(app, wdir, ck, "early-run")
    r.wait_line(ref[0])
    h.checkpoint(ck, stop=True)
    expect_exit(r, 75, "early")
    h.expect_no_leftovers("early: after checkpoint --stop")
    s = h.restart(ck, "early-restart")
    expect_exit(s, 0, "early")
    check_pieces(ref, [(r, "stop", 0), (s, "end", 1)], "early")
    check_files(ref_files, wdir, "early")
    h.expect_no_leftovers("early: at the end")


def scenario_stop(h, app, ref, ref_files):
    wdir = h.mkdir("stop")
    ck = os.path.join(wdir, "ckpt")
    r = h.launch(app, wdir, ck, "stop-run")
    seen = r.wait_line(line_at(ref, 0.3))
    h.checkpoint(ck, stop=True)
    expect_exit(r, 75, "stop")
    h.expect_no_leftovers("stop: after checkpoint --stop")
    info = h.info(os.path.join(ck, "latest"))
    check(info.returncode == 0 and "checksums   OK" in info.stdout,
          f"stop: ckpt-info on the checkpoint: exit {info.returncode}\n{info.stdout}{info.stderr}")
    s1 = h.restart(ck, "stop-restart1")
    expect_exit(s1, 0, "stop")
    check_pieces(ref, [(r, "stop", 0), (s1, "end", seen + 1)], "stop, first restore")
    check_files(ref_files, wdir, "stop, first restore")
    h.expect_no_leftovers("stop: after the first restore")
    # The same checkpoint again (its files are cut back to their size then).
    s2 = h.restart(ck, "stop-restart2", path=os.path.join(ck, "ckpt-000001"))
    expect_exit(s2, 0, "stop, second restore")
    check(s2.lines == s1.lines, f"stop: two restores of the same checkpoint printed different output "
                                f"({len(s1.lines)} and {len(s2.lines)} lines)")
    check_files(ref_files, wdir, "stop, second restore")
    h.expect_no_leftovers("stop: after the second restore")


def scenario_kill(h, app, ref, ref_files):
    wdir = h.mkdir("kill")
    ck = os.path.join(wdir, "ckpt")
    r = h.launch(app, wdir, ck, "kill-run")
    seen = r.wait_line(line_at(ref, 0.5))
    h.checkpoint(ck)
    h.kill_launcher(r, ck)
    s = h.restart(ck, "kill-restart")
    expect_exit(s, 0, "kill")
    check_pieces(ref, [(r, "kill", 0), (s, "end", seen + 1)], "kill")
    check_files(ref_files, wdir, "kill")
    h.expect_no_leftovers("kill: at the end")


def scenario_continue(h, app, ref, ref_files):
    wdir = h.mkdir("continue")
    ck = os.path.join(wdir, "ckpt")
    r = h.launch(app, wdir, ck, "continue-run")
    seen1 = r.wait_line(line_at(ref, 0.2))
    first = h.checkpoint(ck)
    seen2 = r.wait_line(line_at(ref, 0.6))
    second = h.checkpoint(ck, stop=True)
    check(first.startswith(os.path.join(ck, "ckpt-000001")) and second.startswith(os.path.join(ck, "ckpt-000002")),
          f"continue: unexpected checkpoint names: {first!r}, {second!r}")
    expect_exit(r, 75, "continue")
    h.expect_no_leftovers("continue: after checkpoint --stop")
    s = h.restart(ck, "continue-restart-newest")
    expect_exit(s, 0, "continue")
    check_pieces(ref, [(r, "stop", 0), (s, "end", seen2 + 1)], "continue, newest checkpoint")
    check_files(ref_files, wdir, "continue, newest checkpoint")
    # The older checkpoint, taken while the program went on.
    o = h.restart(ck, "continue-restart-older", path=os.path.join(ck, "ckpt-000001"))
    expect_exit(o, 0, "continue, older checkpoint")
    check_pieces(ref, [(r, "kill", 0), (o, "end", seen1 + 1)], "continue, older checkpoint")
    check(len(o.lines) > len(s.lines), "continue: the older checkpoint resumed later than the newer one")
    check_files(ref_files, wdir, "continue, older checkpoint")
    h.expect_no_leftovers("continue: at the end")


def scenario_chain(h, app, ref, ref_files):
    wdir = h.mkdir("chain")
    ck = os.path.join(wdir, "ckpt")
    r1 = h.launch(app, wdir, ck, "chain-run")
    seen1 = r1.wait_line(line_at(ref, 0.25))
    h.checkpoint(ck, stop=True)
    expect_exit(r1, 75, "chain")
    r2 = h.restart(ck, "chain-restart1")
    target = line_at(ref, 0.65)
    r2.wait_line(target)
    seen2 = ref.index(target)
    h.checkpoint(ck)
    h.kill_launcher(r2, ck)
    r3 = h.restart(ck, "chain-restart2")
    expect_exit(r3, 0, "chain")
    check_pieces(ref, [(r1, "stop", 0), (r2, "kill", seen1 + 1), (r3, "end", seen2 + 1)], "chain")
    check_files(ref_files, wdir, "chain")
    h.expect_no_leftovers("chain: at the end")


def scenario_kill_during(h, app, ref, ref_files):
    wdir = h.mkdir("during")
    ck = os.path.join(wdir, "ckpt")
    r = h.launch(app, wdir, ck, "during-run")
    seen = r.wait_line(line_at(ref, 0.2))
    h.checkpoint(ck)
    r.wait_line(line_at(ref, 0.5))
    # A second checkpoint; ckpt-run is killed while it dumps the processes.
    ctl = subprocess.Popen(h.user + [h.tool("coordinator/ckpt-ctl"), "--ckpt-dir", ck, "checkpoint"],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=h.work, env=h.env)
    progress = []
    for line in ctl.stderr:
        progress.append(line)
        if "dumping process" in line:
            break
    check(progress and "dumping process" in progress[-1], f"during: ckpt-ctl never said it was dumping: {progress!r}")
    h.kill_launcher(r, ck)
    try:
        out, err = ctl.communicate(timeout=TIMEOUT)
    except subprocess.TimeoutExpired:
        ctl.kill()
        raise Failure("during: ckpt-ctl hangs after its job was killed")
    latest = os.readlink(os.path.join(ck, "latest"))
    if ctl.returncode == 0:  # the commit won the race with SIGKILL
        check(latest == "ckpt-000002", f"during: ckpt-ctl reported a commit but latest is {latest} (ckpt-ctl: {progress!r} {out!r} {err!r})")
    else:
        # The coordinator dies with the launcher, or first sees the rank go.
        reason_given = any(w in err for w in ("went away", "has ended", "out of reach"))
        check(ctl.returncode == 1 and reason_given, f"during: ckpt-ctl exited {ctl.returncode}: {err.strip()}")
        # (ckpt-000002 only if the commit completed just before the kill.)
        check(latest in ("ckpt-000001", "ckpt-000002"), f"during: an interrupted checkpoint moved latest to {latest}")
    committed = sorted(e for e in os.listdir(ck) if e.startswith("ckpt-") and not e.endswith(".partial"))
    check(committed[-1] == latest, f"during: latest is {latest} but the committed checkpoints are {committed}")
    info = h.info(os.path.join(ck, "latest"))
    check(info.returncode == 0, f"during: ckpt-info on latest: exit {info.returncode}\n{info.stdout}{info.stderr}")
    s = h.restart(ck, "during-restart")
    # The next checkpoint clears what the killed one left behind. (With
    # --stop: the ranks stay frozen to its end, so the job cannot end, and
    # its coordinator with it, while the checkpoint commits.)
    at = line_at(ref, 0.75)
    s.wait_line(at)
    newest = os.path.basename(h.checkpoint(ck, stop=True).split()[0])
    left = sorted(os.listdir(ck))
    check(not [e for e in left if e.endswith(".partial")], f"during: the next checkpoint left the dead one's partial: {left}")
    check(os.readlink(os.path.join(ck, "latest")) == newest, f"during: latest is not {newest}: {left}")
    expect_exit(s, 75, "during")
    s2 = h.restart(ck, "during-restart2")
    expect_exit(s2, 0, "during")
    check_pieces(ref, [(r, "kill", 0), (s, "stop", seen + 1), (s2, "end", ref.index(at) + 1)], "during")
    check_files(ref_files, wdir, "during")
    h.expect_no_leftovers("during: at the end")


def scenario_interval(h, app, ref, ref_files):
    wdir = h.mkdir("interval")
    ck = os.path.join(wdir, "ckpt")
    r = h.launch(app, wdir, ck, "interval-run", options=["--interval", "1", "--keep", "2"])
    # Wait for the first periodic checkpoint, then for some progress after it.
    deadline = time.time() + TIMEOUT
    while not os.path.islink(os.path.join(ck, "latest")):
        check(r.proc.poll() is None, f"interval: the program ended before the first periodic checkpoint{r.stderr_tail()}")
        check(time.time() < deadline, f"interval: no periodic checkpoint within {TIMEOUT} s")
        time.sleep(0.02)
    with r.cond:
        printed = len(r.lines)
    r.wait_line(ref[min(printed + 1, len(ref) - 2)])
    # Preempted: killed, maybe in the middle of the next periodic checkpoint.
    h.kill_launcher(r, ck)
    committed = sorted(e for e in os.listdir(ck) if e.startswith("ckpt-") and not e.endswith(".partial"))
    check(1 <= len(committed) <= 2, f"interval: --keep 2 but the directory holds {committed}")
    check(os.readlink(os.path.join(ck, "latest")) == committed[-1], f"interval: latest is not the newest of {committed}")
    s = h.restart(ck, "interval-restart")
    expect_exit(s, 0, "interval")
    check_pieces(ref, [(r, "kill", 0), (s, "end", 1)], "interval")
    check_files(ref_files, wdir, "interval")
    h.expect_no_leftovers("interval: at the end")


SCENARIOS = [("early", scenario_early), ("stop", scenario_stop), ("kill", scenario_kill),
             ("continue", scenario_continue), ("chain", scenario_chain), ("during", scenario_kill_during),
             ("interval", scenario_interval)]


def run_scenarios(h, app, only):
    ref, ref_files = h.reference(app)
    failed = 0
    for name, fn in SCENARIOS:
        if only and name not in only:
            continue
        t0 = time.time()
        try:
            fn(h, app, ref, ref_files)
            print(f"PASS {app} {name} ({h.mode()}, {time.time() - t0:.1f} s)", flush=True)
        except (Failure, subprocess.TimeoutExpired) as e:
            failed += 1
            print(f"FAIL {app} {name} ({h.mode()}): {e}", flush=True)
            for r in h.runs:
                if r.label.startswith(name):
                    tail = r.stderr_tail()
                    if tail and tail not in str(e):
                        print(tail)
            h.kill_runs()
    return failed


# ---- failure paths -------------------------------------------------------------


def stopped_checkpoint(h, app, name, fraction=0.3, extra=()):
    """Runs app under ckpt-run and stops it after a checkpoint at `fraction`."""
    ref, ref_files = h.reference(app, extra)
    wdir = h.mkdir(name)
    ck = os.path.join(wdir, "ckpt")
    r = h.launch(app, wdir, ck, f"{name}-run", extra)
    r.wait_line(line_at(ref, fraction))
    h.checkpoint(ck, stop=True)
    expect_exit(r, 75, name)
    h.expect_no_leftovers(f"{name}: after checkpoint --stop")
    return wdir, ck, r, ref, ref_files


def failed_restore(h, ck, label, must_name, path=None):
    """A restore that must fail: non-zero, saying why (naming must_name), nothing left."""
    s = h.restart(ck, label, path=path)
    rc = s.finish()
    err = s.stderr()
    check(rc != 0, f"{label}: ckpt-run --restart succeeded (exit 0) where it must fail")
    check(rc != 75 and rc < 128, f"{label}: ckpt-run --restart exit {rc}, expected an error status")
    for m in must_name:
        check(m in err, f"{label}: the error does not name {m!r}:\n{err.strip()}")
    check(not s.lines, f"{label}: the failed restore printed program output {s.lines[:3]!r}")
    h.expect_no_leftovers(label)
    return err


def failure_damaged_image(h):
    ref, ref_files = h.reference("heat")
    wdir = h.mkdir("damaged")
    ck = os.path.join(wdir, "ckpt")
    r = h.launch("heat", wdir, ck, "damaged-run")
    seen1 = r.wait_line(line_at(ref, 0.2))
    h.checkpoint(ck)
    r.wait_line(line_at(ref, 0.4))
    h.checkpoint(ck, stop=True)
    expect_exit(r, 75, "damaged")
    # One byte flipped in the middle of the newest checkpoint's rank file.
    rank = os.path.join(ck, "ckpt-000002", "rank-00000.h5")
    size = os.path.getsize(rank)
    with open(rank, "r+b") as f:
        f.seek(size // 2)
        b = f.read(1)
        f.seek(size // 2)
        f.write(bytes([b[0] ^ 0x5a]))
    info = h.info(os.path.join(ck, "ckpt-000002"))
    check(info.returncode != 0 and rank in info.stdout + info.stderr and "page data" in info.stdout + info.stderr,
          f"damaged: ckpt-info did not report damaged page data in {rank}: exit {info.returncode}\n{info.stdout}{info.stderr}")
    # Restoring that checkpoint by name fails, naming the file.
    failed_restore(h, ck, "damaged-restart-path", [rank], path=os.path.join(ck, "ckpt-000002"))
    # --restart (auto): falls back to the older checkpoint, or fails naming the file.
    s = h.restart(ck, "damaged-restart-auto")
    rc = s.finish()
    check(rank in s.stderr(), f"damaged: --restart does not name the damaged file (exit {rc}):{s.stderr_tail()}")
    if rc == 0:
        check_pieces(ref, [(r, "kill", 0), (s, "end", seen1 + 1)], "damaged, auto fell back to the older checkpoint")
        check_files(ref_files, wdir, "damaged, auto fell back to the older checkpoint")
        print("  (damaged: --restart fell back to ckpt-000001)")
    else:
        check(rc < 128 and rc != 75 and not s.lines, f"damaged: --restart exit {rc}, output {s.lines[:3]!r}")
        print("  (damaged: --restart failed; page data is verified only while restoring)")
    h.expect_no_leftovers("damaged: after --restart")
    # The intact older checkpoint, by name.
    o = h.restart(ck, "damaged-restart-older", path=os.path.join(ck, "ckpt-000001"))
    expect_exit(o, 0, "damaged, older checkpoint")
    check_pieces(ref, [(r, "kill", 0), (o, "end", seen1 + 1)], "damaged, older checkpoint")
    check_files(ref_files, wdir, "damaged, older checkpoint")
    h.expect_no_leftovers("damaged: at the end")


def failure_deleted_file(h):
    wdir, ck, r, ref, ref_files = stopped_checkpoint(h, "pipeline", "deleted")
    victim = os.path.join(wdir, "records.txt")
    saved = victim + ".saved"
    os.rename(victim, saved)
    failed_restore(h, ck, "deleted-restart", [victim])
    # The file back: the checkpoint is still good.
    os.rename(saved, victim)
    s = h.restart(ck, "deleted-restart-after")
    expect_exit(s, 0, "deleted, file put back")
    check_pieces(ref, [(r, "stop", 0), (s, "end", 1)], "deleted, file put back")
    check_files(ref_files, wdir, "deleted, file put back")
    # The heat solver's log, deleted.
    wdir2, ck2, r2, ref2, ref_files2 = stopped_checkpoint(h, "heat", "deleted-log")
    os.unlink(os.path.join(wdir2, "heat.log"))
    failed_restore(h, ck2, "deleted-log-restart", [os.path.join(wdir2, "heat.log")])


def failure_no_checkpoint(h):
    empty = h.mkdir("empty-ckpt")
    err = failed_restore(h, empty, "nockpt-empty", [empty])
    check("no committed checkpoint" in err, f"no_checkpoint: unclear message: {err.strip()}")
    missing = os.path.join(h.work, "does-not-exist")
    failed_restore(h, missing, "nockpt-missing-dir", [missing])
    bad = os.path.join(empty, "ckpt-000042")
    failed_restore(h, empty, "nockpt-bad-path", ["ckpt-000042"], path=bad)
    # An abandoned partial checkpoint is not a checkpoint.
    os.makedirs(os.path.join(empty, "ckpt-000001.partial"))
    err = failed_restore(h, empty, "nockpt-partial", [empty])
    check("no committed checkpoint" in err, f"no_checkpoint (partial only): unclear message: {err.strip()}")


def failure_refused_socket(h):
    ref, ref_files = h.reference("sockcalc")
    wdir = h.mkdir("socket")
    ck = os.path.join(wdir, "ckpt")
    r = h.launch("sockcalc", wdir, ck, "socket-run")
    for fraction, stop in ((0.2, False), (0.5, True)):
        r.wait_line(line_at(ref, fraction))
        c = h.ctl(ck, "checkpoint", *(["--stop"] if stop else []))
        check(c.returncode == 1, f"socket: ckpt-ctl checkpoint exited {c.returncode}, expected 1: {c.stderr.strip()}")
        err = c.stderr
        m = re.search(r"cannot checkpoint process \d+ \(pid (\d+) [^)]*\) fd (\d+): (socket:\[\d+\])", err)
        check(m, f"socket: the refusal does not name the process, fd and socket: {err.strip()}")
        pid, fd, what = m.groups()
        try:
            actual = os.readlink(f"/proc/{pid}/fd/{fd}")
        except OSError as e:
            raise Failure(f"socket: the refusal names pid {pid} fd {fd}, which does not exist ({e})")
        check(actual == what, f"socket: the refusal names {what} but pid {pid} fd {fd} is {actual}")
        check(pid in {str(p) for p in descendants(r.pid)}, f"socket: pid {pid} is not a process of the job")
    expect_exit(r, 0, "socket")
    check(r.lines == ref, f"socket: the program's output differs from the reference after refused checkpoints")
    check_files(ref_files, wdir, "socket")
    left = [e for e in os.listdir(ck) if e.startswith("ckpt-") or e == "latest"]
    check(not left, f"socket: refused checkpoints left {left}")
    check("checkpoint failed" in r.stderr(), "socket: ckpt-run did not report the failed checkpoint")
    h.expect_no_leftovers("socket")


def failure_ended_job(h):
    extra = ("400", "64", "2", "50")  # a short heat run
    ref, ref_files = h.reference("heat", extra)
    wdir = h.mkdir("ended")
    ck = os.path.join(wdir, "ckpt")
    r = h.launch("heat", wdir, ck, "ended-run", extra)
    expect_exit(r, 0, "ended")
    check(r.lines == ref, "ended: output differs from the reference")
    c = h.ctl(ck, "checkpoint")
    check(c.returncode == 3, f"ended: ckpt-ctl exited {c.returncode}, expected 3: {c.stderr.strip()}")
    check("no job" in c.stderr and ck in c.stderr, f"ended: unclear message: {c.stderr.strip()}")
    c = h.ctl(ck, "status")
    check(c.returncode == 3, f"ended: ckpt-ctl status exited {c.returncode}, expected 3: {c.stderr.strip()}")
    # A job whose ckpt-run was killed (its control file stays behind).
    ref2, _ = h.reference("heat")
    wdir2 = h.mkdir("killed")
    ck2 = os.path.join(wdir2, "ckpt")
    r2 = h.launch("heat", wdir2, ck2, "killed-run")
    r2.wait_line(line_at(ref2, 0.2))
    h.kill_launcher(r2, ck2)
    c = h.ctl(ck2, "checkpoint", "--stop")
    check(c.returncode == 3, f"killed: ckpt-ctl exited {c.returncode}, expected 3: {c.stderr.strip()}")
    check("ended" in c.stderr or "no job" in c.stderr, f"killed: unclear message: {c.stderr.strip()}")
    # And nothing to restart from there either; then a new launch works.
    failed_restore(h, ck2, "killed-restart", ["no committed checkpoint"])
    r3 = h.launch("heat", wdir, ck2, "killed-relaunch", extra)
    expect_exit(r3, 0, "killed, relaunch on the same --ckpt-dir")
    check(r3.lines == ref, "killed: the relaunch's output differs from the reference")


def failure_second_launcher(h):
    ref, ref_files = h.reference("pipeline")
    wdir = h.mkdir("second")
    ck = os.path.join(wdir, "ckpt")
    r = h.launch("pipeline", wdir, ck, "second-run")
    r.wait_line(line_at(ref, 0.1))
    other = h.mkdir("second-other")
    for label, cmd in (("second-launch", None), ("second-restart", "restart")):
        if cmd is None:
            s = h.launch("heat", other, ck, label)
        else:
            s = h.restart(ck, label)
        rc = s.finish()
        err = s.stderr()
        check(rc != 0, f"second: a second ckpt-run on the same --ckpt-dir ran (exit 0)")
        check("already running" in err and ck in err, f"second: unclear refusal (exit {rc}): {err.strip()}")
        check(not s.lines, f"second: the refused ckpt-run printed program output {s.lines[:3]!r}")
        made = os.listdir(other)
        check(not made, f"second: the refused ckpt-run started its program (it made {made})")
    # The first job is still reachable and unharmed.
    r.wait_line(line_at(ref, 0.3))
    h.checkpoint(ck)
    expect_exit(r, 0, "second")
    check(r.lines == ref, "second: the first job's output differs from the reference")
    check_files(ref_files, wdir, "second")
    h.expect_no_leftovers("second")


def tiny_tmpfs(h, name):
    if os.geteuid() != 0 or h.uid is not None:
        raise Skip("mounting a tmpfs needs root")
    ck = h.mkdir(name, "ckpt")
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m,mode=0700", "tmpfs", ck], capture_output=True, text=True)
    if r.returncode != 0:
        raise Skip(f"cannot mount a tmpfs: {r.stderr.strip()}")
    h.mounts.append(ck)
    return ck


def failure_full_disk(h):
    ck = tiny_tmpfs(h, "full")
    # A small job whose (compressed) checkpoint fits: it becomes `latest`.
    small = ("1000000", "32", "2", "10000")
    ref_s, files_s = h.reference("heat", small)
    wsmall = h.mkdir("full", "small")
    rs = h.launch("heat", wsmall, ck, "full-small", small, compression="zstd")
    seen = rs.wait_line(line_at(ref_s, 0.2))
    h.checkpoint(ck, stop=True)
    expect_exit(rs, 75, "full_disk, small job")
    def entries():  # (dot files belong to whichever job is running)
        return sorted(e for e in os.listdir(ck) if not e.startswith("."))

    before = entries()
    latest = os.readlink(os.path.join(ck, "latest"))
    # A big job (about 3 MiB of uncompressed image) on the same directory: no room.
    ref, ref_files = h.reference("heat")
    wbig = h.mkdir("full", "big")
    rb = h.launch("heat", wbig, ck, "full-big", compression="none")
    rb.wait_line(line_at(ref, 0.2))
    for stop in (False, True):
        c = h.ctl(ck, "checkpoint", *(["--stop"] if stop else []))
        check(c.returncode == 1, f"full_disk: ckpt-ctl exited {c.returncode}, expected 1: {c.stdout}{c.stderr.strip()}")
        check("checkpoint failed" in c.stderr and os.path.join(ck, "ckpt-00000") in c.stderr,
              f"full_disk: the failure does not name the file it could not write: {c.stderr.strip()}")
        # (That ckpt-ctl's own message says why is checked by full_disk_message.)
        after = entries()
        check(after == before, f"full_disk: the checkpoint directory changed from {before} to {after}")
        check(os.readlink(os.path.join(ck, "latest")) == latest, "full_disk: latest moved")
    # The program was not harmed: it goes on printing.
    seen_big = rb.wait_line(line_at(ref, 0.5))
    check(rb.stderr().count("No space left on device") == 2,
          f"full_disk: ckpt-run's log does not say twice that the disk is full:{rb.stderr_tail()}")
    # Room again (the admin grew the file system): the same ckpt-run checkpoints.
    r = subprocess.run(["mount", "-o", "remount,size=64m", ck], capture_output=True, text=True)
    check(r.returncode == 0, f"full_disk: cannot grow the tmpfs: {r.stderr.strip()}")
    h.checkpoint(ck, stop=True)
    expect_exit(rb, 75, "full_disk, big job after its failed checkpoints")
    big_ckpt = os.readlink(os.path.join(ck, "latest"))
    check(big_ckpt != latest, "full_disk: latest did not move after a successful checkpoint")
    sb = h.restart(ck, "full-big-restart")
    expect_exit(sb, 0, "full_disk, big job restored")
    check_pieces(ref, [(rb, "stop", 0), (sb, "end", seen_big + 1)], "full_disk, big job restored")
    check_files(ref_files, wbig, "full_disk, big job restored")
    # Nothing committed was lost: the small job's checkpoint still restores.
    info = h.info(os.path.join(ck, latest))
    check(info.returncode == 0, f"full_disk: ckpt-info on {latest}: {info.stdout}{info.stderr}")
    s = h.restart(ck, "full-small-restart", path=os.path.join(ck, latest))
    expect_exit(s, 0, "full_disk, small job restored")
    check_pieces(ref_s, [(rs, "stop", 0), (s, "end", seen + 1)], "full_disk, small job restored")
    check_files(files_s, wsmall, "full_disk, small job restored")
    h.expect_no_leftovers("full_disk")


def failure_full_disk_message(h):
    """ckpt-ctl itself must say why a checkpoint failed on a full disk."""
    ck = tiny_tmpfs(h, "fullmsg")
    ref, ref_files = h.reference("heat")
    wdir = h.mkdir("fullmsg", "work")
    r = h.launch("heat", wdir, ck, "fullmsg-run", compression="none")
    r.wait_line(line_at(ref, 0.2))
    c = h.ctl(ck, "checkpoint")
    r.finish()  # (its exit status is full_disk's business)
    check(r.lines == ref, "full_disk_message: output differs from the reference")
    check(c.returncode == 1, f"full_disk_message: ckpt-ctl exited {c.returncode}, expected 1: {c.stderr.strip()}")
    check("No space left on device" in c.stderr,
          "full_disk_message: ckpt-ctl's message does not say why the checkpoint failed (ckpt-run's log does):\n"
          f"--- ckpt-ctl stderr ---\n{c.stderr.strip()}{r.stderr_tail()}")


def failure_restore_beside_original(h):
    if os.geteuid() != 0 or h.uid is not None:
        raise Skip("a private mount namespace for the copy needs root")
    ref, ref_files = h.reference("pipeline")
    wdir = h.mkdir("beside")
    ck = os.path.join(wdir, "ckpt")
    r = h.launch("pipeline", wdir, ck, "beside-run")
    seen = r.wait_line(line_at(ref, 0.3))
    h.checkpoint(ck)
    # Another "node": a copy of the checkpoint and of the work directory as it
    # is now, mounted over the original path in a private mount namespace.
    copy = h.mkdir("beside-copy")
    shutil.copytree(wdir, os.path.join(copy, "work"), symlinks=True,
                    ignore=shutil.ignore_patterns(".coordinator*", ".lock"))
    ck_copy = os.path.join(copy, "work", "ckpt")
    script = f'mount --make-rprivate / && mount --bind "$1" "$2" && shift 2 && exec "$@"'
    prefix = ["unshare", "--mount", "--", "sh", "-c", script, "sh", os.path.join(copy, "work"), wdir]
    s = h.restart(ck_copy, "beside-restart", prefix=prefix)
    expect_exit(s, 0, "beside, restored copy")
    expect_exit(r, 0, "beside, original")
    check(r.lines == ref, "beside: the original's output differs from the reference")
    check_files(ref_files, wdir, "beside, original")
    check_pieces(ref, [(r, "kill", 0), (s, "end", seen + 1)], "beside, restored copy")
    check_files(ref_files, os.path.join(copy, "work"), "beside, restored copy")
    h.expect_no_leftovers("beside")


FAILURES = {
    "damaged_image": failure_damaged_image,
    "deleted_file": failure_deleted_file,
    "no_checkpoint": failure_no_checkpoint,
    "refused_socket": failure_refused_socket,
    "ended_job": failure_ended_job,
    "second_launcher": failure_second_launcher,
    "full_disk": failure_full_disk,
    "full_disk_message": failure_full_disk_message,
    "restore_beside_original": failure_restore_beside_original,
}


def run_cases(h, what, cases, names):
    """Runs cases[name](h) for each name, printing PASS, SKIP or FAIL; returns
    how many failed."""
    failed = 0
    for name in names:
        t0 = time.time()
        try:
            cases[name](h)
            print(f"PASS {what} {name} ({time.time() - t0:.1f} s)", flush=True)
        except Skip as e:
            print(f"SKIP {what} {name}: {e}", flush=True)
        except (Failure, subprocess.TimeoutExpired, OSError) as e:
            failed += 1
            print(f"FAIL {what} {name}: {e}", flush=True)
            h.kill_runs()
    return failed


def end_harness(h, keep):
    """Kills what is left and removes the work directory unless keep."""
    if keep:
        print(f"(work directory kept: {h.work})")
    h.cleanup(remove=not keep)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bin", required=True, help="build directory")
    ap.add_argument("--compression", choices=["none", "zstd"], default="none")
    ap.add_argument("--user", help="run everything as this unprivileged user")
    ap.add_argument("--keep", action="store_true", help="keep the work directory")
    sub = ap.add_subparsers(dest="what", required=True)
    sc = sub.add_parser("scenarios")
    sc.add_argument("app", choices=["heat", "pipeline", "memhog", "sockcalc"])
    sc.add_argument("only", nargs="*", help="scenario names (default: all)")
    fl = sub.add_parser("failure")
    fl.add_argument("case", choices=sorted(FAILURES) + ["all"])
    a = ap.parse_args()

    if a.user and os.geteuid() != 0:
        print(f"SKIP: running as {a.user} needs root")
        return 0
    h = Harness(a)
    failed = 0
    try:
        if a.what == "scenarios":
            failed = run_scenarios(h, a.app, a.only)
        else:
            failed = run_cases(h, "failure", FAILURES, sorted(FAILURES) if a.case == "all" else [a.case])
    finally:
        end_harness(h, a.keep or failed)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
