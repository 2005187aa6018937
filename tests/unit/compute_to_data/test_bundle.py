"""Bundles: deterministic packing, and unpacking that refuses every unsafe entry with a clear error."""

from __future__ import annotations

import hashlib
import io
import json
import os
import tarfile
from pathlib import Path

import pytest

from compute_to_data.bundle import BundleError, digest_file, digest_stream, pack, read_manifest, unpack
from compute_to_data.manifest import MANIFEST_FILE, ManifestError

MANIFEST = {
    "name": "demo", "version": "1.0.0", "kind": "python", "entrypoint": "main.py", "inputs": ["x"],
    "outputs": [{"name": "y", "scope": "subject", "schema": {"type": "number"}}],
}


def make_algorithm(root: Path) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    (root / MANIFEST_FILE).write_text(json.dumps(MANIFEST))
    (root / "main.py").write_text("print('hello')\n")
    (root / "lib").mkdir()
    (root / "lib" / "helpers.py").write_text("X = 1\n")
    (root / "run.sh").write_text("#!/bin/sh\n")
    (root / "run.sh").chmod(0o775)
    return root


def test_pack_is_deterministic(tmp_path: Path) -> None:
    source = make_algorithm(tmp_path / "algo")
    first = pack(source, tmp_path / "a.tar.gz")
    os.utime(source / "main.py", (1_000_000, 1_000_000))  # a touched file changes no byte of the bundle
    (source / "__pycache__").mkdir()
    (source / "__pycache__" / "main.cpython-311.pyc").write_bytes(b"cache")
    second = pack(source, tmp_path / "b.tar.gz")
    assert first == second
    assert (tmp_path / "a.tar.gz").read_bytes() == (tmp_path / "b.tar.gz").read_bytes()
    assert first == "sha256:" + hashlib.sha256((tmp_path / "a.tar.gz").read_bytes()).hexdigest()
    (source / "main.py").write_text("print('changed')\n")
    assert pack(source, tmp_path / "c.tar.gz") != first


def test_pack_normalises_entries(tmp_path: Path) -> None:
    pack(make_algorithm(tmp_path / "algo"), tmp_path / "a.tar.gz")
    with tarfile.open(tmp_path / "a.tar.gz") as tar:
        members = tar.getmembers()
    assert [m.name for m in members] == sorted(m.name for m in members)
    assert all(m.mtime == 0 and m.uid == 0 and m.gid == 0 and m.uname == "" for m in members)
    modes = {m.name: m.mode for m in members}
    assert modes["run.sh"] == 0o755 and modes["main.py"] == 0o644 and modes["lib"] == 0o755


def test_pack_into_the_source_folder_skips_the_output(tmp_path: Path) -> None:
    source = make_algorithm(tmp_path / "algo")
    digest = pack(source, source / "out.tar.gz")
    with tarfile.open(source / "out.tar.gz") as tar:
        assert "out.tar.gz" not in tar.getnames()
    assert digest == digest_file(source / "out.tar.gz")


def test_round_trip(tmp_path: Path) -> None:
    archive = tmp_path / "a.tar.gz"
    pack(make_algorithm(tmp_path / "algo"), archive)
    manifest = unpack(archive, tmp_path / "out")
    assert manifest.name == "demo" and manifest.entrypoint == "main.py"
    assert (tmp_path / "out" / "lib" / "helpers.py").read_text() == "X = 1\n"
    assert os.access(tmp_path / "out" / "run.sh", os.X_OK)
    assert read_manifest(archive) == manifest


def test_pack_refuses_symlinks_missing_manifest_and_missing_entrypoint(tmp_path: Path) -> None:
    source = make_algorithm(tmp_path / "algo")
    (source / "secret").symlink_to("/etc/passwd")
    with pytest.raises(BundleError, match="symlink"):
        pack(source, tmp_path / "a.tar.gz")
    (source / "secret").unlink()
    (source / "main.py").unlink()
    with pytest.raises(BundleError, match="entrypoint 'main.py'"):
        pack(source, tmp_path / "a.tar.gz")
    (source / MANIFEST_FILE).unlink()
    with pytest.raises(BundleError, match="has no sovra-algorithm.json"):
        pack(source, tmp_path / "a.tar.gz")
    assert not (tmp_path / "a.tar.gz").exists()


def test_pack_reports_a_bad_manifest(tmp_path: Path) -> None:
    source = make_algorithm(tmp_path / "algo")
    (source / MANIFEST_FILE).write_text("{not json")
    with pytest.raises(ManifestError, match="not valid JSON"):
        pack(source, tmp_path / "a.tar.gz")


