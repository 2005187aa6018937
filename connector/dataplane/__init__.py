"""HTTP data plane: pull tokens, sources under a policy, the public pull endpoint, and push.

The control plane decides which transfer is STARTED; this package moves the bytes. Wiring, in short:

* on TransferStart (pull): ``issue_access_token`` and put ``pull_data_address(endpoint, token)`` in
  the TransferStartMessage;
* mount ``build_public_router(verify=token_verifier(...), resolve_source=..., policy=...,
  client_factory=...)``;
* on TransferStart (push): ``push(open_source(address, policy, client=client), destination, client)``.
"""

from connector.dataplane.access_tokens import issue_access_token, token_verifier, verify_access_token
from connector.dataplane.egress import EgressGuard
from connector.dataplane.errors import (
    AccessDeniedError,
    AllowListError,
    DataAddressError,
    DataPlaneError,
    DenialReason,
    PushFailedError,
    RangeNotSatisfiableError,
    SourceNotFoundError,
    SourceRefusedError,
    UpstreamError,
)
from connector.dataplane.public_api import build_public_router, pull_data_address
from connector.dataplane.push import PushResult, push
from connector.dataplane.sources import Source, SourceMetadata, SourcePolicy, open_source

__all__ = [
    "AccessDeniedError",
    "AllowListError",
    "DataAddressError",
    "DataPlaneError",
    "DenialReason",
    "EgressGuard",
    "PushFailedError",
    "PushResult",
    "RangeNotSatisfiableError",
    "Source",
    "SourceMetadata",
    "SourceNotFoundError",
    "SourcePolicy",
    "SourceRefusedError",
    "UpstreamError",
    "build_public_router",
    "issue_access_token",
    "open_source",
    "pull_data_address",
    "push",
    "token_verifier",
    "verify_access_token",
]
