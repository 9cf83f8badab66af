"""Herald against the official `svix` Python SDK and the `standardwebhooks` verifier.

Every API call goes through the SDK; plain HTTP (httpx) is used only where the SDK has no way to
express the request (raw payload bytes, the health answer's body). Deliveries are received by a
real HTTP server (see conftest.Receiver) and checked with both official verifiers.
"""

from __future__ import annotations

import base64
import dataclasses
import json
import os
import typing as t
from datetime import datetime, timedelta, timezone

import pydantic_core
import pytest
from standardwebhooks.webhooks import Webhook as StdWebhook
from standardwebhooks.webhooks import WebhookVerificationError as StdVerificationError
from svix.api import (
    ApplicationCreateOptions,
    ApplicationIn,
    ApplicationListOptions,
    ApplicationOut,
    ApplicationPatch,
    AppPortalAccessIn,
    BackgroundTaskType,
    EndpointHeadersIn,
    EndpointHeadersPatchIn,
    EndpointIn,
    EndpointListOptions,
    EndpointOut,
    EndpointPatch,
    EndpointSecretRotateIn,
    EventTypeIn,
    EventTypeListOptions,
    EventTypePatch,
    EventTypeUpsertIn,
    MessageAttemptListByMsgOptions,
    MessageAttemptTriggerType,
    MessageCreateOptions,
    MessageGetOptions,
    MessageIn,
    MessageListOptions,
    MessageOut,
    MessageStatus,
    MessageStatusText,
    RecoverIn,
    Svix,
)
from svix.exceptions import HttpError, HTTPValidationError
from svix.webhooks import Webhook as SvixWebhook
from svix.webhooks import WebhookVerificationError as SvixVerificationError

from conftest import HeraldServer, ReceivedRequest, Receiver, make_svix, uniq, wait_for

# Bounded waits (seconds). The server runs with HERALD_RETRY_SCHEDULE=[1,1,1].
DELIVERY_TIMEOUT = 20.0
RETRY_TIMEOUT = 25.0

# Every secret value the suite handles, checked against the server log by the last test.
SECRETS_SEEN: t.Set[str] = set()
SENSITIVE_HEADER_VALUE = "Bearer s3cr3t-value"


# --------------------------------------------------------------------------------------------
# helpers
# --------------------------------------------------------------------------------------------


def expect_error(status: int, fn: t.Callable[..., t.Any], *args: t.Any, **kwargs: t.Any) -> Exception:
    """Call `fn`; it must raise the SDK's error for HTTP `status` (HttpError, or
    HTTPValidationError for 422). Anything else (success, a parse error because the error body
    does not have the Svix shape) fails the test with a clear message."""
    try:
        result = fn(*args, **kwargs)
    except (HttpError, HTTPValidationError) as e:
        assert e.status_code == status, f"expected HTTP {status}, got HTTP {e.status_code}: {e!r}"
        if status == 422:
            assert isinstance(e, HTTPValidationError), f"422 must be raised as HTTPValidationError, got {e!r}"
        else:
            assert isinstance(e, HttpError), f"HTTP {status} must be raised as HttpError, got {e!r}"
        return e
    except Exception as e:  # noqa: BLE001
        pytest.fail(
            f"expected the SDK to raise an HTTP {status} error; it raised {type(e).__name__}: {e} "
            f"(the error answer probably lacks the Svix error shape)"
        )
    pytest.fail(f"expected HTTP {status}, but the call succeeded and returned {result!r}")


def expected_body(payload: t.Dict[str, t.Any]) -> bytes:
    """The exact bytes the SDK sends as `payload` inside MessageIn (pydantic's compact JSON)."""
    return pydantic_core.to_json(payload)


def sign(secret: str, req: ReceivedRequest) -> str:
    ts = datetime.fromtimestamp(int(req.headers["webhook-timestamp"]), tz=timezone.utc)
    return StdWebhook(secret).sign(req.headers["webhook-id"], ts, req.body.decode())


def verify_both(secret: str, req: ReceivedRequest) -> t.Any:
    """Verify a received request with both official verifiers; return the parsed body."""
    parsed = StdWebhook(secret).verify(req.body, req.headers)
    SvixWebhook(secret).verify(req.body, req.headers)  # raises on failure
    return parsed


def signatures(req: ReceivedRequest) -> t.List[str]:
    return req.headers["webhook-signature"].split(" ")


def by_webhook_id(reqs: t.Iterable[ReceivedRequest], msg_id: str) -> t.List[ReceivedRequest]:
    return [r for r in reqs if r.headers.get("webhook-id") == msg_id]


def new_app(svix: Svix, prefix: str = "app") -> ApplicationOut:
    return svix.application.create(ApplicationIn(name=f"python suite {prefix}", uid=uniq(prefix)))


def new_endpoint(
    svix: Svix, receiver: Receiver, app_id: str, **kwargs: t.Any
) -> t.Tuple[EndpointOut, str, str]:
    """Create an endpoint at a fresh receiver path; return (endpoint, path, secret)."""
    path = receiver.new_path()
    ep = svix.endpoint.create(app_id, EndpointIn(url=receiver.url(path), **kwargs))
    secret = svix.endpoint.get_secret(app_id, ep.id).key
    SECRETS_SEEN.add(secret)
    return ep, path, secret


def attempts_by_msg(svix: Svix, app_id: str, msg_id: str, **kwargs: t.Any) -> t.List[t.Any]:
    return svix.message_attempt.list_by_msg(app_id, msg_id, MessageAttemptListByMsgOptions(**kwargs)).data


def stats_equal(svix: Svix, app_id: str, ep_id: str, **expected: int) -> t.Any:
    """Predicate for wait_for: the endpoint's stats, when they match `expected`."""
    stats = svix.endpoint.get_stats(app_id, ep_id)
    return stats if all(getattr(stats, k) == v for k, v in expected.items()) else None


def collect(list_fn: t.Callable[[t.Any], t.Any], make_options: t.Callable[[t.Optional[str]], t.Any]) -> t.List[t.Any]:
    """Follow a list's iterator to the end (bounded)."""
    items: t.List[t.Any] = []
    iterator: t.Optional[str] = None
    for _ in range(100):
        page = list_fn(make_options(iterator))
        items.extend(page.data)
        if page.done:
            return items
        assert page.iterator, "a page with done=false must carry an iterator"
        iterator = page.iterator
    pytest.fail("list did not finish within 100 pages")


