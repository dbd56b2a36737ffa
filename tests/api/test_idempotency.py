"""Idempotency-Key on the creates: a retry with the same key and body answers the first result again and writes
nothing; another body is a 422; keys are per operation and per caller, and last a day."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from herald.clock import FakeClock
from herald.jobs import purge_idempotency_keys
from herald.store import Store
from tests.conftest import AppFactory
from tests.oidc import IdentityProvider, oidc_config

CLIENT = {"phone": "79001234567", "timezone": "Europe/Moscow", "tag": "vip"}
MAILING = {"text": "Hello", "start_at": "2027-06-01T11:00:00Z", "end_at": "2027-06-01T18:00:00Z"}
CREATES = [("/api/v1/clients", CLIENT, "clients"), ("/api/v1/mailings", MAILING, "mailings")]
PROBLEM = "application/problem+json"


async def post(api: TestClient, path: str, body: Any, key: str | None = None, **headers: str) -> Any:
    headers = {"Content-Type": "application/json", **headers, **({"Idempotency-Key": key} if key else {})}
    return await api.post(path, data=body if isinstance(body, str) else json.dumps(body), headers=headers)


async def stored(store: Store, collection: str) -> int:
    return await getattr(store, collection)._col.count_documents({})


@pytest.mark.parametrize(("path", "body", "collection"), CREATES)
async def test_a_retry_answers_the_first_result_again_and_writes_nothing(
    api: TestClient, store: Store, path: str, body: dict[str, Any], collection: str
) -> None:
    first = await post(api, path, body, "key-1")
    assert first.status == 201 and "Idempotent-Replayed" not in first.headers
    # The same body written otherwise: other key order, other spacing.
    again = await post(api, path, json.dumps(dict(reversed(body.items())), indent=2), "key-1")
    assert again.status == 201 and again.headers["Idempotent-Replayed"] == "true"
    assert await again.json() == await first.json()
    assert await stored(store, collection) == 1


@pytest.mark.parametrize(("path", "body", "collection"), CREATES)
async def test_the_same_key_with_another_body_is_a_422_and_writes_nothing(
    api: TestClient, store: Store, path: str, body: dict[str, Any], collection: str
) -> None:
    assert (await post(api, path, body, "key-1")).status == 201
    other = {**body, "tag": "other"} if "phone" in body else {**body, "text": "Other"}
    response = await post(api, path, other, "key-1")
    assert response.status == 422 and response.content_type == PROBLEM
    assert "Idempotency-Key" in (await response.json())["errors"]
    assert await stored(store, collection) == 1


async def test_a_key_belongs_to_its_operation(api: TestClient, store: Store) -> None:
    assert (await post(api, "/api/v1/clients", CLIENT, "shared")).status == 201
    assert (await post(api, "/api/v1/mailings", MAILING, "shared")).status == 201
    assert await stored(store, "clients") == 1 and await stored(store, "mailings") == 1


async def test_a_key_is_new_again_after_a_day(api: TestClient, store: Store, clock: FakeClock) -> None:
    first = await (await post(api, "/api/v1/mailings", MAILING, "daily")).json()
    clock.advance(hours=23, minutes=59)
    assert (await (await post(api, "/api/v1/mailings", MAILING, "daily")).json())["id"] == first["id"]
    clock.advance(minutes=1)
    later = await post(api, "/api/v1/mailings", MAILING, "daily")
    assert later.status == 201 and "Idempotent-Replayed" not in later.headers
    assert (await later.json())["id"] != first["id"] and await stored(store, "mailings") == 2
    # The hourly job drops what has expired, and only that.
    clock.advance(hours=1)
    assert await purge_idempotency_keys(store, clock) == 0
    clock.advance(hours=23, seconds=1)
    assert await purge_idempotency_keys(store, clock) == 1
    assert await store.idempotency._col.count_documents({}) == 0


async def test_a_refusal_is_an_answer_and_is_given_again(api: TestClient, store: Store) -> None:
    assert (await post(api, "/api/v1/clients", CLIENT)).status == 201
    taken = {**CLIENT, "tag": "new"}
    first = await post(api, "/api/v1/clients", taken, "taken-phone")
    assert first.status == 409
    await store.clients.delete((await store.clients.page(after=None, limit=1))[0].id)
    again = await post(api, "/api/v1/clients", taken, "taken-phone")
    assert again.status == 409 and again.headers["Idempotent-Replayed"] == "true"
    assert await again.json() == await first.json()
    assert await stored(store, "clients") == 0


@pytest.mark.parametrize("key", ["", "x" * 256, "ключ", "with space"])
async def test_a_malformed_key_is_a_400(api: TestClient, store: Store, key: str) -> None:
    response = await api.post("/api/v1/clients", json=CLIENT, headers={"Idempotency-Key": key})
    assert response.status == 400 and response.content_type == PROBLEM
    assert "Idempotency-Key" in (await response.json())["errors"]
    assert await stored(store, "clients") == 0


async def test_keys_of_1_to_255_visible_characters_are_taken(api: TestClient, store: Store) -> None:
    for number, key in enumerate(["!", "~" * 255, "550e8400-e29b-41d4-a716-446655440000"]):
        response = await post(api, "/api/v1/clients", {**CLIENT, "phone": f"7900000000{number}"}, key)
        assert response.status == 201, key
    assert await store.idempotency._col.count_documents({}) == 3


async def test_an_invalid_body_takes_no_key(api: TestClient, store: Store) -> None:
    refused = await post(api, "/api/v1/clients", {**CLIENT, "phone": "123"}, "fixed-later")
    assert refused.status == 422 and await store.idempotency._col.count_documents({}) == 0
    # The corrected body may use the same key: nothing held it.
    assert (await post(api, "/api/v1/clients", CLIENT, "fixed-later")).status == 201


async def test_racing_requests_with_one_key_create_once(api: TestClient, store: Store) -> None:
    answers = await asyncio.gather(*(post(api, "/api/v1/mailings", MAILING, "race") for _ in range(5)))
    statuses = sorted(answer.status for answer in answers)
    assert statuses.count(201) >= 1 and set(statuses) <= {201, 409}
    created = {(await answer.json())["id"] for answer in answers if answer.status == 201}
    assert len(created) == 1 and await stored(store, "mailings") == 1


async def test_without_a_key_every_request_creates(api: TestClient, store: Store) -> None:
    assert (await post(api, "/api/v1/mailings", MAILING)).status == 201
    assert (await post(api, "/api/v1/mailings", MAILING)).status == 201
    assert await stored(store, "mailings") == 2


async def test_a_key_belongs_to_its_caller(
    start_herald: AppFactory, config: Any, idp: IdentityProvider, store: Store
) -> None:
    api = await start_herald(auth=vars(oidc_config(config, idp).auth))
    ada = {"Authorization": f"Bearer {idp.token(sub='ada', roles=['admin'])}"}
    bob = {"Authorization": f"Bearer {idp.token(sub='bob', roles=['admin'])}"}
    first = await post(api, "/api/v1/mailings", MAILING, "mine", **ada)
    other = await post(api, "/api/v1/mailings", MAILING, "mine", **bob)
    assert first.status == other.status == 201 and "Idempotent-Replayed" not in other.headers
    assert await stored(store, "mailings") == 2
