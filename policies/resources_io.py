"""Bundled data files of the policy domain (contexts, vocabularies, templates), read once from package data."""

from __future__ import annotations

import json
from functools import cache
from importlib.resources import files
from typing import Any

C2D_CONTEXT_FILE = "sovra-c2d-v1.jsonld"


@cache
def _text(name: str) -> str:
    return (files("policies") / "resources" / name).read_text(encoding="utf-8")


def c2d_context() -> dict[str, Any]:
    """A fresh copy of Sovra's policy-profile context document (callers may mutate it)."""
    return json.loads(_text(C2D_CONTEXT_FILE))


def resource_json(name: str) -> Any:
    return json.loads(_text(name))