def now_utc() -> datetime:
    return datetime.now(tz=timezone.utc)


# --------------------------------------------------------------------------------------------
# health
# --------------------------------------------------------------------------------------------


def test_health(svix: Svix, raw_http: t.Any) -> None:
    svix.health.get()  # raises on a non-2xx answer
    # The SDK discards the body; the contract fixes it.
    r = raw_http.get("/api/v1/health")
    assert r.status_code == 200
    assert r.json().get("status") == "ok"


# --------------------------------------------------------------------------------------------
# applications
# --------------------------------------------------------------------------------------------


def test_application_create_get_list_update_delete(svix: Svix) -> None:
    uid = uniq("crud")
    app = svix.application.create(ApplicationIn(name="Crud app", uid=uid, metadata={"tier": "gold"}))
    assert app.id.startswith("app_")
    assert app.uid == uid
    assert app.name == "Crud app"
    assert app.metadata == {"tier": "gold"}
    assert app.created_at <= app.updated_at

    got = svix.application.get(app.id)
    assert (got.id, got.uid, got.name, got.metadata) == (app.id, uid, "Crud app", {"tier": "gold"})
    # the uid works wherever an app id does
    assert svix.application.get(uid).id == app.id

    listed = collect(svix.application.list, lambda it: ApplicationListOptions(limit=100, iterator=it))
    assert app.id in [a.id for a in listed]

    # PUT (SDK: upsert) replaces the application
    put = svix.application.upsert(app.id, ApplicationIn(name="Crud app renamed", uid=uid, metadata={"tier": "silver"}))
    assert put.id == app.id
    assert put.name == "Crud app renamed"
    assert put.metadata == {"tier": "silver"}
    assert put.updated_at >= app.updated_at

    # PATCH changes only the fields present
    patched = svix.application.patch(app.id, ApplicationPatch(metadata={"tier": "bronze", "region": "eu"}))
    assert patched.id == app.id
    assert patched.name == "Crud app renamed"
    assert patched.uid == uid
    assert patched.metadata == {"tier": "bronze", "region": "eu"}
    assert svix.application.get(app.id).metadata == {"tier": "bronze", "region": "eu"}

    svix.application.delete(app.id)
    expect_error(404, svix.application.get, app.id)
    listed = collect(svix.application.list, lambda it: ApplicationListOptions(limit=100, iterator=it))
    assert app.id not in [a.id for a in listed]


def test_application_get_or_create(svix: Svix) -> None:
    uid = uniq("goc")
    first = svix.application.get_or_create(ApplicationIn(name="first name", uid=uid))
    assert first.uid == uid
    assert first.name == "first name"
    second = svix.application.get_or_create(ApplicationIn(name="second name", uid=uid))
    assert second.id == first.id
    assert second.name == "first name", "get_or_create must return the existing app unchanged"
    # without get_if_exists the same uid is a conflict
    err = expect_error(409, svix.application.create, ApplicationIn(name="third", uid=uid))
    assert err.code == "conflict"


def test_application_idempotency_key(svix: Svix) -> None:
    key = uniq("idem")
    name = uniq("idempotent app")
    a = svix.application.create(ApplicationIn(name=name), ApplicationCreateOptions(idempotency_key=key))
    b = svix.application.create(ApplicationIn(name=name), ApplicationCreateOptions(idempotency_key=key))
    assert a.id == b.id, "same idempotency-key must return the first answer again"
    listed = collect(svix.application.list, lambda it: ApplicationListOptions(limit=100, iterator=it))
    assert [x.id for x in listed if x.name == name] == [a.id], "no second application may be created"


def test_application_pagination_limit_2(svix: Svix) -> None:
    created = [svix.application.create(ApplicationIn(name=f"page {i}", uid=uniq(f"page{i}"))) for i in range(5)]
    created_ids = {a.id for a in created}

    full = svix.application.list(ApplicationListOptions(limit=250))
    assert full.done, "suite assumes fewer than 250 apps"
    full_ids = [a.id for a in full.data]
    assert created_ids <= set(full_ids)
    assert len(full_ids) == len(set(full_ids))

    pages = []
    iterator: t.Optional[str] = None
    for _ in range(len(full_ids) + 2):
        page = svix.application.list(ApplicationListOptions(limit=2, iterator=iterator))
        pages.append(page)
        assert len(page.data) <= 2, f"limit=2 returned {len(page.data)} items"
        if page.done:
            break
        assert len(page.data) == 2, "a page that is not the last must be full"
        assert page.iterator, "a page with done=false must carry an iterator"
        iterator = page.iterator
    else:
        pytest.fail("pagination never reported done=true")

    paged_ids = [a.id for p in pages for a in p.data]
    assert paged_ids == full_ids, "paging with limit=2 must yield the same apps in the same order"
    assert len(pages) >= 3
    assert len(pages) <= len(full_ids) // 2 + 1
    assert all(not p.done for p in pages[:-1]) and pages[-1].done


def test_application_pagination_backwards(svix: Svix) -> None:
    """(contract) `prevIterator` / an iterator with a leading `-` pages backwards."""
    for i in range(5):
        svix.application.create(ApplicationIn(name=f"back {i}", uid=uniq(f"back{i}")))
    p1 = svix.application.list(ApplicationListOptions(limit=2))
    assert not p1.done and p1.iterator
    p2 = svix.application.list(ApplicationListOptions(limit=2, iterator=p1.iterator))
    assert len(p2.data) == 2
    assert p2.prev_iterator, "the second page must carry a prevIterator"
    back = svix.application.list(ApplicationListOptions(limit=2, iterator=p2.prev_iterator))
    assert [a.id for a in back.data] == [a.id for a in p1.data]


# --------------------------------------------------------------------------------------------
# event types
# --------------------------------------------------------------------------------------------

AMOUNT_SCHEMA = {
    "type": "object",
    "properties": {"amount": {"type": "integer"}, "currency": {"type": "string"}},
    "required": ["amount"],
}


def _all_event_types(svix: Svix, **kwargs: t.Any) -> t.List[t.Any]:
    return collect(svix.event_type.list, lambda it: EventTypeListOptions(limit=100, iterator=it, **kwargs))


