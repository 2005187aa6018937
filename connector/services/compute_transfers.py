"""What the provider tells the requester when a compute job ends (TransferStart with the release, or a
termination with the reason). Called in the transaction that made the job final.

This is the no-op the provider pipeline ships with; the DSP flow replaces it.
"""

from __future__ import annotations

from typing import Any


def job_finished(session: Any, rt: Any, job: Any) -> None:
    """`job` (a ComputeJobRow) just became RELEASED, REJECTED or FAILED; nothing to send without the DSP flow."""
    return None
