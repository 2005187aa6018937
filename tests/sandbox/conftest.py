"""Fixtures for the sandbox suite: one real sandbox per backend and a tiny job tree per test.

A backend that cannot run here is skipped with its reason, unless SOVRA_REQUIRE_SANDBOXES=1 (scripts/test sets it),
where that is a failure: CI must not pass by skipping the sandbox."""

from __future__ import annotations

import json
import os
import textwrap
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from compute_to_data.sandbox.base import Limits, Sandbox, SandboxResult, SandboxSpec
from tests.sandbox.limits import SMALL

BACKENDS = ("bubblewrap", "docker")
_cache: dict[str, Sandbox] = {}


def _make(name: str) -> Sandbox:
    if name not in _cache:
        if name == "bubblewrap":
            from compute_to_data.sandbox.bubblewrap import BubblewrapSandbox

            _cache[name] = BubblewrapSandbox()
        else:
            from compute_to_data.sandbox.docker import DockerSandbox

            _cache[name] = DockerSandbox()
    return _cache[name]


@pytest.fixture(params=BACKENDS)
def sandbox(request: pytest.FixtureRequest) -> Sandbox:
    return usable_or_skip(_make(request.param), request.param)


def usable_or_skip(box: Sandbox, name: str) -> Sandbox:
    """`box` when it can run here; otherwise a skip with the reason, or a failure under SOVRA_REQUIRE_SANDBOXES."""
    availability = box.available()
    if not availability.ok:
        if os.environ.get("SOVRA_REQUIRE_SANDBOXES"):
            pytest.fail(f"sandbox backend {name} is required but unavailable: {availability.reason}")
        pytest.skip(f"{name} unavailable: {availability.reason}")
    return box


@dataclass
class Job:
    root: Path
    algorithm: Path
    input: Path
    output: Path

    def spec(
        self, command: list[str] | None = None, limits: Limits = SMALL, output_dir: Path | None = None, **kw: object
    ) -> SandboxSpec:
        command = command or ["python", "/algorithm/main.py"]
        output = output_dir or self.output
        return SandboxSpec(command, self.algorithm, self.input, output, limits=limits, **kw)  # type: ignore[arg-type]


@pytest.fixture
def job(tmp_path: Path) -> Job:
    alg, inp = tmp_path / "algorithm", tmp_path / "input"
    alg.mkdir()
    inp.mkdir()
    records = [{"_record": f"r{i}", "x": float(i), "y": 2.0 * i} for i in range(1, 4)]
    (inp / "records.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
    (inp / "parameters.json").write_text("{}")
    return Job(tmp_path, alg, inp, tmp_path / "output")


@pytest.fixture
def run_python(sandbox: Sandbox, job: Job) -> Callable[..., SandboxResult]:
    """Run `source` as /algorithm/main.py in the sandbox under test."""

    def run(source: str, limits: Limits = SMALL, **kw: object) -> SandboxResult:
        (job.algorithm / "main.py").write_text(textwrap.dedent(source))
        return sandbox.run(job.spec(limits=limits, **kw))

    return run


@pytest.fixture
def host_secret(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A fake connector data dir with a key file, outside every bind."""
    data = tmp_path_factory.mktemp("connector-data")
    key = data / "keys" / "did-key.pem"
    key.parent.mkdir()
    key.write_text("-----BEGIN PRIVATE KEY-----\nSECRET-KEY-MATERIAL\n-----END PRIVATE KEY-----\n")
    (data / "sovra.db").write_bytes(b"SQLite format 3\0SECRET-ROWS")
    yield data