def test_event_type_create_get_list_update(svix: Svix) -> None:
    name = uniq("invoice.created")
    et = svix.event_type.create(EventTypeIn(name=name, description="An invoice was created", schemas={"1": AMOUNT_SCHEMA}))
    assert et.name == name
    assert et.description == "An invoice was created"
    assert et.schemas == {"1": AMOUNT_SCHEMA}
    assert et.deprecated is False
    assert not et.archived

    got = svix.event_type.get(name)
    assert (got.name, got.description, got.schemas) == (name, "An invoice was created", {"1": AMOUNT_SCHEMA})

    assert name in [e.name for e in _all_event_types(svix, with_content=True)]

    patched = svix.event_type.patch(name, EventTypePatch(description="patched", deprecated=True))
    assert patched.description == "patched"
    assert patched.deprecated is True
    assert patched.schemas == {"1": AMOUNT_SCHEMA}, "PATCH must leave absent fields unchanged"

    put = svix.event_type.upsert(name, EventTypeUpsertIn(description="replaced"))
    assert put.name == name
    assert put.description == "replaced"
    assert svix.event_type.get(name).description == "replaced"

    # PUT on a new name creates it (SDK: "Create or update an event type")
    fresh = uniq("invoice.upserted")
    created = svix.event_type.upsert(fresh, EventTypeUpsertIn(description="made by PUT"))
    assert created.name == fresh
    assert svix.event_type.get(fresh).description == "made by PUT"


def test_event_type_duplicate_name_is_409(svix: Svix) -> None:
    """Svix behaviour: creating an event type whose name exists (not archived) is a conflict."""
    name = uniq("invoice.dup")
    svix.event_type.create(EventTypeIn(name=name, description="first"))
    err = expect_error(409, svix.event_type.create, EventTypeIn(name=name, description="again"))
    assert err.code == "conflict"
    assert svix.event_type.get(name).description == "first"


def test_event_type_delete_archives(svix: Svix) -> None:
    name = uniq("invoice.deleted")
    svix.event_type.create(EventTypeIn(name=name, description="to be deleted"))
    svix.event_type.delete(name)
    assert name not in [e.name for e in _all_event_types(svix)], "default list must not show a deleted event type"
    try:
        got = svix.event_type.get(name)
    except HttpError as e:
        assert e.status_code == 404
    else:
        # Svix semantics: DELETE archives
        assert got.archived is True
        assert name in [e.name for e in _all_event_types(svix, include_archived=True)]


def test_event_type_schema_rejects_invalid_payload(svix: Svix) -> None:
    """(herald) a payload that does not validate against the event type's schema → 422."""
    name = uniq("schema.checked")
    svix.event_type.create(EventTypeIn(name=name, description="with schema", schemas={"1": AMOUNT_SCHEMA}))
    app = new_app(svix, "schema")
    err = expect_error(422, svix.message.create, app.id, MessageIn(event_type=name, payload={"amount": "ten"}))
    assert err.detail, "422 must carry the validator's messages"
    ok = svix.message.create(
        app.id, MessageIn(event_type=name, payload={"amount": 10, "currency": "eur"}), MessageCreateOptions(with_content=True)
    )
    assert ok.payload == {"amount": 10, "currency": "eur"}


# --------------------------------------------------------------------------------------------
# endpoints
# --------------------------------------------------------------------------------------------


def test_endpoint_create_get_list_patch_delete(svix: Svix, receiver: Receiver) -> None:
    app = new_app(svix, "ep")
    uid = uniq("ep")
    path = receiver.new_path()
    ep = svix.endpoint.create(
        app.id,
        EndpointIn(
            url=receiver.url(path),
            uid=uid,
            description="primary",
            event_types=["user.created", "user.deleted"],
            metadata={"owner": "python"},
        ),
    )
    assert ep.id.startswith("ep_")
    assert ep.uid == uid
    assert ep.url == receiver.url(path)
    assert ep.description == "primary"
    assert sorted(ep.event_types or []) == ["user.created", "user.deleted"]
    assert ep.metadata == {"owner": "python"}
    assert not ep.disabled

    assert svix.endpoint.get(app.id, ep.id).url == receiver.url(path)
    assert svix.endpoint.get(app.id, uid).id == ep.id, "endpoint uid must be accepted in the path"
    assert svix.endpoint.get(app.uid, ep.id).id == ep.id, "app uid must be accepted in the path"

    listed = svix.endpoint.list(app.id, EndpointListOptions(limit=50))
    assert [e.id for e in listed.data] == [ep.id]
    assert listed.done

    secret = svix.endpoint.get_secret(app.id, ep.id).key
    assert secret.startswith("whsec_")
    assert len(base64.b64decode(secret[len("whsec_"):])) >= 24

    patched = svix.endpoint.patch(app.id, ep.id, EndpointPatch(description="changed", event_types=["user.updated"]))
    assert patched.description == "changed"
    assert patched.event_types == ["user.updated"]
    assert patched.url == receiver.url(path), "PATCH must leave absent fields unchanged"
    assert patched.metadata == {"owner": "python"}

    cleared = svix.endpoint.patch(app.id, ep.id, EndpointPatch(event_types=None))
    assert not cleared.event_types, "PATCH with eventTypes=null must clear the filter"
    assert cleared.description == "changed"

    svix.endpoint.delete(app.id, ep.id)
    expect_error(404, svix.endpoint.get, app.id, ep.id)
    assert svix.endpoint.list(app.id).data == []


def test_endpoint_with_explicit_secret_signs_with_it(svix: Svix, receiver: Receiver) -> None:
    vector_secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"  # from the Standard Webhooks tests
    app = new_app(svix, "vec")
    ep, path, secret = new_endpoint(svix, receiver, app.id, secret=vector_secret)
    assert secret == vector_secret
    msg = svix.message.create(app.id, MessageIn(event_type="vector.test", payload={"test": 2432232314}))
    (req,) = receiver.wait_for_requests(path, 1, DELIVERY_TIMEOUT)
    assert req.headers["webhook-id"] == msg.id
    assert verify_both(vector_secret, req) == {"test": 2432232314}
    assert signatures(req) == [sign(vector_secret, req)]


