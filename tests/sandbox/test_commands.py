"""The command a sandbox runs for each algorithm kind."""

from __future__ import annotations

from pathlib import Path

from compute_to_data.manifest import Manifest, OnnxSpec, Resources
from compute_to_data.sandbox.base import Limits
from compute_to_data.sandbox.commands import command_for, spec_for


def _manifest(**kw: object) -> Manifest:
    base: dict[str, object] = {"name": "a", "version": "1", "kind": "python", "inputs": ("x",), "outputs": ()}
    base.update(kw)
    return Manifest(**base)  # type: ignore[arg-type]


def test_each_kind_gets_its_command() -> None:
    assert command_for(_manifest(entrypoint="main.py")) == ["python", "/algorithm/main.py"]
    onnx = _manifest(kind="onnx", onnx=OnnxSpec("m.onnx", {"in": ("x",)}, {"out": ("y",)}))
    assert command_for(onnx) == ["python", "/runtime/onnx_runner.py"]
    assert command_for(_manifest(kind="oci", image="sha256:" + "a" * 64, entrypoint="/bin/run --fast")) == [
        "/bin/run",
        "--fast",
    ]


def test_spec_carries_gpu_and_image() -> None:
    oci = _manifest(kind="oci", image="sha256:" + "b" * 64, resources=Resources(gpu=True))
    spec = spec_for(oci, Path("/a"), Path("/i"), Path("/o"), Limits())
    assert spec.gpu and spec.image == "sha256:" + "b" * 64 and spec.command == []
    assert spec_for(_manifest(entrypoint="m.py"), Path("/a"), Path("/i"), Path("/o"), Limits()).image is None