def hostile_archive(path: Path, *entries: tarfile.TarInfo, with_manifest: bool = True) -> Path:
    with tarfile.open(path, "w:gz") as tar:
        if with_manifest:
            body = json.dumps(MANIFEST).encode()
            info = tarfile.TarInfo(MANIFEST_FILE)
            info.size = len(body)
            tar.addfile(info, io.BytesIO(body))
            main = tarfile.TarInfo("main.py")
            main.size = 1
            tar.addfile(main, io.BytesIO(b"#"))
        for entry in entries:
            tar.addfile(entry, io.BytesIO(b"x" * entry.size) if entry.isreg() else None)
    return path


def entry(name: str, kind: bytes = tarfile.REGTYPE, size: int = 1, link: str = "") -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type, info.size, info.linkname = kind, size if kind == tarfile.REGTYPE else 0, link
    return info


UNSAFE = [
    ("absolute path", entry("/etc/cron.d/evil"), "absolute path"),
    ("dot-dot", entry("../../evil.py"), "contains '..'"),
    ("nested dot-dot", entry("lib/../../evil.py"), "contains '..'"),
    ("symlink", entry("link", tarfile.SYMTYPE, link="/etc/passwd"), "symlink"),
    ("hard link", entry("hard", tarfile.LNKTYPE, link="main.py"), "hard link"),
    ("char device", entry("tty", tarfile.CHRTYPE), "device file"),
    ("block device", entry("sda", tarfile.BLKTYPE), "device file"),
    ("fifo", entry("pipe", tarfile.FIFOTYPE), "special file"),
    ("duplicate", entry("main.py"), "appears twice"),
]


@pytest.mark.parametrize(("case", "bad", "message"), UNSAFE, ids=[u[0] for u in UNSAFE])
def test_unpack_refuses_unsafe_entries(tmp_path: Path, case: str, bad: tarfile.TarInfo, message: str) -> None:
    archive = hostile_archive(tmp_path / "bad.tar.gz", bad)
    dest = tmp_path / "out"
    with pytest.raises(BundleError, match=message):
        unpack(archive, dest)
    assert list(dest.iterdir()) == []  # nothing is left behind
    assert not (tmp_path.parent / "evil.py").exists()


def test_unpack_caps_size_and_entries(tmp_path: Path) -> None:
    big = hostile_archive(tmp_path / "big.tar.gz", entry("data.bin", size=5000))
    with pytest.raises(BundleError, match="more than 4096 bytes"):
        unpack(big, tmp_path / "a", max_bytes=4096)
    many = hostile_archive(tmp_path / "many.tar.gz", *(entry(f"f{i}") for i in range(10)))
    with pytest.raises(BundleError, match="more than 5 entries"):
        unpack(many, tmp_path / "b", max_entries=5)


def test_unpack_refuses_missing_manifest_non_empty_dest_and_garbage(tmp_path: Path) -> None:
    archive = hostile_archive(tmp_path / "plain.tar.gz", entry("main.py"), with_manifest=False)
    with pytest.raises(BundleError, match="no sovra-algorithm.json"):
        unpack(archive, tmp_path / "a")
    with pytest.raises(BundleError, match="no sovra-algorithm.json"):
        read_manifest(archive)
    busy = tmp_path / "busy"
    busy.mkdir()
    (busy / "x").write_text("x")
    with pytest.raises(BundleError, match="not empty"):
        unpack(archive, busy)
    garbage = tmp_path / "garbage.tar.gz"
    garbage.write_bytes(b"not a tarball at all")
    with pytest.raises(BundleError, match="not a readable .tar.gz"):
        unpack(garbage, tmp_path / "c")


def test_unpack_accepts_an_archive_made_with_tar(tmp_path: Path) -> None:
    """`tar czf x.tar.gz -C folder .` names entries ./main.py and starts with ./ itself."""
    folder = make_algorithm(tmp_path / "algo")
    archive = tmp_path / "by-tar.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(folder, arcname=".")
    assert unpack(archive, tmp_path / "out").entrypoint == "main.py"
    assert read_manifest(archive).name == "demo"


def test_digest_stream_matches_hashlib(tmp_path: Path) -> None:
    data = os.urandom((3 << 20) + 12345)
    path = tmp_path / "blob"
    path.write_bytes(data)
    expected = "sha256:" + hashlib.sha256(data).hexdigest()
    assert digest_file(path) == expected
    assert digest_stream(io.BytesIO(data)) == expected

    class ReadOnly:  # a stream without readinto
        def __init__(self) -> None:
            self.inner = io.BytesIO(data)

        def read(self, n: int) -> bytes:
            return self.inner.read(n)

    assert digest_stream(ReadOnly()) == expected  # type: ignore[arg-type]
    assert digest_stream(io.BytesIO(b"")) == "sha256:" + hashlib.sha256(b"").hexdigest()
