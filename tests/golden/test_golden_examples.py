"""Every documented endpoint of the sandbox answers in the shape of Symbl's own example response.

A sandbox route without a golden example (or an exemption with its reason) fails
``test_every_sandbox_route_has_a_golden_example``, so a new endpoint cannot ship unchecked.
"""

from __future__ import annotations

import copy

import pytest
import requests

from symbl_sandbox import SandboxConfig, create_app
from tests.golden.examples import EXEMPT, GOLDEN, WEBHOOK, Golden
from tests.golden.structure import Rules, check, compare

pytestmark = pytest.mark.integration


def sandbox_routes(tmp_path) -> set[tuple[str, str]]:
    """(method, canonical path) of every route the sandbox serves, HEAD and sandbox-only paths left out."""
    app = create_app(SandboxConfig(data_dir=tmp_path))
    routes = set()
    for route in app.router.routes():
        path = route.resource.canonical if route.resource is not None else ""
        if route.method == "HEAD" or path.startswith("/sandbox/"):
            continue
        routes.add((route.method, path))
    return routes


@pytest.mark.unit
def test_every_sandbox_route_has_a_golden_example(tmp_path):
    routes = sandbox_routes(tmp_path)
    covered = {g.route for g in GOLDEN}
    missing = sorted(routes - covered - set(EXEMPT))
    assert not missing, f"sandbox routes without a golden example from the reference: {missing}"
    stale = sorted((covered | set(EXEMPT)) - routes)
    assert not stale, f"golden examples for routes the sandbox does not serve: {stale}"
    assert all(g.source for g in GOLDEN) and all(EXEMPT.values())


def _call(golden: Golden, ctx) -> requests.Response:
    req = golden.request
    path = req["path"].format(
        conversationId=ctx.conversation_id, appendId=ctx.append_id, doomedId=ctx.doomed_id, jobId=ctx.job_id
    )
    kwargs: dict = {"params": req.get("params"), "timeout": 30}
    headers = {"Authorization": f"Bearer {req['auth']}"} if "auth" in req else dict(ctx.auth)
    body = req.get("body")
    if body == "token":
        headers = {}
        kwargs["json"] = {"type": "application", "appId": ctx.server.app_id, "appSecret": ctx.server.app_secret}
    elif body == "mp4":
        kwargs["data"], headers["Content-Type"] = ctx.mp4, "video/mp4"
    elif body == "audio":
        kwargs["data"], headers["Content-Type"] = ctx.mp4, "audio/wav"
    elif body == "url":
        kwargs["json"] = {"url": ctx.media_url, "name": "By URL"}
    elif body is not None:
        kwargs["json"] = body
    return requests.request(req["method"], ctx.server.url + path, headers=headers, **kwargs)


@pytest.mark.parametrize("golden", GOLDEN, ids=[g.id for g in GOLDEN])
def test_sandbox_response_matches_the_reference_example(golden: Golden, contexts):
    ctx = contexts[golden.request.get("server", "current")]
    resp = _call(golden, ctx)
    assert resp.status_code == golden.status, resp.text
    assert resp.headers["Content-Type"].startswith("application/json")
    errors = check(golden.example, resp.json(), golden.rules)
    assert not errors, f"{golden.id} differs from {golden.source}:\n  " + "\n  ".join(errors)


def test_webhook_bodies_match_the_reference(contexts, webhook):
    ctx = contexts["current"]
    resp = requests.post(
        ctx.server.url + "/v1/process/video",
        params={"webhookUrl": webhook.url},
        data=ctx.mp4,
        headers={**ctx.auth, "Content-Type": "video/mp4"},
        timeout=30,
    )
    assert resp.status_code == 201, resp.text
    job_id = resp.json()["jobId"]
    webhook.wait_for(job_id, "completed")
    bodies = [body for _, body in webhook.calls if body.get("jobId") == job_id]
    assert [b["status"] for b in bodies] == ["scheduled", "in_progress", "completed"]
    for body in bodies:
        assert body["id"] == job_id
        errors = compare(WEBHOOK.example, body, WEBHOOK.rules)
        assert not errors, f"webhook body differs from {WEBHOOK.source}: {errors}"


