"""Where the DSP 2025-1 example messages live: test data, in tests/fixtures (SOVRA_DSP_SPEC_DIR overrides)."""

from __future__ import annotations

import os
from pathlib import Path


def spec_dir() -> Path:
    candidates = [os.environ.get("SOVRA_DSP_SPEC_DIR", ""), str(Path(__file__).parent / "fixtures" / "dsp" / "2025-1")]
    for candidate in candidates:
        if candidate and (Path(candidate) / "negotiation" / "example").is_dir():
            return Path(candidate)
    raise RuntimeError("DSP 2025-1 examples not found; set SOVRA_DSP_SPEC_DIR to the folder holding */example/")


SPEC_DIR = spec_dir()
