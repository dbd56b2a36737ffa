"""The external API client: one delivery attempt, bounded by the mailing's end, classified into an Outcome."""

from __future__ import annotations

import asyncio
import logging
import time
from datetime import datetime

import aiohttp
from aiohttp_retry import ExponentialRetry, RetryClient

from herald.clock import Clock
from herald.config import SenderConfig
from herald.domain.outcome import Outcome, classify, connection_failed, parse_retry_after, timed_out
from herald.metrics import Metrics

log = logging.getLogger(__name__)

# Below this much time left there is no point starting a request: it could not finish before the end.
MIN_REQUEST_S = 0.05


class Sender:
    def __init__(self, session: aiohttp.ClientSession, config: SenderConfig, clock: Clock, metrics: Metrics) -> None:
        self._config = config
        self._clock = clock
        self._metrics = metrics
        self._base = config.url.rstrip("/")
        self._headers = {"Authorization": f"Bearer {config.token}"}
        # Inline retries only for connection blips (refused, reset before an answer). Every status code is
        # classified by us and retried durably, with backoff stored in the database.
        self._client = RetryClient(
            client_session=session,
            raise_for_status=False,
            retry_options=ExponentialRetry(
                attempts=config.inline_attempts,
                start_timeout=0.05,
                max_timeout=0.5,
                exceptions={aiohttp.ClientConnectionError},
                retry_all_server_errors=False,
            ),
        )

    @property
    def timeout_s(self) -> float:
        return self._config.timeout_s

    async def send(self, message_id: int, phone: str, text: str, deadline: datetime) -> Outcome:
        """Deliver one message; never starts a request at or after `deadline`, nor lets one run past it."""
        left = (deadline - self._clock.now()).total_seconds()
        if left < MIN_REQUEST_S:
            return timed_out("no time left before the mailing's end")
        budget = min(self._config.timeout_s, left)
        timeout = aiohttp.ClientTimeout(total=budget, sock_connect=min(self._config.connect_timeout_s, budget))
        body = {"id": message_id, "phone": int(phone), "text": text}
        started = time.perf_counter()
        try:
            async with asyncio.timeout(budget):
                async with self._client.post(
                    f"{self._base}/send/{message_id}", json=body, headers=self._headers, timeout=timeout
                ) as response:
                    payload = await response.read()
                    retry_after = parse_retry_after(response.headers.get("Retry-After"), self._clock.now())
                    outcome = classify(response.status, payload, retry_after)
                    status: int | None = response.status
        except TimeoutError:
            outcome, status = timed_out(f"no answer within {budget:.2f}s"), None
        except aiohttp.ClientError as exc:
            outcome, status = connection_failed(f"{type(exc).__name__}: {exc}"), None
        latency_s = time.perf_counter() - started
        self._metrics.external_request(outcome.reason, latency_s)
        log.info(
            "external API answered",
            extra={
                "outcome": outcome.reason,
                "http_status": status,
                "latency_ms": round(latency_s * 1000, 1),
                **({"error": outcome.detail} if outcome.detail else {}),
            },
        )
        return outcome
