"""Limits shared by the sandbox tests."""

from __future__ import annotations

from compute_to_data.sandbox.base import Limits

# Small limits so the hostile suite stays quick; tests widen what they need.
SMALL = Limits(
    wall_seconds=15,
    cpu_seconds=10,
    memory_mb=768,
    max_processes=32,
    max_open_files=128,
    max_file_mb=8,
    output_max_bytes=1 << 20,
    tmpfs_mb=8,
    cpus=1.0,
)
