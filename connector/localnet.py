"""Run real `sovra serve` processes on loopback: for the demo, end-to-end tests and benchmarks.

Each process gets free ports, its own data dir and (by default) its own SQLite database; `kill()` sends SIGKILL,
so tests can prove that a crash at any moment loses nothing.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from identity.did_web import did_from_url


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class ConnectorProcess:
    name: str
    data_dir: Path
    port: int = field(default_factory=free_port)
    api_key: str = "demo-api-key-0123"
    database_url: str | None = None
    extra_args: tuple[str, ...] = ()
    env: dict[str, str] = field(default_factory=dict)
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://localhost:{self.port}"

    @property
    def dsp_url(self) -> str:
        return self.url + "/api/dsp/2025-1"

    @property
    def did(self) -> str:
        return did_from_url(self.url)

    @property
    def file_root(self) -> Path:
        return self.data_dir / "files"

    @property
    def log_path(self) -> Path:
        return self.data_dir / "connector.log"

    def command(self) -> list[str]:
        args = [sys.executable, "-m", "connector", "serve", "--port", str(self.port), "--public-url", self.url,
                "--data-dir", str(self.data_dir), "--api-key", self.api_key, "--dev", "--log-level", "warning"]
        if self.database_url:
            args += ["--database-url", self.database_url]
        return args + list(self.extra_args)

    def start(self, *, timeout: float = 30.0) -> ConnectorProcess:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        log = self.log_path.open("ab")
        env = {**os.environ, **self.env}
        self.process = subprocess.Popen(self.command(), stdout=log, stderr=subprocess.STDOUT, env=env,
                                        start_new_session=True)
        self.wait_ready(timeout)
        return self

    def wait_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process is not None and self.process.poll() is not None:
                raise RuntimeError(f"{self.name} exited with {self.process.returncode}; see {self.log_path}:\n"
                                   + self.log_path.read_text()[-3000:])
            try:
                if httpx.get(self.url + "/.well-known/dspace-version", timeout=1.0).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        raise TimeoutError(f"{self.name} did not answer on {self.url} within {timeout} s; see {self.log_path}")

    def kill(self) -> None:
        """SIGKILL: no shutdown hooks run, exactly like a crash."""
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(10)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.kill()

    def management(self) -> ManagementClient:
        return ManagementClient(self.url, self.api_key)


class ManagementClient:
    """A thin client for our management API (EDC v3 shapes), used by the demo, tests and benchmarks."""

    def __init__(self, base_url: str, api_key: str, *, timeout: float = 30.0) -> None:
        self.http = httpx.Client(base_url=base_url + "/api/management", headers={"X-Api-Key": api_key},
                                 timeout=timeout)

    def post(self, path: str, body: dict[str, object] | None = None) -> httpx.Response:
        return self.http.post(path, json=body or {})

    def get(self, path: str) -> httpx.Response:
        return self.http.get(path)

    def ok(self, response: httpx.Response) -> object:
        if response.status_code >= 400:
            raise AssertionError(f"{response.request.method} {response.request.url} -> {response.status_code}: "
                                 f"{response.text[:1000]}")
        return response.json() if response.content else None

    def wait_state(self, path: str, states: set[str], *, timeout: float = 30.0) -> dict[str, object]:
        deadline = time.monotonic() + timeout
        last: dict[str, object] = {}
        while time.monotonic() < deadline:
            last = self.ok(self.get(path))  # type: ignore[assignment]
            if last.get("state") in states:
                return last
            time.sleep(0.05)
        raise TimeoutError(f"{path} stayed in {last.get('state')} (wanted {sorted(states)}): {last}")

    def close(self) -> None:
        self.http.close()
