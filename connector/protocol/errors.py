"""Errors raised at the DSP protocol edge (JSON-LD processing and JSON-schema validation).

Every error here is the peer's fault: the message it sent cannot be read as DSP 2025-1. The HTTP layer maps
them all to 400 with a DSP error body and changes nothing stored.

    ProtocolError
    ├── UnknownContextError    a @context URL that is not bundled (Sovra never fetches contexts)
    ├── JsonLdError            pyld could not expand or compact the message
    └── SchemaViolationError   the message does not match its DSP 2025-1 JSON schema
"""

from __future__ import annotations


class ProtocolError(Exception):
    """Base class for every error raised while reading or checking a DSP message."""


class UnknownContextError(ProtocolError):
    """A JSON-LD context URL is not among the bundled contexts.

    Sovra resolves contexts only from package data, so an unknown URL is refused rather than fetched: fetching
    would let a peer make the connector issue arbitrary outbound requests, and would make what a message means
    depend on a remote server.
    """

    def __init__(self, url: str) -> None:
        self.url = url
        super().__init__(
            f"JSON-LD context {url} is not bundled and Sovra never fetches contexts over the network; "
            "send the DSP context https://w3id.org/dspace/2025/1/context.jsonld or inline the context object"
        )


class JsonLdError(ProtocolError):
    """pyld rejected a document during expansion or compaction; `reason` carries pyld's own explanation."""

    def __init__(self, reason: str) -> None:
        self.reason = reason
        super().__init__(
            f"JSON-LD processing failed ({reason}); send the message in the DSP 2025-1 compacted shape "
            "with @context [\"https://w3id.org/dspace/2025/1/context.jsonld\"]"
        )


class SchemaViolationError(ProtocolError):
    """A message does not satisfy the DSP 2025-1 JSON schema for its `@type`.

    `pointer` is the RFC 6901 JSON pointer of the offending value ("" for the whole message) and `reason` a
    fix-oriented sentence, so the error body can tell the peer exactly what to change.
    """

    def __init__(self, message_type: str, pointer: str, reason: str) -> None:
        self.message_type = message_type
        self.pointer = pointer
        self.reason = reason
        where = pointer if pointer else "the message root"
        super().__init__(f"{message_type} is invalid at {where}: {reason}")