# --------------------------------------------------------------------------------------------
# publishing and delivery (one shared scenario, inspected by several tests)
# --------------------------------------------------------------------------------------------


@dataclasses.dataclass
class Delivered:
    app: ApplicationOut
    endpoint: EndpointOut
    secret: str
    path: str
    types: t.List[str]
    messages: t.List[MessageOut]  # delivered to the endpoint
    payloads: t.Dict[str, t.Dict[str, t.Any]]  # msg id -> payload as published
    filtered: MessageOut  # published with a type the endpoint does not subscribe to
    requests: t.List[ReceivedRequest]
    t0: datetime


@pytest.fixture(scope="module")
def delivered(svix: Svix, receiver: Receiver) -> Delivered:
    paid, voided, other = uniq("invoice.paid"), uniq("invoice.voided"), uniq("user.other")
    svix.event_type.create(EventTypeIn(name=paid, description="An invoice was paid"))
    app = new_app(svix, "deliv")
    ep, path, secret = new_endpoint(
        svix, receiver, app.id, event_types=[paid, voided], description="delivery target"
    )
    t0 = now_utc() - timedelta(seconds=1)

    # the SDK (v2) asks for `with_content=false` by default: the answer's payload is then {}
    filtered = svix.message.create(app.id, MessageIn(event_type=other, payload={"ignored": True}))
    published = [
        (paid, {"invoice": "inv_1", "amount": 1500, "currency": "eur", "lines": [{"sku": "a", "qty": 2}]}),
        (paid, {"invoice": "inv_2", "amount": 99, "note": "caf\u00e9 \u2603", "paid": True, "refund": None}),
        (voided, {"invoice": "inv_3", "reason": "duplicate", "ratio": 0.25}),
    ]
    messages = []
    payloads = {}
    for event_type, payload in published:
        m = svix.message.create(
            app.id,
            MessageIn(event_type=event_type, payload=payload, event_id=uniq("evt")),
            MessageCreateOptions(with_content=True),
        )
        messages.append(m)
        payloads[m.id] = payload
    reqs = receiver.wait_for_requests(path, 3, DELIVERY_TIMEOUT)
    return Delivered(app, ep, secret, path, [paid, voided, other], messages, payloads, filtered, reqs, t0)


def test_message_create_answer(delivered: Delivered) -> None:
    assert delivered.filtered.id.startswith("msg_")
    assert delivered.filtered.payload == {}, "SDK default with_content=false: payload must be {}"
    for m in delivered.messages:
        assert m.id.startswith("msg_")
        assert m.event_id
        assert m.payload == delivered.payloads[m.id]
        assert m.event_type in delivered.types[:2]
        assert m.timestamp >= delivered.t0
    assert len({m.id for m in delivered.messages}) == 3


def test_delivery_respects_event_type_filter(svix: Svix, delivered: Delivered) -> None:
    app = delivered.app
    # once every matching message has its attempt recorded, the filtered one must have none
    wait_for(
        lambda: all(attempts_by_msg(svix, app.id, m.id) for m in delivered.messages),
        DELIVERY_TIMEOUT,
        desc="attempts of the delivered messages",
    )
    assert attempts_by_msg(svix, app.id, delivered.filtered.id) == []
    assert svix.message_attempt.list_attempted_destinations(app.id, delivered.filtered.id).data == []
    ids = [r.headers.get("webhook-id") for r in delivered.requests]
    assert delivered.filtered.id not in ids
    assert sorted(set(ids)) == sorted(m.id for m in delivered.messages)


def test_deliveries_verify_with_standardwebhooks(delivered: Delivered) -> None:
    for req in delivered.requests:
        parsed = StdWebhook(delivered.secret).verify(req.body, req.headers)
        assert parsed == delivered.payloads[req.headers["webhook-id"]]
        # a tampered body must not verify
        with pytest.raises(StdVerificationError):
            StdWebhook(delivered.secret).verify(req.body + b" ", req.headers)


def test_deliveries_verify_with_svix_webhook(delivered: Delivered) -> None:
    for req in delivered.requests:
        SvixWebhook(delivered.secret).verify(req.body, req.headers)
        other_secret = "whsec_" + base64.b64encode(os.urandom(24)).decode()
        with pytest.raises(SvixVerificationError):
            SvixWebhook(other_secret).verify(req.body, req.headers)


def test_delivery_body_and_headers(delivered: Delivered) -> None:
    now = now_utc().timestamp()
    for req in delivered.requests:
        msg_id = req.headers["webhook-id"]
        assert req.method == "POST"
        assert req.path == delivered.path
        assert req.body == expected_body(delivered.payloads[msg_id]), "body must be the published payload bytes"
        assert req.headers.get("content-type", "").startswith("application/json")
        assert req.headers.get("user-agent", "").startswith("Herald/")
        ts = int(req.headers["webhook-timestamp"])
        assert abs(ts - now) < 120
        assert all(s.startswith("v1,") for s in signatures(req))
        assert signatures(req) == [sign(delivered.secret, req)]


def test_message_get_and_list(svix: Svix, delivered: Delivered) -> None:
    app = delivered.app
    for m in delivered.messages:
        got = svix.message.get(app.id, m.id, MessageGetOptions(with_content=True))
        assert (got.id, got.event_type, got.event_id) == (m.id, m.event_type, m.event_id)
        assert got.payload == delivered.payloads[m.id]
        # the eventId works as the message's uid
        assert svix.message.get(app.id, m.event_id).id == m.id
        bare = svix.message.get(app.id, m.id, MessageGetOptions(with_content=False))
        assert bare.id == m.id and bare.payload == {}

    all_ids = {m.id for m in delivered.messages} | {delivered.filtered.id}
    listed = svix.message.list(app.id, MessageListOptions(limit=50, with_content=True))
    assert {m.id for m in listed.data} == all_ids
    for m in listed.data:
        if m.id in delivered.payloads:
            assert m.payload == delivered.payloads[m.id]

    no_content = svix.message.list(app.id, MessageListOptions(with_content=False))
    assert {m.id for m in no_content.data} == all_ids
    assert all(m.payload == {} for m in no_content.data)

    assert {m.id for m in svix.message.list(app.id, MessageListOptions(after=delivered.t0)).data} == all_ids
    assert svix.message.list(app.id, MessageListOptions(before=delivered.t0)).data == []

    first = svix.message.list(app.id, MessageListOptions(limit=2))
    assert len(first.data) == 2 and not first.done and first.iterator
    paged = collect(lambda o: svix.message.list(app.id, o), lambda it: MessageListOptions(limit=2, iterator=it))
    paged_ids = [m.id for m in paged]
    assert len(paged_ids) == len(set(paged_ids)) == 4
    assert set(paged_ids) == all_ids


