"""The Docker backend, through the `docker` SDK: one locked-down container per job, removed afterwards.

The container: the local runtime image (image.py; or the job's own image for the oci kind), network_mode none,
read-only root filesystem, every capability dropped, no-new-privileges, Docker's default seccomp profile and on
top of it the connector's own filter (seccomp.py; the supervisor loads it before starting the algorithm),
user 65534 (the connector's own uid when it is not root), memory (swap included), CPU and pids limits, private
sized tmpfs /tmp and /output, /algorithm, /input and /runtime bound read-only, nothing else from the host and
never the Docker socket. The same in-sandbox
supervisor as bubblewrap runs as the container's pid 1: rlimits, wall clock, kill everything, then /output and the
tails come back base64-encoded on the container's stdout (the json-file log driver is not binary-safe), capped by
the log driver's max-size. The host waits, kills at wall_seconds plus a grace, reads the logs and removes the
container in every case.

The oci kind runs a foreign image that may have no Python, so there is no supervisor: /output is then a fresh
host directory bound read-write (FSIZE rlimit per file; the total and link checks happen when copying it out).
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import glob
import os
import shutil
import tempfile
import time
from pathlib import Path

from compute_to_data.sandbox import pyenv, seccomp
from compute_to_data.sandbox.base import Availability, Limits, SandboxResult, SandboxSpec
from compute_to_data.sandbox.bubblewrap import (
    GRACE_SECONDS,
    NOBODY,
    RUNTIME_DIR,
    _environment,
    _grant_group_read,
    _output_tmpfs_bytes,
    _refused,
    _stream_cap,
    _supervisor_config,
)
from compute_to_data.sandbox.image import IMAGE
from compute_to_data.sandbox.outputs import TAIL_BYTES, CappedRead, OutputRefused, finish, read_output_file


class DockerSandbox:
    name = "docker"

    def __init__(self, image: str = IMAGE, client: object | None = None) -> None:
        self.image = image
        self._client = client
        self._availability: Availability | None = None
        self._filter: bytes | None = None

    def _seccomp(self) -> bytes:
        if self._filter is None:
            self._filter = seccomp.compile_filter()
        return self._filter

    def _docker(self):
        if self._client is None:
            import docker

            self._client = docker.from_env(timeout=30)
        return self._client

    def available(self) -> Availability:
        if self._availability is None:
            self._availability = self._probe()
        return self._availability

    def _probe(self) -> Availability:
        try:
            import docker
            import docker.errors
        except ImportError:
            return Availability(False, "docker: the `docker` Python package is missing; pip install docker")
        try:
            client = self._docker()
            client.ping()
        except Exception as exc:  # the SDK raises DockerException, requests' errors, OSError
            return Availability(
                False, f"docker: no daemon answers ({exc}); start dockerd (scripts/sandbox-setup.sh does)"
            )
        try:
            client.images.get(self.image)
        except docker.errors.ImageNotFound:
            return Availability(
                False, f"docker: the runtime image {self.image} is missing; build it with scripts/sandbox-setup.sh"
            )
        try:
            self._seccomp()
        except Exception as exc:  # SandboxUnavailable with the reason
            return Availability(False, str(exc))
        return Availability(True)

    def run(self, spec: SandboxSpec) -> SandboxResult:
        import docker.errors
        from docker.types import DeviceRequest, LogConfig, Ulimit

        availability = self.available()
        if not availability.ok:
            return _refused(availability.reason)
        gpu = spec.gpu
        if gpu and not glob.glob("/dev/nvidia*"):
            return _refused("job asks for a GPU; this executor has none")
        limits = spec.limits
        # As root, the job runs as 65534 and gets group read on its trees; otherwise as the connector's own
        # (non-root) uid, which can read them already.
        uid, gid = (NOBODY, NOBODY) if os.geteuid() == 0 else (os.getuid(), os.getgid())
        if os.geteuid() == 0:
            for tree in (spec.algorithm_dir, spec.input_dir):
                _grant_group_read(Path(tree), NOBODY)
        volumes = {
            str(Path(spec.algorithm_dir).resolve()): {"bind": "/algorithm", "mode": "ro"},
            str(Path(spec.input_dir).resolve()): {"bind": "/input", "mode": "ro"},
        }
        tmpfs = {"/tmp": f"size={limits.tmpfs_mb}m,mode=1777,noexec,nosuid,nodev"}
        oci = spec.image is not None
        scratch: str | None = None
        if oci:
            scratch = tempfile.mkdtemp(prefix="sovra-oci-output-")
            os.chown(scratch, uid, gid)
            volumes[scratch] = {"bind": "/output", "mode": "rw"}
            command, image = (list(spec.command) or None), spec.image  # None: the image's own command
        else:
            volumes[str(RUNTIME_DIR)] = {"bind": "/runtime", "mode": "ro"}
            tmpfs["/output"] = f"size={_output_tmpfs_bytes(limits)},mode=0700,uid={uid},gid={gid},nosuid,nodev"
            config = _supervisor_config(limits, list(_environment(spec.env)), "base64", self._seccomp(), nproc=False)
            command = [
                f"{pyenv.VENV_DIR}/bin/python",
                "-I",
                "-S",
                "/runtime/supervisor.py",
                config,
                "--",
                *spec.command,
            ]
            image = self.image
        mb = 1 << 20
        client = self._docker()
        container = None
        started = time.monotonic()
        try:
            container = client.containers.create(
                image,
                command=command,
                user=f"{uid}:{gid}",
                environment=_environment(spec.env),
                working_dir="/tmp",
                hostname="sandbox",
                network_mode="none",
                read_only=True,
                cap_drop=["ALL"],
                security_opt=["no-new-privileges"],
                mem_limit=limits.memory_mb * mb,
                memswap_limit=limits.memory_mb * mb,
                nano_cpus=int(limits.cpus * 1e9),
                pids_limit=limits.max_processes + 1,  # the supervisor, then the job's own processes
                ulimits=[
                    Ulimit(name="fsize", soft=limits.max_file_mb * mb, hard=limits.max_file_mb * mb),
                    Ulimit(name="nofile", soft=limits.max_open_files, hard=limits.max_open_files),
                    Ulimit(name="core", soft=0, hard=0),
                ],
                tmpfs=tmpfs,
                volumes=volumes,
                ipc_mode="private",
                log_config=LogConfig(
                    type="json-file", config={"max-size": str(2 * _stream_cap(limits)), "max-file": "1"}
                ),
                device_requests=[DeviceRequest(count=-1, capabilities=[["gpu"]])] if gpu else None,
                labels={"org.sovra.c2d.job": "1", "org.sovra.c2d.host-pid": str(os.getpid())},
            )
            container.start()
            host_timeout = False
            try:
                status = container.wait(timeout=limits.wall_seconds + GRACE_SECONDS)
                exit_status = status.get("StatusCode")
            except Exception:  # requests' ReadTimeout/ConnectionError: the container overran
                host_timeout = True
                exit_status = None
                with contextlib.suppress(docker.errors.APIError):
                    container.kill()
            stdout = container.logs(stdout=True, stderr=False)
            stderr = container.logs(stdout=False, stderr=True)
            container.reload()
            oom_killed = bool(container.attrs.get("State", {}).get("OOMKilled"))
        except docker.errors.DockerException as exc:
            return _refused(f"docker: the container could not run ({exc})")
        finally:
            if container is not None:
                with contextlib.suppress(docker.errors.DockerException):
                    container.remove(force=True)
        wall = time.monotonic() - started
        err = CappedRead(stderr[-TAIL_BYTES:], False)
        if oom_killed:
            return SandboxResult(
                None,
                False,
                wall,
                b"",
                stderr[-TAIL_BYTES:],
                0,
                killed_reason=f"memory: the container hit its {limits.memory_mb} MiB limit",
            )
        if oci:
            assert scratch is not None
            try:
                return _oci_result(spec, stdout, stderr, exit_status, host_timeout, wall, Path(scratch))
            finally:
                shutil.rmtree(scratch, ignore_errors=True)
        try:
            decoded = base64.b64decode(stdout, validate=False)
        except (binascii.Error, ValueError):
            decoded = b""
        out = CappedRead(decoded, len(stdout) > 2 * _stream_cap(limits))
        return finish(out, err, spec, wall_seconds=wall, host_timeout=host_timeout, runner_exit=exit_status)


def _oci_result(
    spec: SandboxSpec,
    stdout: bytes,
    stderr: bytes,
    exit_status: int | None,
    host_timeout: bool,
    wall: float,
    scratch: Path,
) -> SandboxResult:
    """Copy a foreign image's /output out without following anything, within the cap."""
    limits: Limits = spec.limits
    tails = {"stdout_tail": stdout[-TAIL_BYTES:], "stderr_tail": stderr[-TAIL_BYTES:]}
    if host_timeout:
        return SandboxResult(
            None,
            True,
            wall,
            **tails,
            output_bytes=0,
            killed_reason=f"timeout: the container ran past {limits.wall_seconds:g} s",
        )
    if exit_status == 137:
        return SandboxResult(None, False, wall, **tails, output_bytes=0, killed_reason="killed by SIGKILL (memory?)")
    total = 0
    out_dir = Path(spec.output_dir)
    try:
        for root, dirs, files in os.walk(scratch):
            for name in dirs + files:
                rel = os.path.relpath(os.path.join(root, name), scratch)
                if name in dirs and not os.path.islink(os.path.join(root, name)):
                    continue
                data = read_output_file(scratch, rel, limits.output_max_bytes - total)
                total += len(data)
                target = out_dir / rel
                target.parent.mkdir(parents=True, exist_ok=True)
                fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
                with os.fdopen(fd, "wb") as fh:
                    fh.write(data)
    except OutputRefused as exc:
        return SandboxResult(None, False, wall, **tails, output_bytes=0, killed_reason=f"output refused: {exc}")
    except OSError as exc:  # its text would name the file, and the name is the image's choice
        reason = f"output refused: an output could not be copied ({exc.strerror})"
        return SandboxResult(None, False, wall, **tails, output_bytes=0, killed_reason=reason)
    return SandboxResult(exit_status, False, wall, **tails, output_bytes=total)
