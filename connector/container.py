"""Wiring: build every long-lived part of one connector from its settings, start and stop them in order."""

from __future__ import annotations

import logging
import threading
from typing import Any

import httpx

from connector.dataplane.access_tokens import issue_access_token, token_verifier
from connector.dataplane.public_api import pull_data_address
from connector.dataplane.wiring import push_transfer
from connector.dsp.client import DEFAULT_TIMEOUT, DspClient
from connector.identity_service import (
    DidIdentityService,
    DidResolver,
    EdcMockIdentityService,
    IdentityService,
    StaticIdentityService,
)
from connector.participant_claims import load_claims
from connector.persistence.database import Database
from connector.persistence.migrate import upgrade
from connector.persistence.replay import DatabaseReplayGuard
from connector.persistence.tables import TransferRow
from connector.protocol.jsonld import load_document
from connector.protocol.schemas import validate_message
from connector.services import transfers
from connector.services.algorithms import DspAlgorithmSource
from connector.services.compute_release import ReleasePuller
from connector.services.runtime import Runtime, utc_now
from connector.settings import Settings
from connector.workers.compute import ComputeWorker, LazySandbox, sandbox_options
from connector.workers.monitor import PolicyMonitor
from connector.workers.outbox import OutboxWorker
from identity.did_web import build_did_document
from identity.keys import load_or_create_signing_key, public_jwk
from policies import OdrlPolicyEngine

log = logging.getLogger("sovra")


class Connector:
    def __init__(self, settings: Settings, *, transport: httpx.BaseTransport | None = None) -> None:
        """`transport` replaces the network for outgoing DSP and DID requests (tests that run peers in-process)."""
        self.settings = settings
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        if settings.file_root is not None:
            settings.file_root.mkdir(parents=True, exist_ok=True)
        self.db = Database.from_url(settings.database_url)
        self.key = load_or_create_signing_key(settings.key_path)
        self.did_document = build_did_document(
            settings.participant_id, public_jwk(self.key),
            service_endpoints={"DataService": settings.dsp_url},
        )
        self.transport = transport or httpx.HTTPTransport(
            limits=httpx.Limits(max_connections=64, max_keepalive_connections=32))
        self.http = httpx.Client(timeout=DEFAULT_TIMEOUT, follow_redirects=False, transport=self.transport)
        self.replay_guard = DatabaseReplayGuard(self.db, utc_now)
        self.did_resolver = DidResolver(self.http, allow_http_loopback=settings.dev)
        self.did_resolver.seed(settings.participant_id, self.did_document)
        self.identity = self._identity()
        self.rt = Runtime(settings=settings, policies=OdrlPolicyEngine(document_loader=load_document), clock=utc_now,
                          claims=load_claims(settings.participant_claims))
        if settings.tck:
            log.warning("!!! --tck: DSP TCK test extension ON: seeded TCK data, scripted protocol moves, /tck hooks. "
                        "Conformance testing only; never use it in a dataspace !!!")
            from connector.tck.scenarios import TckScript

            self.rt.script = TckScript()
        self.dsp_client = DspClient(self.transport, self.identity.outbound_authorization)
        self.release_puller = ReleasePuller(self.db, self.rt, self.http, self.did_resolver.resolve)
        self.rt.algorithm_source = DspAlgorithmSource(self)
        self.verify_access_token = token_verifier(self.key.private_key, issuer=settings.participant_id)
        self.outbox = OutboxWorker(self.db, self.rt, self.dsp_client, data_address_for=self.pull_address,
                                   push=self.push, release=self.release_puller, validate=validate_message,
                                   threads=settings.outbox_workers)
        self.rt.outbox = self.outbox
        self.monitor = PolicyMonitor(self.db, self.rt, interval=settings.policy_monitor_interval)
        self.rt.signing_key = self.key
        self.rt.resolve_did = self.did_resolver.resolve
        if settings.sandbox_backend == "none":
            self.rt.sandbox, self.rt.sandbox_problem = None, "the sandbox backend is 'none' (--sandbox-backend)"
        else:
            self.rt.sandbox = LazySandbox(settings.sandbox_backend, sandbox_options(settings))
        self.compute = ComputeWorker(self.db, self.rt, threads=settings.c2d_workers)
        self.rt.compute_wake = self.compute.wake

    def _identity(self) -> IdentityService:
        s = self.settings
        if s.identity == "static":
            log.warning("!!! identity mode 'static': DSP requests are NOT authenticated. Conformance testing "
                        "only; never use it in a dataspace !!!")
            return StaticIdentityService(s.static_token, s.static_peer_id)
        if s.identity == "iam-mock":
            log.warning("!!! identity mode 'iam-mock': DSP requests are NOT authenticated. EDC interoperability "
                        "testing only; never use it in a dataspace !!!")
            return EdcMockIdentityService(s.participant_id, s.static_peer_id, s.public_url)
        return DidIdentityService(self.key, s.participant_id, self.did_resolver, self.replay_guard, utc_now)

    def pull_address(self, transfer: TransferRow) -> dict[str, Any] | None:
        """The DataAddress of a pull transfer's start message: our public endpoint and a token bound to it."""
        if transfer.transfer_type not in (transfers.PULL, transfers.COMPUTE):
            return None
        token = issue_access_token(self.key.private_key, kid=self.key.kid, issuer=self.settings.participant_id,
                                   transfer_id=transfer.id, now=self.rt.clock(),
                                   ttl_seconds=self.settings.access_token_ttl)
        return pull_data_address(self.settings.public_api_url, token)

    def push(self, transfer: TransferRow) -> Any:
        return push_transfer(self, transfer)

    def start(self) -> None:
        upgrade(self.db.engine)
        if self.settings.tck:
            from connector.tck.hooks import enable

            enable(self)
        self.outbox.start()
        self.monitor.start()
        self.compute.start()
        if self.rt.sandbox is None:
            log.warning("!!! --sandbox-backend none: every compute-to-data job will be REJECTED !!!")
        elif isinstance(self.rt.sandbox, LazySandbox) and self.settings.c2d_workers > 0:
            threading.Thread(target=self.rt.sandbox.available, name="sovra-sandbox-probe", daemon=True).start()

    def stop(self) -> None:
        self.compute.stop()
        if isinstance(self.rt.sandbox, LazySandbox):
            self.rt.sandbox.close()
        self.monitor.stop()
        self.outbox.stop()
        self.http.close()
        self.db.dispose()
