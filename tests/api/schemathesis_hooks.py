"""Schemathesis hooks for the contract tests (loaded through SCHEMATHESIS_HOOKS): how to send an NDJSON body."""

from __future__ import annotations

import json
from typing import Any

import schemathesis


@schemathesis.serializer("application/x-ndjson")
def ndjson(ctx: Any, value: Any) -> bytes:
    # The import's NDJSON body is a string in the document; negative cases may give other JSON values.
    return (value if isinstance(value, str) else json.dumps(value)).encode()
