"""What a sandbox runs for a manifest: one rule, so every caller builds the same SandboxSpec command."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from compute_to_data.manifest import Manifest
from compute_to_data.sandbox.base import Limits, SandboxSpec

ONNX_RUNNER = "/runtime/onnx_runner.py"


def command_for(manifest: Manifest) -> list[str]:
    """python: `python /algorithm/<entrypoint>`; onnx: the connector's runner; oci: the entrypoint split on
    whitespace, or [] to use the image's own command."""
    if manifest.kind == "python":
        if not manifest.entrypoint:
            raise ValueError("a python algorithm needs an entrypoint")
        return ["python", f"/algorithm/{manifest.entrypoint.lstrip('/')}"]
    if manifest.kind == "onnx":
        return ["python", ONNX_RUNNER]
    return manifest.entrypoint.split() if manifest.entrypoint else []


def spec_for(
    manifest: Manifest,
    algorithm_dir: Path,
    input_dir: Path,
    output_dir: Path,
    limits: Limits,
    env: Mapping[str, str] | None = None,
) -> SandboxSpec:
    """The SandboxSpec for a verified manifest: its command, its GPU request, its image for the oci kind."""
    return SandboxSpec(
        command=command_for(manifest),
        algorithm_dir=algorithm_dir,
        input_dir=input_dir,
        output_dir=output_dir,
        limits=limits,
        env=dict(env or {}),
        gpu=manifest.resources.gpu,
        image=manifest.image if manifest.kind == "oci" else None,
    )