# ------------------------------------------------------------------ the comparison can fail
def _first_dict(node):
    """The first dict inside ``node`` that has a string or number value (depth first)."""
    if isinstance(node, dict):
        if any(isinstance(v, str | int | float) and not isinstance(v, bool) for v in node.values()):
            return node
        node = list(node.values())
    for child in node if isinstance(node, list) else []:
        found = _first_dict(child)
        if found is not None:
            return found
    return None


@pytest.mark.unit
@pytest.mark.parametrize("golden", [*GOLDEN, WEBHOOK], ids=[g.id for g in [*GOLDEN, WEBHOOK]])
def test_each_example_rejects_a_renamed_key_and_a_changed_type(golden: Golden):
    assert compare(golden.example, copy.deepcopy(golden.example), golden.rules) == []
    renamed = copy.deepcopy(golden.example)
    target = _first_dict(renamed)
    key = next(k for k, v in target.items() if isinstance(v, str | int | float) and not isinstance(v, bool))
    snake = "".join("_" + c.lower() if c.isupper() else c for c in key) + "_x"
    target[snake] = target.pop(key)
    assert compare(golden.example, renamed, golden.rules), f"renaming {key!r} went unnoticed"
    retyped = copy.deepcopy(golden.example)
    target = _first_dict(retyped)
    target[key] = [target[key]]
    assert compare(golden.example, retyped, golden.rules), f"changing the type of {key!r} went unnoticed"


@pytest.mark.unit
def test_formats_and_rules_are_enforced():
    uuid = "47c74881-6475-433f-a13a-52152a3cb5aa"
    example = {"id": "4549300882243584", "startTime": "2021-07-23T16:31:29.798Z", "who": {"id": uuid}}
    other = "00000000-0000-4000-8000-000000000000"
    good = {"id": "1234567890123456", "startTime": "2024-01-01T00:00:00.000Z", "who": {"id": other}}
    assert compare(example, good) == []
    assert compare(example, {**good, "id": "abc"}) == ["id: 'abc' does not have the format numeric id"]
    assert compare(example, {**good, "startTime": "2024-01-01T00:00:00Z"})
    assert compare(example, {**good, "startTime": "2024-01-01 00:00:00.000"})
    assert compare(example, {**good, "who": {"id": "1234567890123456"}})
    assert compare(example, {**good, "extra": 1}) == ["extra: not in the reference example (1)"]
    assert compare(example, {**good, "extra": 1}, Rules(extra={"extra"})) == []
    assert compare(example, {"id": good["id"], "who": good["who"]}) == ["startTime: missing"]
    assert compare(example, {"id": good["id"], "who": good["who"]}, Rules(optional={"startTime"})) == []
    assert compare({"n": 1}, {"n": 1.5}) == [] and compare({"n": 1}, {"n": True})
    assert compare({"t": "topic"}, {"t": "Topic"}, Rules(exact={"t"}))
    assert compare({"d": 5.9}, {"d": 5.91}, Rules(decimals={"d": 2})) == []
    assert compare({"d": 5.9}, {"d": 5.913}, Rules(decimals={"d": 2})) == ["d: 5.913 has more than 2 decimal places"]
    # list items match the alternative of the same type
    alternatives = {"e": [{"type": "date", "value": "2020-06-22"}, {"type": "person", "value": {"name": "x"}}]}
    mixed = {"e": [{"type": "person", "value": {"name": "y"}}, {"type": "date", "value": "2024-01-02"}]}
    assert compare(alternatives, mixed) == []
    assert compare(alternatives, {"e": [{"type": "date", "value": "tomorrow"}]}) == [
        "e[0].value: 'tomorrow' does not have the format date YYYY-MM-DD"
    ]
    assert check(alternatives, {"e": []}, Rules(non_empty={"e"}))
    assert check({"a": [{"b": [1]}]}, {"a": [{"b": []}, {"b": [2]}]}, Rules(non_empty={"a[].b"})) == []
    assert check({"a": [{"b": [1]}]}, {"a": [{"b": []}]}, Rules(non_empty={"a[].b"}))
