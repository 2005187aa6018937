"""Build the Docker runtime image locally, with no registry: a root filesystem assembled from this host.

`python -m compute_to_data.sandbox.image --ensure` (scripts/sandbox-setup.sh runs it) writes a tar holding exactly
what the bubblewrap backend binds (pyenv.py): the connector's base interpreter at its host path (stdlib and
lib-dynload, without site-packages, tests, headers or static libs), the /opt/sovra/venv with only numpy and
onnxruntime, the shared libraries all their ELF files need (found with ldd), the loader, /etc/passwd and group with
nobody (65534), and empty mount points /algorithm /input /output /runtime /tmp. It is `docker import`ed as
sovra/c2d-runtime:1 with a label holding a fingerprint of those inputs; a later run with the same fingerprint is
a no-op. About 200 MB, most of it numpy and onnxruntime.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import os
import re
import subprocess
import sys
import tarfile
import tempfile
from collections.abc import Iterator
from pathlib import Path

from compute_to_data.sandbox import pyenv
from compute_to_data.sandbox.base import SandboxUnavailable

IMAGE = "sovra/c2d-runtime:1"
FINGERPRINT_LABEL = "org.sovra.c2d.runtime.fingerprint"
BUILDER_VERSION = "1"
_SKIP_STDLIB = {"site-packages", "test", "idlelib", "tkinter", "turtledemo", "ensurepip", "lib2to3", "pydoc_data"}
_LDD_LINE = re.compile(r"(?:=>\s*)?(/\S+)\s+\(0x")


def _stdlib_files(layout: pyenv.PythonLayout) -> Iterator[Path]:
    prefix = layout.base_prefix
    yield layout.executable
    stdlib = prefix / "lib" / f"python{layout.version}"
    for entry in sorted((prefix / "lib").iterdir()):
        if entry.name.startswith("libpython") and entry.suffix != ".a":
            yield entry
    for root, dirs, files in os.walk(stdlib):
        rel = Path(root).relative_to(stdlib)
        if rel == Path("."):
            dirs[:] = [d for d in dirs if d not in _SKIP_STDLIB and not d.startswith("config-")]
        for name in files:
            yield Path(root) / name


def _site_files(layout: pyenv.PythonLayout) -> Iterator[tuple[Path, str]]:
    for host_dir, name in layout.site_dirs:
        for root, _dirs, files in os.walk(host_dir):
            for file in files:
                path = Path(root) / file
                yield path, f"{layout.site_packages}/{name}/{path.relative_to(host_dir)}"


def _is_elf(path: Path) -> bool:
    try:
        with open(path, "rb") as fh:
            return fh.read(4) == b"\x7fELF"
    except OSError:
        return False


def _shared_libraries(elves: list[Path]) -> set[Path]:
    """Every library the ELF files load, as the paths the loader reports (ldd)."""
    found: set[Path] = set()
    for chunk in range(0, len(elves), 200):
        out = subprocess.run(["ldd", *map(str, elves[chunk : chunk + 200])], capture_output=True, text=True).stdout
        for line in out.splitlines():
            match = _LDD_LINE.search(line)
            if match:
                found.add(Path(match.group(1)))
    return found


def _add_dir(tar: tarfile.TarFile, name: str, mode: int = 0o755) -> None:
    info = tarfile.TarInfo(name.lstrip("/"))
    info.type, info.mode = tarfile.DIRTYPE, mode
    tar.addfile(info)


def _add_bytes(tar: tarfile.TarFile, name: str, data: bytes, mode: int = 0o644) -> None:
    info = tarfile.TarInfo(name.lstrip("/"))
    info.size, info.mode = len(data), mode
    tar.addfile(info, io.BytesIO(data))


def _add_symlink(tar: tarfile.TarFile, name: str, target: str) -> None:
    info = tarfile.TarInfo(name.lstrip("/"))
    info.type, info.linkname = tarfile.SYMTYPE, target
    tar.addfile(info)


class _Tree:
    """Files for the tar, each added once, with all parent directories 0755 (root-owned)."""

    def __init__(self) -> None:
        self.files: dict[str, Path] = {}
        self.symlinks: dict[str, str] = {}

    def add(self, source: Path, dest: str | None = None) -> None:
        self.files.setdefault(dest or str(source), source)

    def dirs(self) -> list[str]:
        names = set()
        for path in [*self.files, *self.symlinks]:
            parent = Path(path).parent
            while parent != Path("/"):
                names.add(str(parent))
                parent = parent.parent
        return sorted(names)


def collect(layout: pyenv.PythonLayout) -> _Tree:
    tree = _Tree()
    for path in _stdlib_files(layout):
        tree.add(path)
    for path, dest in _site_files(layout):
        tree.add(path, dest)
    elves = [Path(p) for p in tree.files.values() if _is_elf(p)]
    inside = {str(layout.base_prefix), *(str(d) for d, _ in layout.site_dirs)}
    for lib in sorted(_shared_libraries(elves)):
        if any(str(lib).startswith(prefix + "/") for prefix in inside):
            continue
        tree.add(lib.resolve(), str(Path(os.path.realpath(lib.parent)) / lib.name))
    for name in ("bin", "sbin", "lib", "lib32", "lib64", "libx32"):
        host = Path("/") / name
        if host.is_symlink():
            tree.symlinks["/" + name] = os.readlink(host)
    venv = pyenv.VENV_DIR
    tree.symlinks[f"{venv}/bin/python"] = str(layout.executable)
    tree.symlinks[f"{venv}/bin/python3"] = "python"
    tree.symlinks["/usr/bin/python"] = f"{venv}/bin/python"
    return tree


def fingerprint(layout: pyenv.PythonLayout, tree: _Tree) -> str:
    digest = hashlib.sha256(f"builder {BUILDER_VERSION}\n{layout.fingerprint()}\n".encode())
    for dest, source in sorted(tree.files.items()):
        st = source.stat()
        digest.update(f"{dest}:{st.st_size}:{int(st.st_mtime)}\n".encode())
    return digest.hexdigest()


def write_rootfs(layout: pyenv.PythonLayout, tree: _Tree, out: Path) -> None:
    with tarfile.open(out, "w", format=tarfile.PAX_FORMAT) as tar:
        for name in tree.dirs():
            if name not in tree.symlinks:
                _add_dir(tar, name)
        for name in ("/tmp",):
            _add_dir(tar, name, 0o1777)
        for name in ("/algorithm", "/input", "/output", "/runtime", "/proc", "/sys", "/dev", "/etc"):
            _add_dir(tar, name)
        for dest, source in sorted(tree.files.items()):
            if Path(dest).parent.as_posix() in tree.symlinks:
                continue
            info = tar.gettarinfo(str(source), arcname=dest.lstrip("/"))
            info.uid = info.gid = 0
            info.uname = info.gname = "root"
            info.mode = info.mode | 0o444 | (0o111 if info.mode & 0o100 else 0)
            with open(source, "rb") as fh:
                tar.addfile(info, fh)
        for name, target in sorted(tree.symlinks.items()):
            _add_symlink(tar, name, target)
        _add_bytes(tar, "/etc/passwd", b"root:x:0:0:root:/root:/nonexistent\nnobody:x:65534:65534::/tmp:/nonexistent\n")
        _add_bytes(tar, "/etc/group", b"root:x:0:\nnogroup:x:65534:\n")
        if Path("/etc/ld.so.cache").is_file():
            _add_bytes(tar, "/etc/ld.so.cache", Path("/etc/ld.so.cache").read_bytes())
        _add_bytes(tar, f"{pyenv.VENV_DIR}/pyvenv.cfg", layout.pyvenv_cfg().encode())


def current_fingerprint(client) -> str | None:
    import docker.errors

    try:
        image = client.images.get(IMAGE)
    except docker.errors.ImageNotFound:
        return None
    return (image.labels or {}).get(FINGERPRINT_LABEL)


def ensure(client=None, force: bool = False) -> str:
    """Build and import the image unless one with the same fingerprint exists; returns the image id."""
    import docker

    client = client or docker.from_env()
    layout = pyenv.discover()
    tree = collect(layout)
    wanted = fingerprint(layout, tree)
    if not force and current_fingerprint(client) == wanted:
        print(f"sandbox image: {IMAGE} is up to date ({wanted[:12]})", file=sys.stderr)
        return client.images.get(IMAGE).id
    with tempfile.TemporaryDirectory(prefix="sovra-rootfs-") as tmp:
        rootfs = Path(tmp) / "rootfs.tar"
        write_rootfs(layout, tree, rootfs)
        size = rootfs.stat().st_size
        changes = [
            f"LABEL {FINGERPRINT_LABEL}={wanted}",
            "USER 65534:65534",
            f"ENV PATH={pyenv.PATH_ENV}",
            "ENV HOME=/tmp",
            "ENV LANG=C.UTF-8",
            "WORKDIR /tmp",
            'CMD ["python"]',
        ]
        args = ["docker", "import"]
        for change in changes:
            args += ["--change", change]
        done = subprocess.run([*args, str(rootfs), IMAGE], capture_output=True, text=True)
        if done.returncode != 0:
            raise SandboxUnavailable(f"docker import of the runtime image failed: {done.stderr.strip()}")
    image = client.images.get(IMAGE)
    print(f"sandbox image: built {IMAGE} ({size >> 20} MiB rootfs, {image.id[:19]})", file=sys.stderr)
    return image.id


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Build the compute-to-data runtime image (no registry).")
    parser.add_argument("--ensure", action="store_true", help="build unless an up-to-date image exists")
    parser.add_argument("--force", action="store_true", help="rebuild even when up to date")
    args = parser.parse_args(argv)
    try:
        ensure(force=args.force)
    except SandboxUnavailable as exc:
        print(f"sandbox image: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