def _successful_attempts_by_endpoint(svix: Svix, d: Delivered) -> t.Optional[t.List[t.Any]]:
    data = svix.message_attempt.list_by_endpoint(d.app.id, d.endpoint.id).data
    return data if len([a for a in data if a.status == MessageStatus.SUCCESS]) >= 3 else None


def test_attempts_by_endpoint(svix: Svix, delivered: Delivered) -> None:
    attempts = wait_for(lambda: _successful_attempts_by_endpoint(svix, delivered), DELIVERY_TIMEOUT, desc="3 successful attempts")
    assert len(attempts) == 3
    assert {a.msg_id for a in attempts} == {m.id for m in delivered.messages}
    for a in attempts:
        assert a.id.startswith("atmpt_")
        assert a.endpoint_id == delivered.endpoint.id
        assert a.url == delivered.endpoint.url
        assert a.status == MessageStatus.SUCCESS
        assert a.status_text == MessageStatusText.SUCCESS
        assert a.response_status_code == 204
        assert a.response_duration_ms >= 0
        assert a.trigger_type == MessageAttemptTriggerType.SCHEDULED
        assert a.timestamp >= delivered.t0


def test_attempts_by_msg(svix: Svix, delivered: Delivered) -> None:
    app = delivered.app
    wait_for(lambda: _successful_attempts_by_endpoint(svix, delivered), DELIVERY_TIMEOUT, desc="3 successful attempts")
    for m in delivered.messages:
        attempts = attempts_by_msg(svix, app.id, m.id)
        assert len(attempts) == 1
        (a,) = attempts
        assert (a.msg_id, a.endpoint_id, a.status, a.response_status_code) == (
            m.id,
            delivered.endpoint.id,
            MessageStatus.SUCCESS,
            204,
        )
        one = svix.message_attempt.get(app.id, m.id, a.id)
        assert (one.id, one.msg_id, one.endpoint_id, one.status) == (a.id, m.id, delivered.endpoint.id, MessageStatus.SUCCESS)
        by_ep = attempts_by_msg(svix, app.id, m.id, endpoint_id=delivered.endpoint.id)
        assert [x.id for x in by_ep] == [a.id]


def test_attempted_destinations_and_messages(svix: Svix, delivered: Delivered) -> None:
    app, ep = delivered.app, delivered.endpoint
    wait_for(lambda: _successful_attempts_by_endpoint(svix, delivered), DELIVERY_TIMEOUT, desc="3 successful attempts")
    for m in delivered.messages:
        dests = svix.message_attempt.list_attempted_destinations(app.id, m.id).data
        assert [(d.id, d.status, d.url) for d in dests] == [(ep.id, MessageStatus.SUCCESS, ep.url)]
    msgs = svix.message_attempt.list_attempted_messages(app.id, ep.id).data
    assert {m.id: m.status for m in msgs} == {m.id: MessageStatus.SUCCESS for m in delivered.messages}


def test_endpoint_stats(svix: Svix, delivered: Delivered) -> None:
    stats = wait_for(
        lambda: stats_equal(svix, delivered.app.id, delivered.endpoint.id, success=3),
        DELIVERY_TIMEOUT,
        desc="stats.success == 3",
    )
    assert (stats.success, stats.pending, stats.sending, stats.fail) == (3, 0, 0, 0)


# --------------------------------------------------------------------------------------------
# secret rotation
# --------------------------------------------------------------------------------------------


def test_secret_rotation_signs_with_both_keys(svix: Svix, receiver: Receiver) -> None:
    app = new_app(svix, "rot")
    ep, path, old = new_endpoint(svix, receiver, app.id)

    m1 = svix.message.create(app.id, MessageIn(event_type="rotation.before", payload={"n": 1}))
    (r1,) = receiver.wait_for_requests(path, 1, DELIVERY_TIMEOUT)
    assert r1.headers["webhook-id"] == m1.id
    assert signatures(r1) == [sign(old, r1)]
    verify_both(old, r1)

    rotated = svix.endpoint.rotate_secret(app.id, ep.id, EndpointSecretRotateIn())
    new = rotated.key
    SECRETS_SEEN.add(new)
    assert new.startswith("whsec_") and new != old
    assert svix.endpoint.get_secret(app.id, ep.id).key == new

    m2 = svix.message.create(app.id, MessageIn(event_type="rotation.after", payload={"n": 2}))
    reqs = receiver.wait_for_requests(path, 2, DELIVERY_TIMEOUT)
    (r2,) = by_webhook_id(reqs, m2.id)
    sigs = signatures(r2)
    assert len(sigs) == 2, f"during the grace period two signatures are expected, got {r2.headers['webhook-signature']!r}"
    assert sigs == [sign(new, r2), sign(old, r2)], "one signature per valid key, newest first"
    assert verify_both(old, r2) == {"n": 2}
    assert verify_both(new, r2) == {"n": 2}
    with pytest.raises(StdVerificationError):
        StdWebhook("whsec_" + base64.b64encode(os.urandom(24)).decode()).verify(r2.body, r2.headers)


def test_secret_rotation_with_key_and_no_grace(svix: Svix, receiver: Receiver) -> None:
    app = new_app(svix, "rotkey")
    ep, path, old = new_endpoint(svix, receiver, app.id)
    chosen = "whsec_" + base64.b64encode(os.urandom(32)).decode()
    SECRETS_SEEN.add(chosen)
    rotated = svix.endpoint.rotate_secret(app.id, ep.id, EndpointSecretRotateIn(key=chosen, grace_period_seconds=0))
    assert rotated.key == chosen
    assert svix.endpoint.get_secret(app.id, ep.id).key == chosen

    m = svix.message.create(app.id, MessageIn(event_type="rotation.nograce", payload={"k": "v"}))
    (req,) = receiver.wait_for_requests(path, 1, DELIVERY_TIMEOUT)
    assert req.headers["webhook-id"] == m.id
    assert signatures(req) == [sign(chosen, req)], "with no grace period only the new key signs"
    verify_both(chosen, req)
    with pytest.raises(StdVerificationError):
        StdWebhook(old).verify(req.body, req.headers)


