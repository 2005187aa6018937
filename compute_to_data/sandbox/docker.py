"""The Docker backend (work in progress on this branch): fails closed until it is complete."""

from __future__ import annotations

from compute_to_data.sandbox.base import Availability, SandboxResult, SandboxSpec


class DockerSandbox:
    name = "docker"

    def __init__(self, **options: object) -> None:
        self.options = options

    def available(self) -> Availability:
        return Availability(False, "docker: backend not finished yet")

    def run(self, spec: SandboxSpec) -> SandboxResult:
        return SandboxResult(None, False, 0.0, b"", b"", 0, killed_reason=self.available().reason)
