"""Read a DSP request body at the edge: size limit, JSON, JSON-LD context, schema, expected @type.

Nothing stored changes before all of these pass; the result is the message in DSP compact shape, parsed once.
"""

from __future__ import annotations

import json
from collections.abc import Collection
from typing import Any

from fastapi import Request

from connector.protocol.jsonld import to_dsp_shape
from connector.protocol.schemas import validate_message


class BodyError(ValueError):
    def __init__(self, status: int, code: str, reason: str) -> None:
        self.status = status
        self.code = code
        super().__init__(reason)


async def read_json(request: Request, *, limit: int) -> Any:
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit:
        raise BodyError(413, "body.too.large", f"request body of {declared} bytes exceeds the limit of {limit} bytes")
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise BodyError(413, "body.too.large", f"request body exceeds the limit of {limit} bytes")
        chunks.append(chunk)
    raw = b"".join(chunks)
    if not raw:
        raise BodyError(400, "body.missing", "the request has no body; send a JSON message")
    try:
        return json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise BodyError(400, "json.malformed", f"the body is not valid JSON: {exc}") from exc


async def read_dsp_message(request: Request, expected: Collection[str], *, limit: int) -> dict[str, Any]:
    raw = await read_json(request, limit=limit)
    if not isinstance(raw, dict):
        raise BodyError(400, "json.not.object", "the body must be a JSON object (a DSP message)")
    message = to_dsp_shape(raw)
    request.state.dsp_message = message
    message_type = message.get("@type")
    if message_type not in expected:
        raise BodyError(400, "type.unexpected",
                        f"@type {message_type!r} is not accepted here; send {' or '.join(sorted(expected))}")
    validate_message(message)
    return message
