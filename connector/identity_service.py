"""Who is calling, and how we prove who we are: the shell side of participant identity.

Rule kept here: a request's participant is the DID proven by a verified self-issued token whose jti has not
been seen before; nothing else (no header, no body field) names a participant. DID documents are fetched here
with a timeout, a size cap, no redirects and a TTL cache; the pure checks live in the `identity` package.

`StaticIdentityService` is the one exception to that rule and exists only for conformance test kits.
"""

from __future__ import annotations

import copy
import hmac
import json
import logging
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Protocol

import httpx

from identity.did_web import document_url_for_did
from identity.errors import (
    DidResolutionError,
    InvalidCredentialsError,
    MalformedTokenError,
    MissingTokenError,
    ReplayedTokenError,
)
from identity.keys import SigningKey
from identity.tokens import issue_token, unverified_issuer, verify_token

logger = logging.getLogger(__name__)

DID_FETCH_TIMEOUT_SECONDS = 5.0
MAX_DID_DOCUMENT_BYTES = 256 * 1024
MAX_CACHED_DOCUMENTS = 1024
_ACCEPT_DID_JSON = {"Accept": "application/did+json, application/json"}


@dataclass(frozen=True)
class Participant:
    """An authenticated counter-party; `id` is its DID (the DSP participantId).

    `token_id` and `keep_until` are set by `verify` when the replay check is left to the caller, so that it can
    record the token id in the same transaction as the message the token carried.
    """

    id: str
    token_id: str | None = None
    keep_until: datetime | None = None


class ReplayGuard(Protocol):
    """Remembers accepted token ids until they expire."""

    def remember(self, jti: str, expires_at: datetime) -> bool:
        """Record `jti` until `expires_at`; return False when it was already recorded (a replay)."""
        ...


class DidDocumentSource(Protocol):
    """Anything that turns a DID into its DID document (DidResolver, or a fake in tests)."""

    def resolve(self, did: str) -> dict[str, object]: ...


class IdentityService(Protocol):
    """Makes the Authorization header for outgoing DSP requests and authenticates incoming ones."""

    def outbound_authorization(self, audience: str) -> str:
        """Return the full Authorization header value for a request to the participant `audience`."""
        ...

    def authenticate(self, authorization: str | None) -> Participant:
        """Return the caller for an Authorization header value; raise an IdentityError subclass otherwise."""
        ...

    def verify(self, authorization: str | None) -> Participant:
        """Like `authenticate`, but leave the replay check to the caller (see Participant.token_id)."""
        ...


