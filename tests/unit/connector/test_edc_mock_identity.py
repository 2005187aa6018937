"""The EDC iam-mock identity mode: EDC's JSON token shape both ways, and only the configured peer gets in."""

import json

import pytest

from connector.identity_service import EdcMockIdentityService, Participant
from identity.errors import InvalidCredentialsError, MalformedTokenError, MissingTokenError

OWN_URL = "http://localhost:9000"
EDC_ID = "edc-peer"


def _service() -> EdcMockIdentityService:
    return EdcMockIdentityService("did:web:localhost%3A9000", EDC_ID, OWN_URL)


def _edc_token(client_id: str = EDC_ID, audience: object = OWN_URL + "/api/dsp/2025-1") -> str:
    # What EDC 0.14's MockIdentityService writes with Jackson: region, audience (the address it calls), clientId.
    return json.dumps({"region": "eu", "audience": audience, "clientId": client_id})


def test_outbound_value_is_the_json_object_edc_reads_the_participant_from():
    sent = json.loads(_service().outbound_authorization("edc-peer"))

    assert sent == {"region": "eu", "audience": "edc-peer", "clientId": "did:web:localhost%3A9000"}


@pytest.mark.parametrize("audience", [OWN_URL, OWN_URL + "/", OWN_URL + "/api/dsp/2025-1",
                                      OWN_URL + "/api/dsp/2025-1/negotiations/urn:uuid:1/offers"])
def test_the_peer_is_accepted_when_the_token_is_addressed_to_us(audience):
    assert _service().authenticate(_edc_token(audience=audience)) == Participant(id=EDC_ID)


@pytest.mark.parametrize("audience", ["http://localhost:9001/api/dsp", "http://localhost:9000evil", None, 5])
def test_a_token_addressed_elsewhere_is_refused(audience):
    with pytest.raises(InvalidCredentialsError, match="audience"):
        _service().authenticate(_edc_token(audience=audience))


@pytest.mark.parametrize("client_id", ["someone-else", "EDC-PEER", ""])
def test_any_other_client_id_is_refused(client_id):
    with pytest.raises(InvalidCredentialsError, match="clientId"):
        _service().authenticate(_edc_token(client_id=client_id))


@pytest.mark.parametrize("value", ["edc-peer", "Bearer x", "[1]", '{"clientId": 3}', '{"region": "eu"}',
                                   "{" * 5000])
def test_values_that_are_not_an_iam_mock_token_are_malformed(value):
    with pytest.raises(MalformedTokenError):
        _service().authenticate(value)


@pytest.mark.parametrize("value", [None, "", "  "])
def test_a_missing_header_is_refused(value):
    with pytest.raises(MissingTokenError):
        _service().authenticate(value)
