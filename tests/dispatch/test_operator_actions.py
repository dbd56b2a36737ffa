"""What operators do with a running mailing: import clients into it, retry what failed."""

from __future__ import annotations

from datetime import timedelta

from herald.store.messages import message_id
from tests.api.test_imports import import_file
from tests.helpers import add_clients, add_mailing, wait_counts


async def test_imported_clients_join_the_running_mailings_they_match(api, store, probe):
    mailing = await add_mailing(api, filter={"tags": ["vip"]})
    body = "phone,operator_code,tag,timezone\n" + "".join(
        f"7900{i:07d},,{'vip' if i % 2 else 'other'},UTC\n" for i in range(120)
    )
    result = await import_file(api, body)
    assert result["created"] == 120
    await wait_counts(store, mailing["id"], {"sent": 60})


async def test_retry_failed_gives_failed_messages_a_fresh_budget_until_the_end(api, store, probe, clock):
    (client,) = await add_clients(api, 1)
    probe.fail_next("400")
    mailing = await add_mailing(api)
    await wait_counts(store, mailing["id"], {"failed": 1})
    response = await api.post(f"/api/v1/mailings/{mailing['id']}/retry-failed")
    assert (response.status, await response.json()) == (200, {"retried": 1})
    await wait_counts(store, mailing["id"], {"sent": 1})
    (message,) = await store.messages.page(limit=1, mailing_id=mailing["id"])
    assert message.id == message_id(mailing["id"], client["id"]) and message.attempts == 1
    clock.advance(timedelta(hours=7).total_seconds())
    response = await api.post(f"/api/v1/mailings/{mailing['id']}/retry-failed")
    assert response.status == 409 and response.content_type == "application/problem+json"