# --------------------------------------------------------------------------------------------
# retries, failure, recovery, manual resend
# --------------------------------------------------------------------------------------------


def test_retry_until_success(svix: Svix, receiver: Receiver) -> None:
    app = new_app(svix, "retry")
    ep, path, secret = new_endpoint(svix, receiver, app.id)
    receiver.fail_next(path, 500, 2)
    payload = {"retry": True, "attempts_expected": 3}
    msg = svix.message.create(app.id, MessageIn(event_type="retry.test", payload=payload))

    reqs = receiver.wait_for_requests(path, 3, RETRY_TIMEOUT)
    assert [r.answered for r in reqs] == [500, 500, 204]
    for r in reqs:
        assert r.headers["webhook-id"] == msg.id, "webhook-id must be the same on every retry"
        assert r.body == expected_body(payload)
        assert verify_both(secret, r) == payload  # re-signed on every attempt
    gaps = [b.received_at - a.received_at for a, b in zip(reqs, reqs[1:])]
    assert all(g >= 0.7 for g in gaps), f"retries must follow the 1 s schedule (±20 %), gaps: {gaps}"

    attempts = wait_for(
        lambda: (lambda d: d if len(d) >= 3 and any(a.status == MessageStatus.SUCCESS for a in d) else None)(
            attempts_by_msg(svix, app.id, msg.id, with_content=True)
        ),
        RETRY_TIMEOUT,
        desc="3 attempts, the last successful",
    )
    assert len(attempts) == 3
    attempts = sorted(attempts, key=lambda a: (a.timestamp, a.id))
    assert [a.response_status_code for a in attempts] == [500, 500, 204]
    assert [a.status for a in attempts] == [MessageStatus.FAIL, MessageStatus.FAIL, MessageStatus.SUCCESS]
    assert [a.status_text for a in attempts] == [MessageStatusText.FAIL, MessageStatusText.FAIL, MessageStatusText.SUCCESS]
    assert all(a.trigger_type == MessageAttemptTriggerType.SCHEDULED for a in attempts)
    assert all(a.endpoint_id == ep.id and a.msg_id == msg.id for a in attempts)
    assert "receiver answered 500" in attempts[0].response, "the response body must be stored"

    (dest,) = svix.message_attempt.list_attempted_destinations(app.id, msg.id).data
    assert (dest.id, dest.status) == (ep.id, MessageStatus.SUCCESS)
    stats = wait_for(lambda: stats_equal(svix, app.id, ep.id, success=1), DELIVERY_TIMEOUT, desc="stats.success == 1")
    assert (stats.fail, stats.pending, stats.sending) == (0, 0, 0)
    assert len(receiver.requests(path)) == 3, "a delivered message is not sent again"


def test_exhausted_retries_then_recover(svix: Svix, receiver: Receiver) -> None:
    app = new_app(svix, "recover")
    ep, path, secret = new_endpoint(svix, receiver, app.id)
    receiver.set_default(path, 500)
    since = now_utc() - timedelta(seconds=1)
    payload = {"recover": "me"}
    msg = svix.message.create(app.id, MessageIn(event_type="recover.test", payload=payload))

    # 1 attempt + 3 retries (schedule [1,1,1]), then the delivery is failed
    stats = wait_for(lambda: stats_equal(svix, app.id, ep.id, fail=1), RETRY_TIMEOUT, desc="stats.fail == 1")
    assert (stats.success, stats.pending, stats.sending) == (0, 0, 0)
    reqs = receiver.requests(path)
    assert len(reqs) == 4 and all(r.answered == 500 for r in reqs)
    for r in reqs:
        assert r.headers["webhook-id"] == msg.id
        assert verify_both(secret, r) == payload
    attempts = attempts_by_msg(svix, app.id, msg.id)
    assert len(attempts) == 4
    assert all(a.status == MessageStatus.FAIL and a.response_status_code == 500 for a in attempts)
    (dest,) = svix.message_attempt.list_attempted_destinations(app.id, msg.id).data
    assert dest.status == MessageStatus.FAIL
    assert svix.message.get(app.id, msg.id).id == msg.id, "exhausting retries never deletes anything"

    receiver.set_default(path, None)  # back to 204
    task = svix.endpoint.recover(app.id, ep.id, RecoverIn(since=since))
    assert task.id
    assert task.task == BackgroundTaskType.ENDPOINT_RECOVER

    reqs = receiver.wait_for_requests(path, 5, DELIVERY_TIMEOUT)
    assert reqs[4].answered == 204
    assert reqs[4].headers["webhook-id"] == msg.id
    assert verify_both(secret, reqs[4]) == payload
    stats = wait_for(lambda: stats_equal(svix, app.id, ep.id, success=1, fail=0), DELIVERY_TIMEOUT, desc="recovered stats")
    assert stats.pending == 0
    wait_for(
        lambda: any(a.status == MessageStatus.SUCCESS for a in attempts_by_msg(svix, app.id, msg.id)),
        DELIVERY_TIMEOUT,
        desc="a successful attempt after recover",
    )
    assert len(attempts_by_msg(svix, app.id, msg.id)) == 5


def test_manual_resend(svix: Svix, receiver: Receiver) -> None:
    app = new_app(svix, "resend")
    ep, path, secret = new_endpoint(svix, receiver, app.id)
    payload = {"resend": 1}
    msg = svix.message.create(app.id, MessageIn(event_type="resend.test", payload=payload))
    receiver.wait_for_requests(path, 1, DELIVERY_TIMEOUT)
    wait_for(lambda: attempts_by_msg(svix, app.id, msg.id), DELIVERY_TIMEOUT, desc="first attempt recorded")

    svix.message_attempt.resend(app.id, msg.id, ep.id)
    reqs = receiver.wait_for_requests(path, 2, DELIVERY_TIMEOUT)
    assert [r.headers["webhook-id"] for r in reqs] == [msg.id, msg.id]
    assert reqs[1].body == reqs[0].body == expected_body(payload)
    assert verify_both(secret, reqs[1]) == payload

    attempts = wait_for(
        lambda: (lambda d: d if len(d) >= 2 else None)(attempts_by_msg(svix, app.id, msg.id)),
        DELIVERY_TIMEOUT,
        desc="2 attempts",
    )
    assert len(attempts) == 2
    triggers = sorted(a.trigger_type for a in attempts)
    assert triggers == [MessageAttemptTriggerType.SCHEDULED, MessageAttemptTriggerType.MANUAL]
    assert all(a.status == MessageStatus.SUCCESS for a in attempts)


