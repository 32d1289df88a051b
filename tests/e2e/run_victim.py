#!/usr/bin/env python3
"""Runs one victim program under ckpt-run, checkpoints it while it waits,
and checks that it passes its own self-check afterwards.

Modes:
  stop      checkpoint --stop (the original ends), restore with --restart, go
  continue  checkpoint and let the original go on, go
  twice     stop + restore, checkpoint the restored copy again --stop,
            restore that, go
  native    no checkpoint at all (the victim's own baseline)
  refuse    the checkpoint must fail with a message (state the engine does
            not restore) and the original must go on and pass

The victim protocol (tests/victims/victim.h): it prints `ready`, waits for the
file named by CKPT_TEST_GO, checks itself and prints PASS or FAIL.
Exit status 0 when the victim passed; the reason otherwise.
"""
import argparse
import os
import pwd
import shutil
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import staging  # noqa: E402

TIMEOUT = 60


class Failure(Exception):
    pass


def wait_ready(proc, what):
    deadline = time.time() + TIMEOUT
    line = proc.stdout.readline()
    if time.time() > deadline or line.strip() != "ready":
        raise Failure(f"{what}: expected 'ready', got {line!r}")


def run(cmd, env, cwd, user, **kw):
    return subprocess.run(user + cmd, env=env, cwd=cwd, capture_output=True, text=True, timeout=TIMEOUT, **kw)


def start(cmd, env, cwd, user, log):
    return subprocess.Popen(user + cmd, env=env, cwd=cwd, stdout=subprocess.PIPE, stderr=log, text=True)


def wait_job(bindir, ckpt, env, cwd, user):
    """Until the job's coordinator answers (a restarted job takes a moment
    to start it); ckpt-ctl itself does not wait for a job to appear."""
    deadline = time.time() + TIMEOUT
    while True:
        r = run([f"{bindir}/coordinator/ckpt-ctl", "--ckpt-dir", ckpt, "status"], env, cwd, user)
        if r.returncode == 0:
            return
        if r.returncode != 3 or time.time() > deadline:
            raise Failure(f"the job did not come up (ckpt-ctl status exit {r.returncode}): {r.stderr.strip()}")
        time.sleep(0.02)


def checkpoint(bindir, ckpt, env, cwd, user, stop, expect_refusal=False):
    cmd = [f"{bindir}/coordinator/ckpt-ctl", "--ckpt-dir", ckpt, "checkpoint"] + (["--stop"] if stop else [])
    r = run(cmd, env, cwd, user)
    if expect_refusal:
        if r.returncode != 1 or "cannot checkpoint" not in r.stderr:
            raise Failure(f"expected a refused checkpoint, got exit {r.returncode}: {r.stderr.strip()}")
        if os.path.exists(os.path.join(ckpt, "latest")):
            raise Failure("a refused checkpoint was committed")
        return
    if r.returncode != 0:
        raise Failure(f"checkpoint failed (ckpt-ctl exit {r.returncode}): {r.stderr.strip()}")


def finish(proc, go, what):
    open(go, "w").close()
    try:
        out, _ = proc.communicate(timeout=TIMEOUT)
    except subprocess.TimeoutExpired:
        proc.kill()
        raise Failure(f"{what}: no verdict within {TIMEOUT} s")
    lines = [l for l in out.splitlines() if l.strip()]
    if proc.returncode != 0 or not lines or lines[-1] != "PASS":
        raise Failure(f"{what}: exit {proc.returncode}, output {lines[-3:]!r}")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", required=True, help="build directory")
    ap.add_argument("--mode", choices=["stop", "continue", "continue-stop", "twice", "native", "refuse"], default="stop")
    ap.add_argument("--user", help="run everything as this unprivileged user")
    ap.add_argument("victim")
    a = ap.parse_args()
    a.bin = os.path.abspath(a.bin)
    a.victim = os.path.abspath(a.victim)

    user = []
    work = tempfile.mkdtemp(prefix="ckpt-victim-")
    staged = None
    if a.user:
        pw = pwd.getpwnam(a.user)
        os.chown(work, pw.pw_uid, pw.pw_gid)
        user = ["setpriv", f"--reuid={pw.pw_uid}", f"--regid={pw.pw_gid}", "--clear-groups", "--"]
        rel_victim = os.path.relpath(a.victim, a.bin)
        staged = staging.stage(a.bin, [rel_victim])
        a.bin, a.victim = staged, os.path.join(staged, rel_victim)
    ckpt = os.path.join(work, "ckpt")
    go = os.path.join(work, "go")
    env = dict(os.environ, CKPT_TEST_GO=go)
    log = open(os.path.join(work, "ckpt-run.log"), "w")
    name = os.path.basename(a.victim)
    run_cmd = [f"{a.bin}/agent/ckpt-run", "--ckpt-dir", ckpt, "--"]
    restart_cmd = [f"{a.bin}/agent/ckpt-run", "--ckpt-dir", ckpt, "--restart"]
    procs = []
    try:
        if a.mode == "native":
            p = start([a.victim], env, work, user, log)
        else:
            p = start(run_cmd + [a.victim], env, work, user, log)
        procs.append(p)
        wait_ready(p, name)

        def stop_and_restore(p):
            wait_job(a.bin, ckpt, env, work, user)
            checkpoint(a.bin, ckpt, env, work, user, stop=True)
            rc = p.wait(timeout=TIMEOUT)
            if rc != 75:
                raise Failure(f"ckpt-run ended with {rc} after checkpoint --stop, expected 75")
            restored = start(restart_cmd, env, work, user, log)
            procs.append(restored)
            return restored

        if a.mode in ("continue", "continue-stop"):
            checkpoint(a.bin, ckpt, env, work, user, stop=False)
        if a.mode == "continue-stop":
            # The program resumed in the same process after a checkpoint
            # before the one it is restored from.
            time.sleep(0.2)
            p = stop_and_restore(p)
        elif a.mode == "refuse":
            checkpoint(a.bin, ckpt, env, work, user, stop=True, expect_refusal=True)
        elif a.mode == "stop":
            p = stop_and_restore(p)
        elif a.mode == "twice":
            p = stop_and_restore(p)
            time.sleep(0.2)  # let the restored copy run a little before checkpointing it again
            p = stop_and_restore(p)
        finish(p, go, name)
        print(f"PASS {name} ({a.mode})")
        return 0
    except (Failure, subprocess.TimeoutExpired) as e:
        log.flush()
        print(f"FAIL {name} ({a.mode}): {e}")
        with open(os.path.join(work, "ckpt-run.log")) as f:
            tail = f.read()[-3000:]
        if tail:
            print("--- ckpt-run log ---\n" + tail)
        return 1
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()
        log.close()
        shutil.rmtree(work, ignore_errors=True)
        if staged:
            shutil.rmtree(staged, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
