"""Participant identity: the connector's P-256 key, did:web DIDs and documents, and self-issued ES256 tokens.

Pure domain code: nothing here does I/O except reading or creating the key file. Fetching DID documents,
caching them and remembering token ids live in `connector.identity_service`.
"""

from identity.did_web import build_did_document, did_from_url, document_url_for_did, verification_jwk
from identity.errors import IdentityError
from identity.keys import SigningKey, load_or_create_signing_key, public_jwk
from identity.tokens import TokenClaims, issue_token, unverified_issuer, verify_token

__all__ = [
    "IdentityError",
    "SigningKey",
    "TokenClaims",
    "build_did_document",
    "did_from_url",
    "document_url_for_did",
    "issue_token",
    "load_or_create_signing_key",
    "public_jwk",
    "unverified_issuer",
    "verification_jwk",
    "verify_token",
]