# --------------------------------------------------------------------------------------------
# custom headers
# --------------------------------------------------------------------------------------------


def test_endpoint_headers_get_set_patch_and_delivery(svix: Svix, receiver: Receiver) -> None:
    app = new_app(svix, "hdr")
    ep, path, secret = new_endpoint(svix, receiver, app.id)

    svix.endpoint.set_headers(
        app.id, ep.id, EndpointHeadersIn(headers={"X-Custom": "abc", "Authorization": SENSITIVE_HEADER_VALUE})
    )
    got = svix.endpoint.get_headers(app.id, ep.id)
    headers = {k.lower(): v for k, v in got.headers.items()}
    sensitive = [s.lower() for s in got.sensitive]
    assert headers.get("x-custom") == "abc"
    assert "authorization" in sensitive, f"Authorization must be listed as sensitive, got {got.sensitive!r}"
    assert "s3cr3t-value" not in repr(got), "a sensitive header value must never be returned"
    assert "x-custom" not in sensitive

    svix.endpoint.patch_headers(
        app.id, ep.id, EndpointHeadersPatchIn(headers={"X-Other": "two"}, delete_headers=["X-Custom"])
    )
    got = svix.endpoint.get_headers(app.id, ep.id)
    headers = {k.lower(): v for k, v in got.headers.items()}
    assert headers.get("x-other") == "two"
    assert "x-custom" not in headers
    assert "authorization" in [s.lower() for s in got.sensitive], "PATCH must keep headers it does not name"

    msg = svix.message.create(app.id, MessageIn(event_type="headers.test", payload={"h": 1}))
    (req,) = receiver.wait_for_requests(path, 1, DELIVERY_TIMEOUT)
    assert req.headers["webhook-id"] == msg.id
    assert req.headers.get("x-other") == "two"
    assert req.headers.get("authorization") == SENSITIVE_HEADER_VALUE, "the real value is sent to the endpoint"
    assert "x-custom" not in req.headers
    verify_both(secret, req)


# --------------------------------------------------------------------------------------------
# errors
# --------------------------------------------------------------------------------------------


def test_unknown_resources_are_404(svix: Svix) -> None:
    err = expect_error(404, svix.application.get, "app_2doesnotexist0000000000000")
    assert err.code == "not_found"
    expect_error(404, svix.application.get, uniq("no-such-uid"))
    expect_error(404, svix.application.delete, "app_2doesnotexist0000000000000")
    app = new_app(svix, "e404")
    expect_error(404, svix.endpoint.get, app.id, "ep_2doesnotexist00000000000000")
    expect_error(404, svix.message.get, app.id, "msg_2doesnotexist0000000000000")
    expect_error(404, svix.endpoint.list, "app_2doesnotexist0000000000000")
    expect_error(404, svix.event_type.get, uniq("no.such.type"))


def test_duplicate_event_id_is_409(svix: Svix) -> None:
    app = new_app(svix, "e409")
    event_id = uniq("evt-dup")
    first = svix.message.create(app.id, MessageIn(event_type="dup.test", payload={"n": 1}, event_id=event_id))
    assert first.event_id == event_id
    err = expect_error(409, svix.message.create, app.id, MessageIn(event_type="dup.test", payload={"n": 2}, event_id=event_id))
    assert err.code == "conflict"
    listed = svix.message.list(app.id).data
    assert [m.id for m in listed] == [first.id], "the duplicate must not be stored"
    # the same eventId in another application is fine
    other = new_app(svix, "e409b")
    assert svix.message.create(other.id, MessageIn(event_type="dup.test", payload={}, event_id=event_id)).event_id == event_id


def test_duplicate_uids_are_409(svix: Svix, receiver: Receiver) -> None:
    app = new_app(svix, "uid409")
    err = expect_error(409, svix.application.create, ApplicationIn(name="dup", uid=app.uid))
    assert err.code == "conflict"
    uid = uniq("ep-dup")
    svix.endpoint.create(app.id, EndpointIn(url=receiver.url(receiver.new_path()), uid=uid))
    err = expect_error(409, svix.endpoint.create, app.id, EndpointIn(url=receiver.url(receiver.new_path()), uid=uid))
    assert err.code == "conflict"


def test_message_idempotency_key(svix: Svix, receiver: Receiver) -> None:
    app = new_app(svix, "idem-msg")
    ep, path, secret = new_endpoint(svix, receiver, app.id)
    key = uniq("idem-msg")
    a = svix.message.create(app.id, MessageIn(event_type="idem.test", payload={"x": 1}), MessageCreateOptions(idempotency_key=key))
    b = svix.message.create(app.id, MessageIn(event_type="idem.test", payload={"x": 1}), MessageCreateOptions(idempotency_key=key))
    assert a.id == b.id
    assert [m.id for m in svix.message.list(app.id).data] == [a.id]
    (req,) = receiver.wait_for_requests(path, 1, DELIVERY_TIMEOUT)
    assert req.headers["webhook-id"] == a.id


def test_validation_errors_are_422(svix: Svix) -> None:
    err = expect_error(422, svix.application.list, ApplicationListOptions(limit=251))
    assert err.detail and all(d.msg and d.loc is not None for d in err.detail), f"422 detail must be a list of {{loc,msg,type}}: {err!r}"
    app = new_app(svix, "e422")
    err = expect_error(422, svix.endpoint.create, app.id, EndpointIn(url="ftp://127.0.0.1/hook"))
    assert err.detail
    expect_error(422, svix.endpoint.create, app.id, EndpointIn(url="not a url"))
    expect_error(422, svix.application.create, ApplicationIn(name="bad uid", uid="has spaces!"))
    expect_error(422, svix.message.create, app.id, MessageIn(event_type="bad type!", payload={}))


