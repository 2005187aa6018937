"""The Python that algorithms get inside a sandbox: the connector's own interpreter, but only numpy and onnxruntime.

Both backends show the same layout, so an algorithm cannot tell them apart:

- the base interpreter (the one the connector's venv was made from) at its host path, read-only;
- a tiny venv at /opt/sovra/venv: `bin/python` is a symlink to that interpreter and `pyvenv.cfg` points `home` at
  its bin dir, so CPython's own venv detection puts /opt/sovra/venv/lib/pythonX.Y/site-packages on sys.path
  without any environment variable;
- that site-packages holds only the package dirs of numpy and onnxruntime (and their vendored libs), copied or
  bound from wherever the connector imports them. The connector's other dependencies and its own code stay out.
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import sys
from dataclasses import dataclass
from pathlib import Path

from compute_to_data.sandbox.base import SandboxUnavailable

VENV_DIR = "/opt/sovra/venv"
PATH_ENV = f"{VENV_DIR}/bin:/usr/local/bin:/usr/bin:/bin"
RUNTIME_PACKAGES = ("numpy", "onnxruntime")


@dataclass(frozen=True)
class PythonLayout:
    base_prefix: Path  # the interpreter's install prefix on the host (stdlib, lib-dynload, libpython)
    executable: Path  # the real interpreter binary under base_prefix
    version: str  # "3.11"
    site_dirs: tuple[tuple[Path, str], ...]  # (host dir, name inside site-packages)

    @property
    def site_packages(self) -> str:
        return f"{VENV_DIR}/lib/python{self.version}/site-packages"

    def pyvenv_cfg(self) -> str:
        return (
            f"home = {self.executable.parent}\ninclude-system-site-packages = false\n"
            f"version = {sys.version_info.major}.{sys.version_info.minor}.{sys.version_info.micro}\n"
        )

    def fingerprint(self) -> str:
        """Changes when the interpreter or a bundled package changes (decides whether an image needs a rebuild)."""
        digest = hashlib.sha256(str(self.executable).encode())
        for path, name in self.site_dirs:
            digest.update(name.encode())
            for entry in sorted(path.rglob("*")) if path.is_dir() else [path]:
                if entry.is_file() and "__pycache__" not in entry.parts:
                    st = entry.stat()
                    digest.update(f"{entry.relative_to(path)}:{st.st_size}:{int(st.st_mtime)}".encode())
        return digest.hexdigest()


def _package_dirs(name: str) -> list[tuple[Path, str]]:
    spec = importlib.util.find_spec(name)
    if spec is None or not spec.submodule_search_locations:
        raise SandboxUnavailable(
            f"sandbox python: package {name!r} is not importable by the connector's interpreter ({sys.executable}); "
            f"install it into that environment (pip install {name})"
        )
    pkg = Path(next(iter(spec.submodule_search_locations)))
    dirs = [(pkg, name)]
    libs = pkg.parent / f"{name}.libs"  # auditwheel puts vendored shared libraries beside the package
    if libs.is_dir():
        dirs.append((libs, libs.name))
    return dirs


def discover() -> PythonLayout:
    """The layout for the interpreter running the connector; SandboxUnavailable when numpy/onnxruntime are missing."""
    base_prefix = Path(sys.base_prefix).resolve()
    version = f"{sys.version_info.major}.{sys.version_info.minor}"
    candidates = [
        Path(getattr(sys, "_base_executable", "") or sys.executable),
        base_prefix / "bin" / f"python{version}",
    ]
    executable = next((c.resolve() for c in candidates if c.name and c.exists()), None)
    if executable is None or not os.access(executable, os.X_OK):
        raise SandboxUnavailable(f"sandbox python: cannot find the base interpreter under {base_prefix}")
    site_dirs = tuple(d for name in RUNTIME_PACKAGES for d in _package_dirs(name))
    return PythonLayout(base_prefix=base_prefix, executable=executable, version=version, site_dirs=site_dirs)
