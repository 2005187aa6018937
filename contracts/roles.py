"""The two parties of every DSP process."""

from __future__ import annotations

from enum import StrEnum


class Role(StrEnum):
    CONSUMER = "CONSUMER"
    PROVIDER = "PROVIDER"

    @property
    def peer(self) -> Role:
        return Role.PROVIDER if self is Role.CONSUMER else Role.CONSUMER
