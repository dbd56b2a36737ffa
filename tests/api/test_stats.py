from herald.domain.models import MessageStatus
from herald.store.messages import Settle
from tests.helpers import T0

ZERO = {status.value: 0 for status in MessageStatus}


async def make_mailing(api, **fields):
    body = {"text": "t", "start_at": "2026-07-01T00:00:00Z", "end_at": "2026-07-02T00:00:00Z", **fields}
    return await (await api.post("/api/v1/mailings", json=body)).json()


async def test_statistics_count_messages_by_status(api, store):
    first, second = await make_mailing(api), await make_mailing(api)
    await store.messages.insert_planned(first["id"], [(c, T0) for c in range(1, 5)], T0)
    await store.messages.insert_planned(second["id"], [(9, T0)], T0)
    claim = await store.messages.claim(100, T0, lease_s=60)
    assert claim
    sent = next(m for m in claim.messages if m.mailing_id == first["id"])
    failed = next(m for m in claim.messages if m.mailing_id == first["id"] and m.id != sent.id)
    await store.messages.settle(
        [Settle(claim.token).sent(sent.id), Settle(claim.token).final(failed.id, MessageStatus.FAILED, "HTTP 400")], T0
    )

    stats = await (await api.get("/api/v1/mailings/stats")).json()
    assert stats["total"] == 5 and stats["by_status"] == {**ZERO, "sent": 1, "failed": 1, "sending": 3}
    rows = {row["id"]: row for row in stats["items"]}
    assert rows[first["id"]]["total"] == 4
    assert rows[first["id"]]["by_status"] == {**ZERO, "sent": 1, "failed": 1, "sending": 2}
    assert rows[second["id"]]["by_status"] == {**ZERO, "sending": 1} and rows[second["id"]]["text"] == "t"

    detail = await (await api.get(f"/api/v1/mailings/{first['id']}/stats")).json()
    assert detail["mailing"]["id"] == first["id"] and detail["total"] == 4
    assert detail["by_status"] == rows[first["id"]]["by_status"]
    assert len(detail["messages"]["items"]) == 4
    only_failed = await (await api.get(f"/api/v1/mailings/{first['id']}/stats", params={"status": "failed"})).json()
    assert [(m["id"], m["last_error"], m["attempts"]) for m in only_failed["messages"]["items"]] == [
        (failed.id, "HTTP 400", 1)
    ]


async def test_statistics_of_a_mailing_without_messages_and_of_a_missing_one(api):
    mailing = await make_mailing(api)
    detail = await (await api.get(f"/api/v1/mailings/{mailing['id']}/stats")).json()
    assert detail["total"] == 0 and detail["by_status"] == ZERO
    assert detail["messages"] == {"items": [], "next_after": None}
    assert (await api.get("/api/v1/mailings/999/stats")).status == 404


async def test_message_log_filters(api, store):
    await store.messages.insert_planned(1, [(1, T0), (2, T0)], T0)
    await store.messages.insert_planned(2, [(1, T0)], T0)
    by_client = await (await api.get("/api/v1/messages", params={"client_id": "1"})).json()
    assert {m["mailing_id"] for m in by_client["items"]} == {1, 2}
    by_mailing = await (await api.get("/api/v1/messages", params={"mailing_id": "1", "limit": "1"})).json()
    assert len(by_mailing["items"]) == 1 and by_mailing["next_after"] is not None
    assert (await api.get("/api/v1/messages", params={"status": "lost"})).status == 422
