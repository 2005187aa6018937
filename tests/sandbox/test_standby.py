"""Pre-started (standby) sandboxes: same results as a cold start, the job's own limits, single use, no leftovers.

The supervisor's standby protocol is tested on its own too (run on the host, where a test can see what it did):
the command's rlimits and CPUs become the job's before it goes on, and the wall clock starts with the job."""

from __future__ import annotations

import json
import os
import resource
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from compute_to_data.sandbox.base import Limits
from compute_to_data.sandbox.bubblewrap import READY, BubblewrapSandbox, _supervisor_config
from compute_to_data.sandbox.outputs import parse_stream, read_output_file
from compute_to_data.sandbox.standby import StandbyPool, serves
from tests.sandbox.conftest import Job, usable_or_skip
from tests.sandbox.test_contract import _tiny_model

SUPERVISOR = Path(__file__).resolve().parents[2] / "compute_to_data" / "runtime" / "supervisor.py"
RUNNER = ["python", "/runtime/onnx_runner.py"]
POOL_LIMITS = Limits(wall_seconds=60, cpu_seconds=60, memory_mb=2048, output_max_bytes=1 << 20, tmpfs_mb=8)
JOB_LIMITS = Limits(wall_seconds=30, cpu_seconds=20, memory_mb=1024, output_max_bytes=1 << 20, tmpfs_mb=8)


@pytest.fixture
def standby_box(tmp_path_factory: pytest.TempPathFactory) -> BubblewrapSandbox:
    box = BubblewrapSandbox(standby=1, standby_dir=tmp_path_factory.mktemp("standby"), standby_limits=POOL_LIMITS)
    usable_or_skip(box, "bubblewrap")
    yield box
    box.close()


def _ready(box: BubblewrapSandbox, timeout: float = 30.0) -> list:
    """Wait until the pool has its standby; the started processes."""
    box._pool.fill()  # type: ignore[union-attr]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        ready = [slot.handle for slots in box._pool._ready.values() for slot in slots]  # type: ignore[union-attr]
        if ready:
            return ready
        time.sleep(0.05)
    raise AssertionError("no standby became ready")


def _onnx_job(job: Job) -> None:
    _tiny_model(job.algorithm / "model.onnx")
    manifest = {"model": "model.onnx", "inputMap": {"features": ["x", "y"]}, "outputMap": {"scores": ["a", "b"]}}
    (job.algorithm / "sovra-algorithm.json").write_text(json.dumps(manifest))


def test_a_standby_gives_what_a_cold_start_gives(standby_box: BubblewrapSandbox, job: Job, tmp_path: Path) -> None:
    _onnx_job(job)
    _ready(standby_box)
    used = [slot.folder for slots in standby_box._pool._ready.values() for slot in slots]  # type: ignore[union-attr]
    warm = standby_box.run(job.spec(RUNNER, limits=JOB_LIMITS))
    assert warm.exit_code == 0 and warm.standby, warm
    cold = BubblewrapSandbox().run(job.spec(RUNNER, limits=JOB_LIMITS, output_dir=tmp_path / "cold"))
    assert cold.exit_code == 0 and not cold.standby, cold
    assert read_output_file(job.output, "results.jsonl", 1 << 20) == read_output_file(
        tmp_path / "cold", "results.jsonl", 1 << 20)
    assert used and not any(folder.exists() for folder in used), "a used standby's slot is removed"


def test_each_standby_serves_one_job_and_leaves_no_process(standby_box: BubblewrapSandbox, job: Job) -> None:
    _onnx_job(job)
    first = _ready(standby_box)[0]
    assert standby_box.run(job.spec(RUNNER, limits=JOB_LIMITS)).standby
    assert first.poll() is not None, "a used standby must be gone"
    second = _ready(standby_box)[0]
    assert second is not first
    standby_box.close()
    assert second.poll() is not None, "closing the sandbox stops its standbys"
    assert not standby_box._pool.root.exists()  # type: ignore[union-attr]


def test_no_standby_is_kept_before_a_job_asks_for_one(standby_box: BubblewrapSandbox, job: Job) -> None:
    standby_box.prepare()  # what the idle worker does; nothing has asked yet
    time.sleep(0.5)
    assert not any(standby_box._pool._ready.values()) and not standby_box._pool.used  # type: ignore[union-attr]
    _onnx_job(job)
    first = standby_box.run(job.spec(RUNNER, limits=JOB_LIMITS))
    assert first.exit_code == 0 and not first.standby  # the first job starts cold and makes the pool fill
    assert _ready(standby_box)


def test_a_dead_standby_is_never_used(standby_box: BubblewrapSandbox, job: Job) -> None:
    _onnx_job(job)
    proc = _ready(standby_box)[0]
    os.killpg(proc.pid, 9)
    proc.wait()
    result = standby_box.run(job.spec(RUNNER, limits=JOB_LIMITS))
    assert result.exit_code == 0 and not result.standby, result


def test_a_standby_enforces_the_jobs_memory_limit(standby_box: BubblewrapSandbox, job: Job) -> None:
    """The runner stood by under the pool's 2 GiB; the job allows 64 MiB, which onnxruntime alone exceeds."""
    _onnx_job(job)
    _ready(standby_box)
    small = Limits(**{**JOB_LIMITS.__dict__, "memory_mb": 64})
    result = standby_box.run(job.spec(RUNNER, limits=small))
    assert result.standby and result.exit_code != 0, result
    assert not (job.output / "results.jsonl").exists()


