"""Binaries for a test that runs as another (unprivileged) user.

The build tree may sit where that user cannot reach it (a clone under
/root); the binaries a test runs are copied into a world-readable temporary
directory that mirrors the build tree's layout."""
import os
import shutil
import tempfile

RUNTIME = ["agent/ckpt-run", "coordinator/ckpt-ctl", "image/ckpt-info"]


def stage(bin_dir, extra=()):
    """Copies RUNTIME and `extra` (paths relative to bin_dir, or directories)
    and returns the new directory to use as the build directory."""
    staged = tempfile.mkdtemp(prefix="ckpt-staged-")
    os.chmod(staged, 0o755)
    for rel in list(RUNTIME) + list(extra):
        src = os.path.join(bin_dir, rel)
        dst = os.path.join(staged, rel)
        os.makedirs(os.path.dirname(dst), mode=0o755, exist_ok=True)
        for d in _parents(staged, os.path.dirname(dst)):
            os.chmod(d, 0o755)
        if os.path.isdir(src):
            shutil.copytree(src, dst, dirs_exist_ok=True)
            for root, dirs, files in os.walk(dst):
                os.chmod(root, 0o755)
                for f in files:
                    os.chmod(os.path.join(root, f), 0o755)
        elif os.path.exists(src):
            shutil.copy2(src, dst)
            os.chmod(dst, 0o755)
    return staged


def _parents(top, d):
    while len(d) > len(top):
        yield d
        d = os.path.dirname(d)
