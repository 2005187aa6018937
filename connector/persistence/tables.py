"""Every table the connector stores. Rows are the shell's; the domain sees dataclasses built from them.

Idempotency lives in unique constraints here: (counter-party, consumerPid) for processes the peer started,
(process, message id) for messages already applied, and the jti of every identity token seen.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Boolean, Float, Index, Integer, LargeBinary, String, Text, UniqueConstraint
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from connector.persistence.types import UtcDateTime


class Base(DeclarativeBase):
    type_annotation_map = {datetime: UtcDateTime, dict[str, Any]: JSON, list[Any]: JSON}


class AssetRow(Base):
    __tablename__ = "assets"
    id: Mapped[str] = mapped_column(String(512), primary_key=True)
    properties: Mapped[dict[str, Any]] = mapped_column(default=dict)
    private_properties: Mapped[dict[str, Any]] = mapped_column(default=dict)
    data_address: Mapped[dict[str, Any]] = mapped_column(default=dict)
    created_at: Mapped[datetime]


class PolicyDefinitionRow(Base):
    __tablename__ = "policy_definitions"
    id: Mapped[str] = mapped_column(String(512), primary_key=True)
    policy: Mapped[dict[str, Any]]
    private_properties: Mapped[dict[str, Any]] = mapped_column(default=dict)
    created_at: Mapped[datetime]


class ContractDefinitionRow(Base):
    __tablename__ = "contract_definitions"
    id: Mapped[str] = mapped_column(String(512), primary_key=True)
    access_policy_id: Mapped[str] = mapped_column(String(512))
    contract_policy_id: Mapped[str] = mapped_column(String(512))
    assets_selector: Mapped[list[Any]] = mapped_column(default=list)
    auto_agree: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime]


class NegotiationRow(Base):
    """`id` is our own process id: the consumerPid when we consume, the providerPid when we provide."""

    __tablename__ = "negotiations"
    __table_args__ = (
        UniqueConstraint("role", "counter_party_id", "consumer_pid", name="uq_negotiation_consumer_pid"),
        Index("ix_negotiations_state", "state"),
    )
    id: Mapped[str] = mapped_column(String(255), primary_key=True)
    role: Mapped[str] = mapped_column(String(16))
    state: Mapped[str] = mapped_column(String(16))
    consumer_pid: Mapped[str | None] = mapped_column(String(255))
    provider_pid: Mapped[str | None] = mapped_column(String(255))
    counter_party_id: Mapped[str] = mapped_column(String(512))
    counter_party_address: Mapped[str] = mapped_column(String(2048))
    asset_id: Mapped[str | None] = mapped_column(String(512))
    contract_definition_id: Mapped[str | None] = mapped_column(String(512))
    offer: Mapped[dict[str, Any]] = mapped_column(default=dict)
    offer_by: Mapped[str] = mapped_column(String(16))
    request_context: Mapped[dict[str, Any] | None] = mapped_column(default=None)
    """What the consumer declared for the contract policy (purpose, ...); see `services.policy_scopes`."""
    agreement_id: Mapped[str | None] = mapped_column(String(512))
    pending_decision: Mapped[bool] = mapped_column(Boolean, default=False)
    error_detail: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]


class AgreementRow(Base):
    __tablename__ = "agreements"
    id: Mapped[str] = mapped_column(String(512), primary_key=True)
    negotiation_id: Mapped[str] = mapped_column(String(255), index=True)
    role: Mapped[str] = mapped_column(String(16))
    provider_id: Mapped[str] = mapped_column(String(512))
    consumer_id: Mapped[str] = mapped_column(String(512))
    asset_id: Mapped[str] = mapped_column(String(512))
    policy: Mapped[dict[str, Any]]
    signed_at: Mapped[datetime]
    finalized: Mapped[bool] = mapped_column(Boolean, default=False)
    request_context: Mapped[dict[str, Any] | None] = mapped_column(default=None)
    """The consumer's declared context the agreement was made on; transfer and monitor evaluate with it."""
    use_count: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    """Transfers started under this agreement (the ODRL `count` left operand)."""


class TransferRow(Base):
    __tablename__ = "transfers"
    __table_args__ = (
        UniqueConstraint("role", "counter_party_id", "consumer_pid", name="uq_transfer_consumer_pid"),
        Index("ix_transfers_state", "state"),
    )
    id: Mapped[str] = mapped_column(String(255), primary_key=True)
    role: Mapped[str] = mapped_column(String(16))
    state: Mapped[str] = mapped_column(String(16))
    consumer_pid: Mapped[str | None] = mapped_column(String(255))
    provider_pid: Mapped[str | None] = mapped_column(String(255))
    counter_party_id: Mapped[str] = mapped_column(String(512))
    counter_party_address: Mapped[str] = mapped_column(String(2048))
    agreement_id: Mapped[str] = mapped_column(String(512))
    asset_id: Mapped[str | None] = mapped_column(String(512))
    transfer_type: Mapped[str] = mapped_column(String(128))
    data_destination: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    error_detail: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]


