"""Schemathesis hooks for the contract tests (named in schemathesis.toml): how to send an NDJSON body, and a fresh
Idempotency-Key for each new request."""

from __future__ import annotations

import json
import uuid
from typing import Any

import schemathesis
from schemathesis.generation.meta import CoverageScenario

from herald.api.idempotency import HEADER, KEY


@schemathesis.serializer("application/x-ndjson")
def ndjson(ctx: Any, value: Any) -> bytes:
    # The import's NDJSON body is a string in the document; negative cases may give other JSON values.
    return (value if isinstance(value, str) else json.dumps(value)).encode()


@schemathesis.hook
def before_call(ctx: Any, case: Any, **kwargs: Any) -> None:
    """A client sends a new key with each new request and the same key only when it retries one. Generated keys
    repeat ("0", "!") across different bodies, which the API rightly refuses (422) or answers with the first
    result; retries are tests/api/test_idempotency.py's subject. A malformed key is left as it is, for the API to
    refuse, and so is a case made to leave a header out (an edit would make Schemathesis send it after all)."""
    data = case.meta.phase.data if case.meta else None
    if getattr(data, "scenario", None) == CoverageScenario.MISSING_PARAMETER:
        return
    if case.headers and KEY.match(case.headers.get(HEADER, "")):
        case.headers[HEADER] = uuid.uuid4().hex
