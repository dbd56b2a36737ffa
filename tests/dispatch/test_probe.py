"""The emulator of the external API behaves like the real one, and its faults do what they say."""

import aiohttp
import jwt
import pytest

from herald.probe.app import make_token


@pytest.fixture
async def send(probe, config):
    async with aiohttp.ClientSession() as session:

        async def post(msg_id, body=None, token=config.sender.token):
            headers = {"Authorization": f"Bearer {token}"} if token is not None else {}
            body = {"id": msg_id, "phone": 79001234567, "text": "hi"} if body is None else body
            async with session.post(f"{probe.url}/send/{msg_id}", json=body, headers=headers) as response:
                return response.status, await response.read(), response.headers

        yield post


async def test_a_valid_request_is_accepted_and_recorded(send, probe):
    status, body, _ = await send(7)
    assert (status, body) == (200, b'{"code": 0, "message": "OK"}')
    assert probe.accepted() == {7: 1} and probe.state.ledger.summary()["duplicates"] == 0
    await send(7)
    assert probe.state.ledger.summary()["duplicates"] == 1


@pytest.mark.parametrize(
    "token", [None, "not-a-jwt", jwt.encode({"sub": "x"}, "another-secret-of-32-bytes-at-least!", algorithm="HS256")]
)
async def test_a_missing_or_foreign_token_is_401(send, token):
    assert (await send(7, token=token))[0] == 401


@pytest.mark.parametrize(
    "body",
    [
        {"id": 8, "phone": 79001234567, "text": "hi"},
        {"id": 7, "phone": "7900", "text": "hi"},
        {"id": 7, "phone": 79001234567},
        {"id": 7, "phone": 1, "text": "x", "extra": 1},
    ],
)
async def test_a_malformed_body_is_400(send, body):
    assert (await send(7, body=body))[0] == 400


async def test_scripted_faults_come_in_order_then_stop(send, probe):
    probe.fail_next("429")
    probe.fail_next("malformed")
    status, _, headers = await send(1)
    assert status == 429 and headers["Retry-After"] == "1"
    status, body, _ = await send(1)
    assert status == 200 and body != b'{"code": 0, "message": "OK"}'
    assert (await send(1))[0] == 200
    assert probe.accepted() == {1: 1}


async def test_a_message_scripted_by_its_id_fails_alone_and_first(send, probe):
    probe.state.faults.update({"messages": {"9": [{"fault": "500", "count": 2}]}, "script": [{"fault": "503"}]})
    assert [(await send(msg_id))[0] for msg_id in (9, 8, 9, 9, 8)] == [500, 503, 500, 200, 200]
    with pytest.raises(ValueError):
        probe.state.faults.update({"messages": {"x": [{"fault": "500"}]}})


async def test_faults_change_at_runtime_over_http(probe, config):
    async with aiohttp.ClientSession() as session:
        base = str(probe.server.make_url("/_probe"))
        async with session.put(f"{base}/faults", json={"outage": True}) as response:
            assert (await response.json())["outage"] is True
        async with session.put(f"{base}/faults", json={"nonsense": 1}) as response:
            assert response.status == 400
        headers = {"Authorization": f"Bearer {make_token(config.probe.jwt_secret)}"}
        async with session.post(f"{probe.url}/send/1", json={"id": 1, "phone": 7, "text": "x"}, headers=headers) as r:
            assert r.status == 503
        async with session.get(f"{base}/stats") as response:
            assert (await response.json())["by_outcome"] == {"503": 1}
        async with session.post(f"{base}/reset") as response:
            assert response.status == 200
        async with session.get(f"{base}/stats") as response:
            assert (await response.json())["requests"] == 0
