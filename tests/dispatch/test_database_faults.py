"""Database errors between claim and settle: a busy database that refuses a command, a connection reset after the
database ran a command but before Herald heard, and an answer that never comes. No message is lost, none is sent
twice, and none waits longer than a lease past its due time."""

from collections import Counter
from datetime import timedelta
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from herald.config import Config
from tests.dbproxy import DatabaseProxy
from tests.helpers import T0, add_mailing, insert_clients, wait_counts


def claims(command: dict[str, Any]) -> bool:
    """The dispatcher's claim: a conditional update of messages that counts an attempt."""
    return command.get("update") == "messages" and any("$inc" in s["u"] for s in command.get("updates", []))


def settles(command: dict[str, Any]) -> bool:
    """The dispatcher's record of outcomes: an update of messages held under a claim's token."""
    return command.get("update") == "messages" and any("lease_owner" in s["q"] for s in command.get("updates", []))


async def test_messages_survive_database_errors_between_claim_and_settle(
    config: Config, mongo_base_url: str, start_herald, db, store, probe, clock
):
    upstream = urlsplit(mongo_base_url)
    proxy = await DatabaseProxy((upstream.hostname or "127.0.0.1", upstream.port or 27017)).start()
    try:
        proxied = urlunsplit(urlsplit(config.mongo.url)._replace(netloc=f"127.0.0.1:{proxy.port}"))
        api = await start_herald(mongo={"url": proxied, "timeout_s": 2.0}, dispatch={"batch_size": 10})
        await insert_clients(db, 40)
        # Planned now, due when the window opens at 13:00 (the clients' zone is UTC).
        mailing = await add_mailing(api, send_window={"start": "13:00", "end": "14:00"})
        await wait_counts(store, mailing["id"], {"pending": 40})

        refused_claim = proxy.inject("fail", claims)
        unheard_claim = proxy.inject("lose_reply", claims)
        unanswered_claim = proxy.inject("hold_reply", claims)
        refused_settle = proxy.inject("fail", settles)
        unheard_settle = proxy.inject("lose_reply", settles)
        due = T0.replace(hour=13)
        clock.set(due)

        # The refused claim changed nothing; the unheard and the unanswered ones hold 10 messages each under a
        # lease nobody uses.
        await wait_counts(store, mailing["id"], {"sent": 20, "sending": 20}, timeout=15)
        rules = (refused_claim, unheard_claim, unanswered_claim, refused_settle, unheard_settle)
        assert [rule.fired for rule in rules] == [1] * 5
        clock.advance(config.dispatch.lease_s)
        await wait_counts(store, mailing["id"], {"sent": 40})

        assert set(probe.accepted().values()) == {1} and len(probe.accepted()) == 40
        # Twenty went out when due; the twenty of the two claims Herald never heard of exactly one lease later.
        arrivals = Counter(at for _, at, _ in probe.state.ledger.arrivals)
        assert arrivals == {due: 20, due + timedelta(seconds=config.dispatch.lease_s): 20}
    finally:
        await proxy.stop()
