"""Fixture trees and the loopback sshd: what the programs serve and what sshfs talks to.

The tree is deterministic (seeded) so a failure reproduces, and "real" enough to catch what
synthetic trees miss: odd names, modes, symlinks to files and directories, an empty file, a
deep path, a binary blob across many pages, and a verbatim copy of a stdlib package (many small
real files, imported by the python workload).
"""

from __future__ import annotations

import json
import os
import random
import shutil
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

TREE_README = "compat-tests fixture tree\n"


def make_tree(root: Path, tiny: bool = False) -> None:
    """Write the fixture tree into *root* (which must not exist yet).

    *tiny* is the ``--quick`` tree: a handful of files, enough for ls/find/cat.
    """
    rng = random.Random(20261128)
    root.mkdir(parents=True)
    (root / "README.txt").write_text(TREE_README)
    (root / "dir").mkdir()
    (root / "dir" / "file.txt").write_text("a file in a directory\n")
    (root / "blob.bin").write_bytes(rng.randbytes(64 * 1024 if tiny else 3 * 1024 * 1024 + 123))
    os.symlink("README.txt", root / "link-to-readme")
    _write_package(root, stand_in=tiny)
    if tiny:
        return
    (root / "empty").write_bytes(b"")
    (root / "name with spaces.txt").write_text("spaces\n")
    (root / "café-ünïcode.txt").write_text("utf-8 name\n")
    script = root / "script.sh"
    script.write_text("#!/bin/sh\necho hello\n")
    script.chmod(0o755)
    private = root / "private.txt"
    private.write_text("only the owner\n")
    private.chmod(0o600)
    deep = root / "deep" / "a" / "b" / "c" / "d"
    deep.mkdir(parents=True)
    (deep / "leaf.txt").write_text("deep leaf\n")
    os.symlink("deep/a/b", root / "link-to-dir")
    os.symlink("does-not-exist", root / "dangling-link")
    notes = root / "notes"
    notes.mkdir()
    for index in range(60):
        lines = [f"note {index} line {line} {rng.random():.12f}" for line in range(index * 3)]
        (notes / f"note-{index:03d}.txt").write_text("\n".join(lines) + "\n")
    os.link(notes / "note-001.txt", root / "hard-link-to-note-001.txt")
    (root / "sparse-ish.bin").write_bytes(bytes(200_000) + rng.randbytes(5000))
    stdlib_json = Path(json.__file__).parent
    shutil.copytree(
        stdlib_json, root / "real" / "json", ignore=shutil.ignore_patterns("__pycache__")
    )


def _write_package(root: Path, stand_in: bool) -> None:
    """The package the python workload imports; ``real/json`` comes with the full tree only,
    so the tiny tree gets a stand-in with the same interface."""
    package = root / "compatpkg"
    package.mkdir()
    (package / "__init__.py").write_text('"""Imported from a FUSE mount by compat-tests."""\n')
    (package / "mod.py").write_text(
        "import pathlib\n\n"
        "HERE = pathlib.Path(__file__).parent\n"
        "DATA = {'answer': 42, 'readme': (HERE.parent / 'README.txt').read_text()}\n"
    )
    if stand_in:
        package_dir = root / "real" / "json"
        package_dir.mkdir(parents=True)
        (package_dir / "__init__.py").write_text(
            "import json as _json\nfrom . import decoder\ndumps = _json.dumps\n"
        )
        (package_dir / "decoder.py").write_text("NAME = 'stand-in decoder'\n")


def chown_tree(path: Path, uid: int, gid: int) -> None:
    """chown -R without following symlinks (a dangling link must not stop it)."""
    os.lchown(path, uid, gid)
    for directory, dirnames, filenames in os.walk(path):
        for name in dirnames + filenames:
            os.lchown(os.path.join(directory, name), uid, gid)


