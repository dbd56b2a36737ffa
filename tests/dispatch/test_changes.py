"""What happens to the outbox when clients and mailings change while a mailing runs."""

import asyncio
from datetime import datetime

from herald.store.messages import message_id
from tests.helpers import add_clients, add_mailing, counts, wait_counts

# At T0 it is 15:00 in Moscow: a 16:00-18:00 window holds messages pending until the clock moves.
LATER_TODAY = {"start": "16:00", "end": "18:00"}
WINDOW_OPENS = datetime.fromisoformat("2026-06-01T13:00:00+00:00")


async def test_a_new_text_applies_to_messages_not_yet_sent(api, store, probe, clock):
    clients = await add_clients(api, 2)
    mailing = await add_mailing(api, text="Old", send_window=LATER_TODAY)
    await wait_counts(store, mailing["id"], {"pending": 2})
    response = await api.patch(f"/api/v1/mailings/{mailing['id']}", json={"text": "New"})
    assert response.status == 200
    clock.set(WINDOW_OPENS)
    await wait_counts(store, mailing["id"], {"sent": 2})
    assert {probe.state.ledger.bodies[message_id(mailing["id"], c["id"])]["text"] for c in clients} == {"New"}


async def test_a_new_filter_adds_new_matches_and_cancels_the_rest(api, store, probe, clock):
    (vip,) = await add_clients(api, 1, tag="vip")
    (regular,) = await add_clients(api, 1, start=1, tag="regular")
    mailing = await add_mailing(api, filter={"tags": ["vip"]}, send_window=LATER_TODAY)
    await wait_counts(store, mailing["id"], {"pending": 1})
    await api.patch(f"/api/v1/mailings/{mailing['id']}", json={"filter": {"tags": ["regular"]}})
    await wait_counts(store, mailing["id"], {"pending": 1, "cancelled": 1})
    clock.set(WINDOW_OPENS)
    await wait_counts(store, mailing["id"], {"sent": 1, "cancelled": 1})
    assert list(probe.accepted()) == [message_id(mailing["id"], regular["id"])]
    # ...and back: the cancelled message comes back to life, the sent one stays sent.
    await api.patch(f"/api/v1/mailings/{mailing['id']}", json={"filter": {}})
    await wait_counts(store, mailing["id"], {"sent": 2})
    assert probe.accepted() == {message_id(mailing["id"], c["id"]): 1 for c in (vip, regular)}


async def test_moving_the_end_earlier_applies_at_once(api, store, probe, clock):
    await add_clients(api, 2)
    mailing = await add_mailing(api, send_window=LATER_TODAY)
    await wait_counts(store, mailing["id"], {"pending": 2})
    await api.patch(f"/api/v1/mailings/{mailing['id']}", json={"end_at": "2026-06-01T12:30:00Z"})
    clock.set(WINDOW_OPENS)  # the window opens after the new end
    await wait_counts(store, mailing["id"], {"expired": 2})
    assert probe.state.ledger.requests == 0


async def test_moving_the_end_later_gives_expired_messages_another_chance(api, store, probe):
    await add_clients(api, 1)
    # Throttled until after the end: the dispatcher expires the message at once, with no clock change.
    probe.state.faults.update({"retry_after_s": 120})
    probe.fail_next("429")
    mailing = await add_mailing(api, end_at="2026-06-01T12:01:00Z")
    await wait_counts(store, mailing["id"], {"expired": 1})
    await api.patch(f"/api/v1/mailings/{mailing['id']}", json={"end_at": "2026-06-01T13:00:00Z"})
    await wait_counts(store, mailing["id"], {"sent": 1})
    assert probe.state.ledger.requests == 2


async def test_deleting_a_mailing_cancels_what_was_not_sent(api, store, probe, clock):
    await add_clients(api, 3)
    mailing = await add_mailing(api, send_window=LATER_TODAY)
    await wait_counts(store, mailing["id"], {"pending": 3})
    assert (await api.delete(f"/api/v1/mailings/{mailing['id']}")).status == 204
    await wait_counts(store, mailing["id"], {"cancelled": 3})
    clock.set(WINDOW_OPENS)
    await asyncio.sleep(0.2)
    assert probe.state.ledger.requests == 0


async def test_a_client_created_or_changed_to_match_a_running_mailing_gets_its_message(api, store, probe):
    mailing = await add_mailing(api, filter={"tags": ["vip"]})
    (newcomer,) = await add_clients(api, 1, tag="vip")
    (convert,) = await add_clients(api, 1, start=1, tag="regular")
    await wait_counts(store, mailing["id"], {"sent": 1})
    await api.patch(f"/api/v1/clients/{convert['id']}", json={"tag": "vip"})
    await wait_counts(store, mailing["id"], {"sent": 2})
    assert set(probe.accepted()) == {message_id(mailing["id"], c["id"]) for c in (newcomer, convert)}


async def test_a_client_that_stops_matching_or_is_deleted_loses_its_unsent_message(api, store, probe, clock):
    (leaver, deleted, stayer) = await add_clients(api, 3, tag="vip")
    mailing = await add_mailing(api, filter={"tags": ["vip"]}, send_window=LATER_TODAY)
    await wait_counts(store, mailing["id"], {"pending": 3})
    await api.patch(f"/api/v1/clients/{leaver['id']}", json={"tag": "regular"})
    assert (await api.delete(f"/api/v1/clients/{deleted['id']}")).status == 204
    await wait_counts(store, mailing["id"], {"pending": 1, "cancelled": 2})
    clock.set(WINDOW_OPENS)
    await wait_counts(store, mailing["id"], {"sent": 1, "cancelled": 2})
    assert list(probe.accepted()) == [message_id(mailing["id"], stayer["id"])]


async def test_a_changed_phone_is_used_for_messages_not_yet_sent(api, store, probe, clock):
    (client,) = await add_clients(api, 1)
    mailing = await add_mailing(api, send_window=LATER_TODAY)
    await wait_counts(store, mailing["id"], {"pending": 1})
    await api.patch(f"/api/v1/clients/{client['id']}", json={"phone": "79991112233"})
    clock.set(WINDOW_OPENS)
    await wait_counts(store, mailing["id"], {"sent": 1})
    assert probe.state.ledger.bodies[message_id(mailing["id"], client["id"])]["phone"] == 79991112233
    assert await counts(store, mailing["id"]) == {"sent": 1}