class EdrRow(Base):
    """Consumer side: the endpoint and token a provider gave us for one pull transfer."""

    __tablename__ = "edrs"
    transfer_id: Mapped[str] = mapped_column(String(255), primary_key=True)
    agreement_id: Mapped[str] = mapped_column(String(512))
    asset_id: Mapped[str | None] = mapped_column(String(512))
    provider_id: Mapped[str] = mapped_column(String(512))
    data_address: Mapped[dict[str, Any]]
    created_at: Mapped[datetime]


class OutboxRow(Base):
    """A DSP message we owe a peer, written in the same transaction as the state change that owes it."""

    __tablename__ = "outbox"
    __table_args__ = (Index("ix_outbox_pending", "status", "process_id", "seq"),)
    seq: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    message_id: Mapped[str] = mapped_column(String(64), unique=True)
    process_type: Mapped[str] = mapped_column(String(16))
    process_id: Mapped[str] = mapped_column(String(255))
    message: Mapped[str] = mapped_column(String(64))
    params: Mapped[dict[str, Any]] = mapped_column(default=dict)
    status: Mapped[str] = mapped_column(String(16), default="pending")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime]
    leased_by: Mapped[str | None] = mapped_column(String(64))
    lease_until: Mapped[datetime | None]
    last_error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime]
    sent_at: Mapped[datetime | None]


class ProcessedMessageRow(Base):
    __tablename__ = "processed_messages"
    process_id: Mapped[str] = mapped_column(String(255), primary_key=True)
    message_id: Mapped[str] = mapped_column(String(255), primary_key=True)
    received_at: Mapped[datetime]


class UsedTokenRow(Base):
    __tablename__ = "used_tokens"
    jti: Mapped[str] = mapped_column(String(255), primary_key=True)
    expires_at: Mapped[datetime] = mapped_column(index=True)


class EventRow(Base):
    """Audit trail of every DSP message in or out, for operators (and the console's timelines)."""

    __tablename__ = "events"
    seq: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    process_id: Mapped[str] = mapped_column(String(255), index=True)
    direction: Mapped[str] = mapped_column(String(8))
    message: Mapped[str] = mapped_column(String(64))
    state: Mapped[str] = mapped_column(String(16))
    detail: Mapped[str | None] = mapped_column(Text)
    at: Mapped[datetime]


# -- compute-to-data (issue 5) ------------------------------------------------------------------------------------


class ComputeJobRow(Base):
    """One compute job, on either side: the provider's (A runs it) or the requester's (B asked for it).

    The row is the persisted intent of the pipeline: `state` says which step comes next, and a worker that holds the
    lease (`lease_owner`, `lease_until`) runs it; a lease that ran out belongs to nobody, so a crash costs one step.
    """

    __tablename__ = "compute_jobs"
    __table_args__ = (
        Index("ix_compute_jobs_due", "role", "state", "lease_until"),
        Index("ix_compute_jobs_transfer", "transfer_id"),
    )
    id: Mapped[str] = mapped_column(String(255), primary_key=True)
    role: Mapped[str] = mapped_column(String(16))
    state: Mapped[str] = mapped_column(String(16))
    reason: Mapped[str | None] = mapped_column(Text)
    transfer_id: Mapped[str | None] = mapped_column(String(255))
    agreement_id: Mapped[str] = mapped_column(String(512))
    counterparty_id: Mapped[str] = mapped_column(String(512))
    counterparty_address: Mapped[str | None] = mapped_column(String(2048))
    asset_id: Mapped[str | None] = mapped_column(String(512))
    algorithm_ref: Mapped[str] = mapped_column(String(512))
    algorithm_provider: Mapped[str | None] = mapped_column(String(2048))
    algorithm_digest: Mapped[str | None] = mapped_column(String(128))
    algorithm_signer: Mapped[str | None] = mapped_column(String(512))
    manifest: Mapped[dict[str, Any] | None] = mapped_column(default=None)
    parameters: Mapped[dict[str, Any]] = mapped_column(default=dict)
    backend: Mapped[str | None] = mapped_column(String(32))
    limits: Mapped[dict[str, Any] | None] = mapped_column(default=None)
    input_digest: Mapped[str | None] = mapped_column(String(128))
    record_count: Mapped[int | None] = mapped_column(Integer)
    epsilon_charged: Mapped[float | None] = mapped_column(Float)
    outputs: Mapped[dict[str, Any] | None] = mapped_column(default=None)
    """The released aggregates (what the requester receives); never raw records."""
    receipt: Mapped[dict[str, Any] | None] = mapped_column(default=None)
    """The DSSE envelope of the signed run receipt."""
    events: Mapped[list[Any]] = mapped_column(default=list)
    """[{at, state, message}]: connector-written lines only, never algorithm output or input data."""
    logs: Mapped[dict[str, Any] | None] = mapped_column(default=None)
    """Provider operator only: the algorithm's stdout/stderr tails, scrubbed of input values and truncated."""
    lease_owner: Mapped[str | None] = mapped_column(String(64))
    lease_until: Mapped[datetime | None]
    attempts: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]
    started_at: Mapped[datetime | None]
    finished_at: Mapped[datetime | None]