def run_checked(argv: list[str], cwd: Path | None = None, timeout: int = 120) -> None:
    """Run a fixture-building command; raise with its stderr when it fails."""
    result = subprocess.run(
        argv, cwd=cwd, stdin=subprocess.DEVNULL, capture_output=True, timeout=timeout, check=False
    )
    if result.returncode != 0:
        message = result.stderr.decode(errors="replace").strip() or result.stdout.decode()
        raise RuntimeError(f"{' '.join(argv)} failed ({result.returncode}): {message[:400]}")


def free_loopback_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@dataclass
class Sshd:
    """An unprivileged sshd on loopback, run as the ssh test user, that sshfs connects to.

    It only accepts the generated user key, listens on 127.0.0.1 only, and is killed (by its pid)
    when the run ends. Running unprivileged, sshd can only log in the user it runs as.
    """

    directory: Path
    user: str
    port: int = 0
    process: subprocess.Popen[bytes] | None = None

    @property
    def client_key(self) -> Path:
        """The private key sshfs authenticates with (copied per backend user by callers)."""
        return self.directory / "id_ed25519"

    def start(self, uid: int, gid: int) -> None:
        """Generate keys and config, start sshd, wait until it accepts connections."""
        if self.directory.exists():
            shutil.rmtree(self.directory)
        self.directory.mkdir(parents=True)
        run_checked(
            ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(self.directory / "host_key")]
        )
        run_checked(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(self.client_key)])
        shutil.copy(self.directory / "id_ed25519.pub", self.directory / "authorized_keys")
        self.port = free_loopback_port()
        config = self.directory / "sshd_config"
        config.write_text(
            f"Port {self.port}\n"
            "ListenAddress 127.0.0.1\n"
            f"HostKey {self.directory / 'host_key'}\n"
            f"AuthorizedKeysFile {self.directory / 'authorized_keys'}\n"
            f"PidFile {self.directory / 'sshd.pid'}\n"
            "PasswordAuthentication no\n"
            "KbdInteractiveAuthentication no\n"
            "PubkeyAuthentication yes\n"
            "UsePAM no\n"
            "StrictModes no\n"
            "PermitRootLogin no\n"
            "AllowTcpForwarding no\n"
            "X11Forwarding no\n"
            "Subsystem sftp /usr/lib/openssh/sftp-server\n"
            "LogLevel ERROR\n"
        )
        chown_tree(self.directory, uid, gid)
        argv = ["/usr/sbin/sshd", "-D", "-e", "-f", str(config)]
        if os.geteuid() == 0:
            argv = ["runuser", "-u", self.user, "--", *argv]
        self.process = subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=open(self.directory / "sshd.log", "wb"),  # noqa: SIM115 - lives with sshd
            start_new_session=True,
        )
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                log = (self.directory / "sshd.log").read_text(errors="replace")
                raise RuntimeError(
                    f"sshd exited with {self.process.returncode}: {log.strip()[:300]}"
                )
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=1):
                    return
            except OSError:
                time.sleep(0.1)
        self.stop()
        raise RuntimeError("sshd did not start listening within 15 s")

    def client_config(self, path: Path, key: Path) -> None:
        """Write an ssh_config for sshfs -F: this host, this key, no known_hosts, batch mode."""
        path.write_text(
            "Host compat-sshd\n"
            "  HostName 127.0.0.1\n"
            f"  Port {self.port}\n"
            f"  User {self.user}\n"
            f"  IdentityFile {key}\n"
            "  IdentitiesOnly yes\n"
            "  StrictHostKeyChecking no\n"
            "  UserKnownHostsFile /dev/null\n"
            "  BatchMode yes\n"
            "  LogLevel ERROR\n"
        )

    def stop(self) -> None:
        """Kill sshd's process group (runuser and sshd; sshd's per-connection children too)."""
        if self.process is None:
            return
        try:
            os.killpg(self.process.pid, 15)
        except ProcessLookupError:
            pass
        try:
            self.process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, 9)
            self.process.wait(timeout=5)
        self.process = None