def test_blocked_literal_addresses_are_422(svix: Svix) -> None:
    """SSRF: a literal address in a blocked range is refused at creation (422).

    No message is ever published to this application, so even a server that wrongly accepted one
    of these URLs would never send traffic there; an accepted endpoint is deleted at once."""
    app = new_app(svix, "ssrf")
    accepted = []
    for url in (
        "http://10.1.2.3/hook",
        "http://169.254.169.254/latest/meta-data",
        "http://192.168.0.1/hook",
        "http://[::1]:9/hook",
        "http://[::ffff:10.0.0.1]/hook",
    ):
        try:
            ep = svix.endpoint.create(app.id, EndpointIn(url=url))
        except HTTPValidationError as e:
            assert e.status_code == 422
            continue
        except HttpError as e:
            accepted.append(f"{url}: HTTP {e.status_code} instead of 422")
            continue
        svix.endpoint.delete(app.id, ep.id)
        accepted.append(f"{url}: accepted")
    assert not accepted, f"blocked addresses must be refused with 422: {accepted}"


# --------------------------------------------------------------------------------------------
# tenancy: app portal tokens
# --------------------------------------------------------------------------------------------


def test_app_portal_access_token_is_scoped(svix: Svix, herald: HeraldServer, receiver: Receiver) -> None:
    mine = new_app(svix, "portal-mine")
    theirs = new_app(svix, "portal-theirs")
    svix.endpoint.create(mine.id, EndpointIn(url=receiver.url(receiver.new_path()), description="mine"))

    access = svix.authentication.app_portal_access(mine.id, AppPortalAccessIn())
    SECRETS_SEEN.add(access.token)
    assert access.token and access.token != herald.admin_token
    assert access.url

    scoped = make_svix(herald, access.token)
    assert scoped.application.get(mine.id).id == mine.id
    assert [e.description for e in scoped.endpoint.list(mine.id).data] == ["mine"]

    expect_error(403, scoped.application.get, theirs.id)
    expect_error(403, scoped.application.get, theirs.uid)
    expect_error(403, scoped.endpoint.list, theirs.id)
    expect_error(403, scoped.endpoint.create, theirs.id, EndpointIn(url=receiver.url(receiver.new_path())))
    expect_error(403, scoped.message.create, theirs.id, MessageIn(event_type="portal.test", payload={}))
    expect_error(403, scoped.application.list)
    expect_error(403, scoped.event_type.create, EventTypeIn(name=uniq("portal.et"), description="no"))
    expect_error(403, scoped.authentication.app_portal_access, theirs.id, AppPortalAccessIn())

    # nothing leaked into the other application
    assert svix.message.list(theirs.id).data == []
    assert svix.endpoint.list(theirs.id).data == []


# --------------------------------------------------------------------------------------------
# byte-exact payloads (the SDK always re-serialises JSON, so this one uses plain HTTP)
# --------------------------------------------------------------------------------------------


def test_payload_bytes_preserved_exactly(svix: Svix, receiver: Receiver, raw_http: t.Any) -> None:
    app = new_app(svix, "bytes")
    ep, path, secret = new_endpoint(svix, receiver, app.id)
    raw_payload = '{ "z": 1,  "a": {"nested": [1, 2.50, 1e3, -0.0]},\n  "s": "caf\\u00e9 caf\u00e9" }'.encode()
    body = b'{"eventType": "bytes.exact", "payload": ' + raw_payload + b"}"
    r = raw_http.post(f"/api/v1/app/{app.id}/msg", content=body, headers={"Content-Type": "application/json"})
    assert r.status_code == 202, r.text
    msg_id = r.json()["id"]
    (req,) = receiver.wait_for_requests(path, 1, DELIVERY_TIMEOUT)
    assert req.headers["webhook-id"] == msg_id
    assert req.body == raw_payload, "the payload must be delivered byte for byte as sent"
    verify_both(secret, req)
    # the SDK reads it back as the same JSON value
    assert svix.message.get(app.id, msg_id, MessageGetOptions(with_content=True)).payload == {"z": 1, "a": {"nested": [1, 2.5, 1000.0, -0.0]}, "s": "caf\u00e9 caf\u00e9"}


# --------------------------------------------------------------------------------------------
# log hygiene (runs last: it reads the log of everything above)
# --------------------------------------------------------------------------------------------


def test_zz_server_log_is_json_and_has_no_secrets(herald: HeraldServer, receiver: Receiver) -> None:
    """operations.md: JSON lines with HERALD_LOG_FORMAT=json, one line per delivery attempt, and
    secrets, signatures and authorization headers never appear in logs."""
    with open(herald.log_path, "rb") as f:
        log = f.read().decode("utf-8", "replace")
    lines = [line for line in log.splitlines() if line.strip()]
    assert lines, "the server wrote no log"
    not_json = []
    for line in lines:
        try:
            json.loads(line)
        except ValueError:
            not_json.append(line)
    assert not not_json, f"non-JSON log lines with HERALD_LOG_FORMAT=json: {not_json[:3]}"

    # One line per API request, with the route template rather than the raw path or query.
    http_lines = [json.loads(line) for line in lines if '"herald::http"' in line]
    assert http_lines, "API requests must be logged (target herald::http)"
    for entry in http_lines[:50]:
        assert {"method", "route", "status", "duration_ms"} <= set(entry), entry
        assert "?" not in entry["route"], entry

    sent_ids = {r.headers.get("webhook-id") for r in receiver.requests()}
    sent_ids.discard(None)
    if sent_ids:
        assert any(i in log for i in sent_ids), "delivery attempts must be logged (with msg_id)"

    forbidden = {herald.admin_token, SENSITIVE_HEADER_VALUE, "s3cr3t-value"} | SECRETS_SEEN
    for secret in list(SECRETS_SEEN):
        if secret.startswith("whsec_"):
            forbidden.add(secret[len("whsec_"):])  # the bare key
    for r in receiver.requests():
        for sig in r.headers.get("webhook-signature", "").split(" "):
            if "," in sig:
                forbidden.add(sig.split(",", 1)[1])
    leaked = sorted(s[:12] + "..." for s in forbidden if s and s in log)
    assert not leaked, f"secret values found in the server log: {leaked}"
