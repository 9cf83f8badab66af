"""Schemathesis hooks for test_openapi_schemathesis.py (loaded through SCHEMATHESIS_HOOKS).

`idempotency-key`: Herald answers a POST that repeats a key (same token, same path, 12 h) with
the first answer, whatever the new body is (docs/api.md "Idempotency"). Schemathesis draws keys
from a small space, so two generated requests would share one and the second, invalid, body
would get the first one's 201 — a false "schema-violating request accepted". Each generated key
is therefore made unique; the header is still sent, so the idempotency path is still exercised.
"""

from __future__ import annotations

import uuid

import schemathesis


@schemathesis.hook
def before_call(ctx, case, **kwargs):  # noqa: ANN001, ANN003, ANN201
    headers = case.headers or {}
    for name in list(headers):
        if name.lower() == "idempotency-key":
            headers[name] = f"st-{uuid.uuid4().hex}"
