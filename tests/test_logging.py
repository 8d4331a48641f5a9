"""Logs: JSON lines with a request id, and never a document number or token."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
import structlog
from litestar import Litestar
from litestar.testing import AsyncTestClient

from registry.logging import REQUEST_ID, configure_logging

PERSON_ID = "630102199003071231"


@pytest.fixture
def json_logs(capsys: pytest.CaptureFixture[str]) -> Iterator[pytest.CaptureFixture[str]]:
    configure_logging("json")
    yield capsys
    configure_logging("console")


async def test_request_lines_carry_request_id_and_no_personal_data(
    client: AsyncTestClient[Litestar], regulator: dict[str, str],
    json_logs: pytest.CaptureFixture[str],
) -> None:
    body = {"kind": "practitioner", "name": "李四", "document_type": "resident_id",
            "document_number": PERSON_ID}
    created = await client.post("/v1/subjects", json=body, headers={**regulator, "X-Request-ID": "req-42"})
    assert created.status_code == 201
    assert created.headers["x-request-id"] == "req-42"
    bad = await client.post("/v1/subjects", headers=regulator, json={**body, "document_number": PERSON_ID[:-1] + "0"})
    assert bad.status_code == 422
    lookup = await client.post("/v1/subjects/lookup", headers=regulator,
                               json={"document_type": "resident_id", "document_number": PERSON_ID})
    assert lookup.status_code == 200
    err = json_logs.readouterr().err
    lines = [json.loads(line) for line in err.splitlines() if line.startswith("{")]
    finished = [line for line in lines if line["event"] == "request_finished"]
    assert any(line["request_id"] == "req-42" and line["status"] == 201 for line in finished)
    assert all("request_id" in line for line in finished)
    # Written without structlog's chain (registry.logging.log_request), in its shape.
    assert all(
        set(line) == {"method", "path", "status", "ms", "event", "request_id", "level", "timestamp"}
        and line["level"] == "info"
        and line["timestamp"].endswith("Z")
        for line in finished
    )
    assert {(line["method"], line["path"]) for line in finished} == {
        ("POST", "/v1/subjects"),
        ("POST", "/v1/subjects/lookup"),
    }
    assert PERSON_ID not in err and PERSON_ID[:-1] not in err
    assert regulator["Authorization"].split()[1] not in err


def test_sensitive_field_names_are_redacted(capsys: pytest.CaptureFixture[str]) -> None:
    configure_logging("json")
    try:
        structlog.get_logger("t").info("oops", document_number=PERSON_ID, token="vcr_x")
    finally:
        configure_logging("console")
    err = capsys.readouterr().err
    assert PERSON_ID not in err and "vcr_x" not in err
    assert "[redacted]" in err


def test_lines_logged_while_serving_a_request_carry_its_id(
    capsys: pytest.CaptureFixture[str],
) -> None:
    configure_logging("json")
    try:
        serving = REQUEST_ID.set("req-7")
        structlog.get_logger("t").warning("inside")
        REQUEST_ID.reset(serving)
        structlog.get_logger("t").warning("outside")
    finally:
        configure_logging("console")
    inside, outside = (json.loads(line) for line in capsys.readouterr().err.splitlines())
    assert inside["event"] == "inside" and inside["request_id"] == "req-7"
    assert outside["event"] == "outside" and "request_id" not in outside


def test_the_fuzzers_error_check_sees_an_error_line(json_logs: pytest.CaptureFixture[str]) -> None:
    """The check tests/test_fuzz.py runs over the server's log fires on what the logger
    really writes (it once searched for `"level": "error"` in compact JSON, and never could)."""
    import structlog

    from tests.logcheck import logged_errors

    log = structlog.get_logger("fuzz-check")
    log.info("all_fine")
    log.error("something_failed", reason="test")
    try:
        raise RuntimeError("boom")
    except RuntimeError:
        log.exception("unhandled")
    text = json_logs.readouterr().err
    found = logged_errors(text)
    assert len(found) == 2, text
    assert "something_failed" in found[0] and "boom" in found[1]
    assert logged_errors('{"level":"info","event":"request_finished"}') == []
    assert logged_errors("Traceback (most recent call last):") != []
