"""The DSP 2025-1 protocol edge: JSON-LD contexts, message shape and JSON-schema validation.

`jsonld.to_dsp_shape` brings an inbound body into the compacted DSP shape and `schemas.validate_message` checks
it against the bundled DSP 2025-1 schemas. Both raise subclasses of `errors.ProtocolError`, which the HTTP layer
answers with 400 and a DSP error body.
"""