def test_slots_of_a_process_that_is_gone_are_removed(tmp_path: Path) -> None:
    from compute_to_data.sandbox.standby import own_folder

    gone = subprocess.Popen(["true"])
    gone.wait()
    (tmp_path / str(gone.pid) / "slot" / "input").mkdir(parents=True)
    (tmp_path / "notes").mkdir()
    mine = own_folder(tmp_path)
    assert mine == tmp_path / str(os.getpid()) and mine.is_dir()
    assert not (tmp_path / str(gone.pid)).exists() and (tmp_path / "notes").exists()


def test_only_the_runner_stands_by_and_only_within_the_pools_limits(job: Job) -> None:
    assert serves(job.spec(RUNNER, limits=JOB_LIMITS), POOL_LIMITS)
    assert not serves(job.spec(["python", "/algorithm/main.py"], limits=JOB_LIMITS), POOL_LIMITS)
    looser = Limits(**{**JOB_LIMITS.__dict__, "memory_mb": 4096})
    assert not serves(job.spec(RUNNER, limits=looser), POOL_LIMITS)
    other_tmpfs = Limits(**{**JOB_LIMITS.__dict__, "tmpfs_mb": 16})
    assert not serves(job.spec(RUNNER, limits=other_tmpfs), POOL_LIMITS)
    assert not serves(job.spec(RUNNER, limits=JOB_LIMITS, gpu=True), POOL_LIMITS)
    assert not serves(job.spec(RUNNER, limits=JOB_LIMITS, env={"X": "1"}), POOL_LIMITS)


def test_a_pool_that_cannot_start_standbys_leaves_jobs_to_start_cold(tmp_path: Path, job: Job) -> None:
    def launch(slot: object) -> object:
        raise OSError("no bwrap today")

    pool = StandbyPool(1, tmp_path / "pool", POOL_LIMITS, launch, lambda h: True, lambda h: None)
    spec = job.spec(RUNNER, limits=JOB_LIMITS)
    assert pool.take(spec) is None
    time.sleep(0.2)
    assert pool.take(spec) is None
    pool.close()


# -- the supervisor's standby protocol, on the host ---------------------------------------------------------------

_PROBE = """
import os, resource, sys, time
time.sleep(float(sys.argv[1]))           # getting ready (an import), before the job
print("ready", flush=True)
if sys.stdin.readline().strip() != "go":
    sys.exit(0)
limits = {name: resource.getrlimit(getattr(resource, name))[0]
          for name in ("RLIMIT_AS", "RLIMIT_NOFILE", "RLIMIT_FSIZE", "RLIMIT_CPU")}
print(repr((limits, sorted(os.sched_getaffinity(0)))))
time.sleep(float(sys.argv[2]))           # the job's own work
"""


def _supervisor(*args: str) -> subprocess.Popen:
    """The supervisor in a pid namespace of its own (bwrap, host filesystem read-only): it kills every process of
    its namespace at the end, which must never be the host's."""
    bwrap = ["bwrap", "--ro-bind", "/", "/", "--proc", "/proc", "--dev", "/dev", "--unshare-pid", "--die-with-parent"]
    if shutil.which("bwrap") is None:
        pytest.skip("no bwrap: the supervisor only ever runs in a pid namespace of its own")
    return subprocess.Popen([*bwrap, sys.executable, "-I", "-S", str(SUPERVISOR), *args],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE)


def _supervise(ready_s: float, work_s: float, job: Limits, *, wait_before_job: float = 0.0,
               cpus: list[int] | None = None) -> tuple[dict, bytes]:
    config = _supervisor_config(POOL_LIMITS, [], standby=True, nproc=False)
    proc = _supervisor(config, "--", sys.executable, "-c", _PROBE, str(ready_s), str(work_s))
    time.sleep(wait_before_job)
    line = json.loads(_supervisor_config(job, []))
    line["cpus"] = cpus
    out, _ = proc.communicate(json.dumps(line).encode() + b"\n", timeout=60)
    assert out.startswith(READY), out[:100]  # it said READY before the job came
    stream = parse_stream(out[len(READY):])
    return stream.header, stream.stdout_tail


def test_the_supervisor_lowers_a_standing_by_command_to_the_jobs_limits() -> None:
    cpu = sorted(os.sched_getaffinity(0))[:1]
    header, stdout = _supervise(0.0, 0.0, JOB_LIMITS, cpus=cpu)
    assert header["exit_code"] == 0, header
    limits, affinity = eval(stdout.decode())  # noqa: S307 - our own probe's repr
    assert limits["RLIMIT_AS"] == JOB_LIMITS.memory_mb << 20
    assert limits["RLIMIT_NOFILE"] == JOB_LIMITS.max_open_files
    assert limits["RLIMIT_FSIZE"] == JOB_LIMITS.max_file_mb << 20
    assert JOB_LIMITS.cpu_seconds < limits["RLIMIT_CPU"] <= JOB_LIMITS.cpu_seconds + 2  # plus what it spent before
    assert affinity == cpu
    assert resource.getrlimit(resource.RLIMIT_AS)[0] != JOB_LIMITS.memory_mb << 20  # the host's own are untouched


def test_the_wall_clock_starts_with_the_job_not_with_the_standby() -> None:
    one_second = Limits(**{**JOB_LIMITS.__dict__, "wall_seconds": 1.0})
    header, _ = _supervise(0.0, 0.0, one_second, wait_before_job=1.5)  # stood by longer than the job may run
    assert header["exit_code"] == 0 and not header["timed_out"], header
    header, _ = _supervise(0.0, 5.0, one_second)
    assert header["timed_out"], header


def test_a_standby_whose_job_never_comes_writes_nothing() -> None:
    config = _supervisor_config(POOL_LIMITS, [], standby=True, nproc=False)
    proc = _supervisor(config, "--", sys.executable, "-c", _PROBE, "0", "0")
    out, _ = proc.communicate(b"", timeout=30)
    assert proc.returncode == 0 and out == READY