class ComputeJobSubjectRow(Base):
    """A data subject whose record ran in a job, with her own result (null when her record gave none)."""

    __tablename__ = "compute_job_subjects"
    __table_args__ = (Index("ix_compute_job_subjects_subject", "subject_id"),)
    job_id: Mapped[str] = mapped_column(String(255), primary_key=True)
    subject_id: Mapped[str] = mapped_column(String(512), primary_key=True)
    result: Mapped[dict[str, Any] | None] = mapped_column(JSON, default=None)


class ComputeJobSubjectBatchRow(Base):
    """A final job's subject rows as one batch (JSON {subject id: result or null}), written in the transaction that
    ends the job and turned into ComputeJobSubjectRows by the compute worker right after: ten thousand indexed rows
    cost more than the rest of a job's end, and the requester need not wait for them. Readers see both."""

    __tablename__ = "compute_job_subject_batches"
    job_id: Mapped[str] = mapped_column(String(255), primary_key=True)
    results: Mapped[bytes] = mapped_column(LargeBinary)


class ConsentEventRow(Base):
    """A grant or revocation; never updated: the newest event for (subject, provider, purpose) wins."""

    __tablename__ = "consent_events"
    __table_args__ = (Index("ix_consent_events_lookup", "provider_id", "purpose", "subject_id"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    subject_id: Mapped[str] = mapped_column(String(512))
    provider_id: Mapped[str] = mapped_column(String(512))
    purpose: Mapped[str] = mapped_column(String(1024))
    action: Mapped[str] = mapped_column(String(16))
    at: Mapped[datetime]
    expires_at: Mapped[datetime | None]
    source: Mapped[str] = mapped_column(String(16))


class PrivacyBudgetRow(Base):
    __tablename__ = "privacy_budgets"
    asset_id: Mapped[str] = mapped_column(String(512), primary_key=True)
    budget: Mapped[float] = mapped_column(Float)
    spent: Mapped[float] = mapped_column(Float, default=0.0)
    updated_at: Mapped[datetime]


class PrivacyChargeRow(Base):
    __tablename__ = "privacy_charges"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    asset_id: Mapped[str] = mapped_column(String(512), index=True)
    job_id: Mapped[str] = mapped_column(String(255), unique=True)
    epsilon: Mapped[float] = mapped_column(Float)
    at: Mapped[datetime]


class AuditEventRow(Base):
    """Append-only and hash-chained: `hash` = sha256(prev_hash + canonical JSON of the row's other fields)."""

    __tablename__ = "audit_events"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    at: Mapped[datetime]
    kind: Mapped[str] = mapped_column(String(64))
    job_id: Mapped[str | None] = mapped_column(String(255), index=True)
    subject_id: Mapped[str | None] = mapped_column(String(512), index=True)
    actor: Mapped[str] = mapped_column(String(512))
    detail: Mapped[dict[str, Any]] = mapped_column(default=dict)
    prev_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64), unique=True)


class SubjectTokenRow(Base):
    """A data subject's personal API token; only its sha256 is kept (the token is shown once)."""

    __tablename__ = "subject_tokens"
    token_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    subject_id: Mapped[str] = mapped_column(String(512), index=True)
    created_at: Mapped[datetime]
    revoked_at: Mapped[datetime | None]


class AlgorithmAgreementRow(Base):
    """Provider side: the agreement we hold for a requester's algorithm dataset, and the cached artifact."""

    __tablename__ = "algorithm_agreements"
    provider_id: Mapped[str] = mapped_column(String(512), primary_key=True)
    dataset_id: Mapped[str] = mapped_column(String(512), primary_key=True)
    provider_address: Mapped[str] = mapped_column(String(2048))
    agreement_id: Mapped[str | None] = mapped_column(String(512))
    negotiation_id: Mapped[str | None] = mapped_column(String(255))
    digest: Mapped[str | None] = mapped_column(String(128))
    archive_path: Mapped[str | None] = mapped_column(String(4096))
    envelope: Mapped[dict[str, Any] | None] = mapped_column(default=None)
    updated_at: Mapped[datetime]
