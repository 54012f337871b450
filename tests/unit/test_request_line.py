"""Options too long for a request line fail before anything is sent, naming the option and the limit."""

from __future__ import annotations

import io

import pytest
import requests

from symbl_airflow.errors import SymblOptionsError
from symbl_airflow.options import MAX_REQUEST_LINE_BYTES, SymblOptions, request_line_bytes


@pytest.mark.unit
def test_a_6000_character_name_is_refused_naming_the_option_and_the_limit():
    options = SymblOptions(name="Réunion trimestrielle, planification " * 200, enable_summary=True)
    assert len(options.name) > 6000
    options.validate()  # every value is valid on its own
    with pytest.raises(SymblOptionsError, match=r"Symbl option 'name' is too long") as err:
        options.to_query_params()
    assert err.value.option == "name"
    assert f"{MAX_REQUEST_LINE_BYTES:,}" in str(err.value)
    assert "upload_mode='url'" in str(err.value)
    with pytest.raises(SymblOptionsError, match="'name'"):
        options.check_request_line()
    # URL submissions carry options in a JSON body: no such limit.
    assert options.to_json_body()["name"].startswith("Réunion")


@pytest.mark.unit
def test_the_biggest_option_is_named_and_escaping_counts():
    # 1,500 non-ASCII characters: 2 UTF-8 bytes each, 3 characters each once percent-encoded.
    vocabulary = ["Zürich"] * 300 + ["naïve café"] * 300
    options = SymblOptions(custom_vocabulary=vocabulary, name="x" * 10)
    assert len(",".join(vocabulary)) < MAX_REQUEST_LINE_BYTES  # the raw text alone would fit
    with pytest.raises(SymblOptionsError) as err:
        options.to_query_params()
    assert err.value.option == "custom_vocabulary"


@pytest.mark.unit
def test_ordinary_options_pass_and_the_line_is_measured_as_sent():
    params = SymblOptions(
        name="Weekly sync", enable_summary=True, custom_vocabulary=["Symbl", "Airflow"]
    ).to_query_params()
    line = requests.Request("PUT", "http://h/v1/process/video/1234567890123456", params=params).prepare().path_url
    assert request_line_bytes(params, "/v1/process/video/1234567890123456") == len(line)


def _name_with_line_bytes(target: int, path: str) -> str:
    base = request_line_bytes([("name", "")], path)
    return "n" * (target - base)


@pytest.mark.integration
def test_the_limit_matches_what_the_server_reads(clean_sandbox, submit, mp4):
    """Just under the limit is accepted by the sandbox; over it the sandbox refuses, and the hook never sends."""
    from symbl_airflow.hooks import SymblHook

    conversation_id = submit().conversation_id
    path = f"/v1/process/video/{conversation_id}"
    data = mp4.make()
    hook = SymblHook()
    try:
        # The hook reserves room for the longest append path, so it allows slightly less than the server.
        fits = _name_with_line_bytes(MAX_REQUEST_LINE_BYTES - 20, path)
        accepted = hook.submit_video(
            lambda: io.BytesIO(data), len(data), conversation_id=conversation_id, options={"name": fits}
        )
        assert accepted.conversation_id == conversation_id

        too_long = _name_with_line_bytes(MAX_REQUEST_LINE_BYTES + 10, path)
        before = len(clean_sandbox.ledger())
        with pytest.raises(SymblOptionsError, match="'name' is too long"):
            hook.submit_video(
                lambda: io.BytesIO(data), len(data), conversation_id=conversation_id, options={"name": too_long}
            )
        assert len(clean_sandbox.ledger()) == before
    finally:
        hook.close()
    # Sent anyway, the server refuses it: the limit is real, not a guess.
    resp = requests.put(
        clean_sandbox.url + path,
        params={"name": too_long},
        data=data,
        headers={"Authorization": f"Bearer {clean_sandbox.token()}", "Content-Type": "video/mp4"},
        timeout=30,
    )
    assert resp.status_code == 400 and "Got more than 8190 bytes" in resp.text, resp.text