class DidResolver:
    """Fetch did:web documents over https (http only for allowed loopback hosts) and cache them with a TTL.

    Seeded documents (our own DID) never expire and are never fetched. Resolution failures are not cached, so
    a peer that comes back is usable on the next request.
    """

    def __init__(self, client: httpx.Client, *, allow_http_loopback: bool, ttl_seconds: float = 300,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._client = client
        self._allow_http_loopback = allow_http_loopback
        self._ttl_seconds = ttl_seconds
        self._clock = clock
        self._lock = threading.Lock()
        self._cache: dict[str, tuple[dict[str, object], float]] = {}
        self._seeded: dict[str, dict[str, object]] = {}

    def seed(self, did: str, document: dict[str, object]) -> None:
        """Pre-load a document that must never be fetched, such as the connector's own."""
        if document.get("id") != did:
            raise ValueError(f"seeded document id {document.get('id')!r} differs from {did}")
        with self._lock:
            self._seeded[did] = copy.deepcopy(document)

    def resolve(self, did: str) -> dict[str, object]:
        """Return a copy of the DID document; raise InvalidDidError or DidResolutionError."""
        with self._lock:
            document = self._seeded.get(did)
            cached = self._cache.get(did)
            if document is None and cached is not None and cached[1] > self._clock():
                document = cached[0]
        if document is None:
            document = self._fetch(did)
            with self._lock:
                self._store(did, document)
        return copy.deepcopy(document)

    def cached(self, did: str) -> Mapping[str, object] | None:
        """The document if it is known without a network call (seeded, or cached and fresh); None otherwise.

        The stored document itself, not a copy, for the token check of every request, which only reads it:
        copying it took a tenth of that check's time."""
        with self._lock:
            document = self._seeded.get(did)
            cached = self._cache.get(did)
            if document is None and cached is not None and cached[1] > self._clock():
                document = cached[0]
        return document

    def _store(self, did: str, document: dict[str, object]) -> None:
        now = self._clock()
        if len(self._cache) >= MAX_CACHED_DOCUMENTS:
            self._cache = {key: entry for key, entry in self._cache.items() if entry[1] > now}
        if len(self._cache) >= MAX_CACHED_DOCUMENTS:
            del self._cache[min(self._cache, key=lambda key: self._cache[key][1])]
        self._cache[did] = (document, now + self._ttl_seconds)

    def _fetch(self, did: str) -> dict[str, object]:
        url = document_url_for_did(did, allow_http=self._allow_http_loopback)
        try:
            with self._client.stream("GET", url, timeout=DID_FETCH_TIMEOUT_SECONDS, follow_redirects=False,
                                     headers=_ACCEPT_DID_JSON) as response:
                if response.status_code != httpx.codes.OK:
                    raise DidResolutionError(did, url, "the server did not answer 200 OK",
                                             response.status_code)
                body = _read_capped(response, did, url)
        except httpx.HTTPError as exc:
            raise DidResolutionError(did, url, f"transport error {type(exc).__name__}") from exc
        try:
            document = json.loads(body)
        except (ValueError, RecursionError) as exc:
            raise DidResolutionError(did, url, "the body is not JSON", httpx.codes.OK) from exc
        if not isinstance(document, dict):
            raise DidResolutionError(did, url, "the body is not a JSON object", httpx.codes.OK)
        if document.get("id") != did:
            raise DidResolutionError(did, url, "the document id differs from the DID", httpx.codes.OK)
        return document


def _read_capped(response: httpx.Response, did: str, url: str) -> bytes:
    chunks: list[bytes] = []
    size = 0
    for chunk in response.iter_bytes():
        size += len(chunk)
        if size > MAX_DID_DOCUMENT_BYTES:
            raise DidResolutionError(did, url, f"the document exceeds {MAX_DID_DOCUMENT_BYTES} bytes",
                                     response.status_code)
        chunks.append(chunk)
    return b"".join(chunks)


class InMemoryReplayGuard:
    """Thread-safe in-process replay guard for tests and single-process runs; forgets ids once they expire."""

    def __init__(self, now: Callable[[], datetime] = lambda: datetime.now(UTC)) -> None:
        self._now = now
        self._lock = threading.Lock()
        self._seen: dict[str, datetime] = {}

    def remember(self, jti: str, expires_at: datetime) -> bool:
        with self._lock:
            now = self._now()
            self._seen = {key: until for key, until in self._seen.items() if until >= now}
            if jti in self._seen:
                return False
            self._seen[jti] = expires_at
            return True


class DidIdentityService:
    """Production identity: DCP-style self-issued ES256 tokens checked against the caller's did:web document.

    `key_relationship="capabilityInvocation"` enforces the DCP v1.0 key rule; it is off by default because
    EDC peers often publish keys without relationships.
    """

    def __init__(self, key: SigningKey, own_did: str, resolver: DidDocumentSource, replay_guard: ReplayGuard,
                 now: Callable[[], datetime], *, token_ttl_seconds: int = 300, leeway_seconds: int = 30,
                 key_relationship: str | None = None) -> None:
        self._key = key
        self._own_did = own_did
        self._resolver = resolver
        self._replay_guard = replay_guard
        self._now = now
        self._token_ttl_seconds = token_ttl_seconds
        self._leeway_seconds = leeway_seconds
        self._key_relationship = key_relationship

    def outbound_authorization(self, audience: str) -> str:
        token = issue_token(self._key, issuer=self._own_did, audience=audience, now=self._now(),
                            ttl_seconds=self._token_ttl_seconds)
        return f"Bearer {token}"

    def authenticate(self, authorization: str | None) -> Participant:
        caller = self.verify(authorization)
        if caller.token_id is not None and caller.keep_until is not None:
            if not self._replay_guard.remember(caller.token_id, caller.keep_until):
                raise ReplayedTokenError(caller.id, caller.token_id)
        return Participant(id=caller.id)

    def verify(self, authorization: str | None) -> Participant:
        token = _bearer_token(authorization)
        # Only chooses which document to fetch; verify_token then binds iss to that document's id.
        document = self._resolver.resolve(unverified_issuer(token))
        return self._checked(token, document)

    def verify_without_io(self, authorization: str | None) -> Participant | None:
        """`verify`, when the caller's DID document is at hand without a network call; None when it is not.

        A request handler on the event loop calls this first: checking one ES256 signature costs less than
        handing the request to a worker thread and back, which only a DID fetch needs."""
        token = _bearer_token(authorization)
        cached = getattr(self._resolver, "cached", None)
        document = cached(unverified_issuer(token)) if cached is not None else None
        return None if document is None else self._checked(token, document)

    def _checked(self, token: str, document: Mapping[str, object]) -> Participant:
        claims = verify_token(token, did_document=document, expected_audience=self._own_did, now=self._now(),
                              leeway_seconds=self._leeway_seconds, key_relationship=self._key_relationship)
        # Keep the id past exp + leeway, the last moment verify_token would still accept the token.
        keep_until = claims.expires_at + timedelta(seconds=self._leeway_seconds)
        return Participant(id=claims.issuer, token_id=claims.jti, keep_until=keep_until)


def _bearer_token(authorization: str | None) -> str:
    if authorization is None or not authorization.strip():
        raise MissingTokenError()
    scheme, _, token = authorization.strip().partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise MalformedTokenError("the Authorization header must be 'Bearer <token>'")
    return token.strip()


class StaticIdentityService:
    """FOR CONFORMANCE TESTING ONLY (DSP TCK, EDC iam-mock). NEVER ENABLE IN A REAL DATASPACE.

    Every outgoing request carries exactly `token` (no Bearer prefix), and every incoming request that
    carries exactly the same value is accepted as `participant_id`. There is no signature, no expiry and no
    replay check: anyone who learns the value can act as that participant. It exists because the DSP TCK
    sends a fixed Authorization header from its configuration and cannot produce self-issued tokens.
    """

    def __init__(self, token: str, participant_id: str) -> None:
        if not token:
            raise ValueError("the static token must not be empty")
        self._token = token
        self._participant = Participant(id=participant_id)
        logger.warning("static identity service enabled for %s: requests are NOT authenticated; "
                       "use only for conformance testing", participant_id)

    def outbound_authorization(self, audience: str) -> str:
        return self._token

    def verify(self, authorization: str | None) -> Participant:
        return self.authenticate(authorization)

    def authenticate(self, authorization: str | None) -> Participant:
        if authorization is None or not authorization:
            raise MissingTokenError()
        if not hmac.compare_digest(authorization.encode("utf-8"), self._token.encode("utf-8")):
            raise InvalidCredentialsError("the Authorization value is not the configured static token")
        return self._participant


MAX_MOCK_TOKEN_CHARS = 4096


class EdcMockIdentityService:
    """FOR INTEROPERABILITY TESTING ONLY (an Eclipse EDC runtime with `iam-mock`). NEVER ENABLE IN A DATASPACE.

    EDC's development identity sends a JSON object, not a signed token, as the raw Authorization value:
    `{"region": ..., "audience": <the address it is calling>, "clientId": <its participant id>}`, and takes the
    caller to be whatever `clientId` the incoming value names. We send the same shape with our participant id,
    and accept a value only when its `clientId` is the one configured peer and its `audience` is an address of
    ours. Nothing is signed: anyone who can reach the DSP endpoint can claim to be that peer.
    """

    def __init__(self, own_id: str, peer_id: str, own_url: str, *, region: str = "eu") -> None:
        if not peer_id:
            raise ValueError("the peer's participant id must not be empty")
        self._own_id = own_id
        self._peer = Participant(id=peer_id)
        self._own_url = own_url.rstrip("/")
        self._region = region
        logger.warning("EDC iam-mock identity service enabled for peer %s: requests are NOT authenticated; "
                       "use only for interoperability testing", peer_id)

    def outbound_authorization(self, audience: str) -> str:
        return json.dumps({"region": self._region, "audience": audience, "clientId": self._own_id})

    def verify(self, authorization: str | None) -> Participant:
        return self.authenticate(authorization)

    def authenticate(self, authorization: str | None) -> Participant:
        if authorization is None or not authorization.strip():
            raise MissingTokenError()
        if len(authorization) > MAX_MOCK_TOKEN_CHARS:
            raise MalformedTokenError(f"an iam-mock token is a short JSON object (at most {MAX_MOCK_TOKEN_CHARS} "
                                      "characters)")
        try:
            claims = json.loads(authorization)
        except (ValueError, RecursionError):
            raise MalformedTokenError("an iam-mock token must be a JSON object with 'clientId'") from None
        if not isinstance(claims, dict) or not isinstance(claims.get("clientId"), str):
            raise MalformedTokenError("an iam-mock token must be a JSON object with a string 'clientId'")
        audience = claims.get("audience")
        if not isinstance(audience, str) or not _is_under(audience, self._own_url):
            raise InvalidCredentialsError(f"the token's audience {audience!r} is not an address under "
                                          f"{self._own_url}")
        if not hmac.compare_digest(claims["clientId"].encode("utf-8"), self._peer.id.encode("utf-8")):
            raise InvalidCredentialsError(f"clientId {claims['clientId']!r} is not the configured peer")
        return self._peer


def _is_under(url: str, base: str) -> bool:
    url = url.rstrip("/")
    return url == base or url.startswith(base + "/")
