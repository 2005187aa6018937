"""The Compute-PULL request on the wire: the computeJob member, its checks, and the compute request scope."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from connector.dataplane.release_source import open_release
from connector.dataplane.sources import SourcePolicy, open_source
from connector.dsp.messages import COMPUTE_JOB, transfer_message
from connector.persistence.tables import AgreementRow, TransferRow
from connector.services import compute_transfers as ct
from connector.services import policy_scopes as scopes
from connector.services.runtime import Runtime
from connector.settings import Settings
from contracts import InvalidMessageError
from contracts.transfer import TransferMessage
from policies import OdrlPolicyEngine

NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
B = "did:web:localhost%3A9000"
MEMBER = {"algorithm": "career-match", "algorithmProvider": "http://localhost:9000/api/dsp/2025-1",
          "parameters": {"dpEpsilon": 0.5, "minAggregationSize": 2}}


def compute_only(signer: str = B, epsilon: float = 1.0) -> dict[str, Any]:
    return {"@type": "Set", "profile": "https://w3id.org/sovra/c2d/v1", "permission": [{
        "action": "c2d:compute", "constraint": [{"and": [
            {"leftOperand": "c2d:algorithmSigner", "operator": "isAnyOf", "rightOperand": [signer]},
            {"leftOperand": "c2d:dpEpsilon", "operator": "lteq", "rightOperand": epsilon},
            {"leftOperand": "c2d:minAggregationSize", "operator": "gteq", "rightOperand": 2},
            {"leftOperand": "c2d:dpEpsilonBudget", "operator": "lteq", "rightOperand": 5}]}]}],
        "prohibition": [{"action": "distribute"}]}


def agreement(policy: dict[str, Any]) -> AgreementRow:
    return AgreementRow(id="urn:agreement:1", negotiation_id="n", role="PROVIDER", provider_id="did:web:a",
                        consumer_id=B, asset_id="a", policy=policy, signed_at=NOW - timedelta(days=1),
                        finalized=True, use_count=0)


def runtime() -> Runtime:
    return Runtime(settings=Settings(), policies=OdrlPolicyEngine(), clock=lambda: NOW)


def test_the_compute_job_member_is_parsed_and_checked() -> None:
    request = ct.parse_compute_request({COMPUTE_JOB: MEMBER})
    assert request.algorithm == "career-match" and request.parameters["dpEpsilon"] == 0.5
    assert request.member() == MEMBER


@pytest.mark.parametrize(("member", "names"), [
    (None, COMPUTE_JOB),
    ("career-match", "must be an object"),
    ({**MEMBER, "algorithm": ""}, "/algorithm"),
    ({**MEMBER, "algorithmProvider": "file:///etc/passwd"}, "/algorithmProvider"),
    ({**MEMBER, "parameters": [1]}, "/parameters must be an object"),
    ({**MEMBER, "parameters": {"x": {"nested": 1}}}, "/parameters/x"),
])
def test_a_bad_compute_job_member_is_refused_with_the_field(member: Any, names: str) -> None:
    with pytest.raises(InvalidMessageError, match=names.replace("/", ".")):
        ct.parse_compute_request({} if member is None else {COMPUTE_JOB: member})


def test_the_request_message_carries_the_member() -> None:
    row = TransferRow(id="c1", role="CONSUMER", state="REQUESTING", consumer_pid="c1", counter_party_id="did:web:a",
                      counter_party_address="http://a", agreement_id="ag", transfer_type="Compute-PULL")
    body = transfer_message(TransferMessage.REQUEST, row, message_id="urn:m", callback_address="http://b",
                            params={"computeJob": MEMBER})
    assert body["format"] == "Compute-PULL" and body[COMPUTE_JOB] == MEMBER


def test_a_compute_only_agreement_admits_a_compute_request_but_no_raw_transfer() -> None:
    rt, granted = runtime(), agreement(compute_only())
    assert ct.request_decision(rt, granted, ct.parse_compute_request({COMPUTE_JOB: MEMBER})).permitted
    assert not scopes.transfer_decision(rt, granted).permitted


def test_a_compute_request_that_breaks_a_declared_constraint_is_refused() -> None:
    rt = runtime()
    greedy = ct.parse_compute_request({COMPUTE_JOB: {**MEMBER, "parameters": {"dpEpsilon": 3}}})
    decision = ct.request_decision(rt, agreement(compute_only()), greedy)
    assert not decision.permitted and "unsatisfied" in decision.explain()


def test_an_agreement_without_the_compute_action_refuses_a_compute_request() -> None:
    read_only = {"@type": "Set", "permission": [{"action": "read"}]}
    request = ct.parse_compute_request({COMPUTE_JOB: MEMBER})
    assert not ct.request_decision(runtime(), agreement(read_only), request).permitted


@pytest.mark.anyio
async def test_the_release_source_serves_the_document_as_json(tmp_path: Any) -> None:
    document = {"jobId": "j1", "outputs": {"mean_x": 0.4}, "receipt": {"payloadType": "x"}}
    source = open_source({"type": "ComputeRelease", "document": document}, SourcePolicy(file_root=tmp_path))
    meta = await source.describe()
    body = b"".join([chunk async for chunk in source.stream()])
    assert meta.content_type == "application/json" and b'"mean_x":0.4' in body
    with pytest.raises(Exception, match="document"):
        open_release({"type": "ComputeRelease"})


def test_an_asset_cannot_name_a_compute_release_address(tmp_path: Any) -> None:
    from connector.services.assets import InvalidAssetError, check_data_address

    settings = Settings(file_root=tmp_path)
    with pytest.raises(InvalidAssetError, match="ComputeRelease is built by the connector"):
        check_data_address(settings, {"type": "ComputeRelease", "document": {"jobId": "j"}})
