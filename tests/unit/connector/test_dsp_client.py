"""Which answers of a peer the outbox retries and which end the process."""

import httpx
import pytest

from connector.dsp.client import DspClient, PeerRejectedError, PeerUnavailableError


def _client(status: int) -> DspClient:
    transport = httpx.MockTransport(lambda request: httpx.Response(status, json={"@type": "TransferError"}))
    return DspClient(transport, lambda audience: "token")


@pytest.mark.parametrize("status", [408, 409, 425, 429, 500, 503])
def test_transient_answers_are_retried(status: int) -> None:
    # 409 included: EDC answers a start that overtakes its own REQUESTED bookkeeping with 409 Conflict.
    with pytest.raises(PeerUnavailableError):
        _client(status).post("http://peer.test/transfers/1/start", {}, audience="peer")


@pytest.mark.parametrize("status", [400, 401, 403, 404, 422])
def test_refusals_are_final(status: int) -> None:
    with pytest.raises(PeerRejectedError):
        _client(status).post("http://peer.test/transfers/1/start", {}, audience="peer")
