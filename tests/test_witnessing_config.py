"""Configuring witnesses: REGISTRY_WITNESSES and its companions are read once and refused
by name when unusable; `Prefer` is read as RFC 7240 says; and without witnesses nothing
changes (the same checkpoint, no task, no metric), while the witnessed route says why
there is nothing to serve."""

from __future__ import annotations

import asyncpg
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from litestar import Litestar
from litestar.testing import AsyncTestClient

from registry.api.prefer import prefers_witnessed
from registry.settings import Settings, SettingsError, WitnessEndpoint
from registry.tlog.note import generate_signer_key
from registry.tlog.witnessing import cosignature_line, request_body
from registry.witness.cosignature import CosignatureSigner
from registry.witness.protocol import parse_request
from tests.logcheck import assert_log_consistent
from tests.test_log_verify import create_firm

Client = AsyncTestClient[Litestar]
A = CosignatureSigner("a.example/witness", Ed25519PrivateKey.from_private_bytes(bytes([7]) * 32))
B = CosignatureSigner("b.example/witness", Ed25519PrivateKey.from_private_bytes(bytes([8]) * 32))
LOG_VKEY = generate_signer_key("registry.example/log")[1]


def test_witnesses_quorum_and_waits_come_from_the_environment() -> None:
    settings = Settings.from_env({
        "REGISTRY_WITNESSES": f"{A.verifier_key} https://w.a.example/\n"
                              f" {B.verifier_key}   http://10.0.0.5:7380/bastion ;",
        "REGISTRY_WITNESS_QUORUM": "1",
        "REGISTRY_WITNESS_WAIT_MS": "500",
        "REGISTRY_WITNESS_TIMEOUT_MS": "800",
    })
    assert settings.witnesses == (
        WitnessEndpoint(A.name, A.verifier_key, "https://w.a.example"),
        WitnessEndpoint(B.name, B.verifier_key, "http://10.0.0.5:7380/bastion"),
    )
    assert (settings.witness_quorum, settings.witness_wait_ms,
            settings.witness_timeout_ms) == (1, 500, 800)
    both = Settings.from_env({"REGISTRY_WITNESSES": f"{A.verifier_key} https://a;"
                                                    f"{B.verifier_key} https://b"})
    assert both.witness_quorum == 2  # default: all of them, as `registry log check` counts
    none = Settings.from_env({})
    assert (none.witnesses, none.witness_quorum, none.witness_wait_ms) == ((), 0, 2000)


@pytest.mark.parametrize(
    ("env", "says"),
    [
        ({"REGISTRY_WITNESSES": f"{A.verifier_key}"}, "item 1 ("),
        ({"REGISTRY_WITNESSES": f"{A.verifier_key} https://a extra"}, "<verifier key> <url>"),
        ({"REGISTRY_WITNESSES": f"{A.verifier_key} https://a;bureau+zz+x https://b"},
         "item 2 ('bureau+zz+x https://b'): verifier key"),
        ({"REGISTRY_WITNESSES": f"{LOG_VKEY} https://a"}, "signs notes, not cosignatures"),
        ({"REGISTRY_WITNESSES": f"{A.verifier_key} ftp://a"},
         f"witness {A.name}: 'ftp://a' is not an absolute http(s) URL"),
        ({"REGISTRY_WITNESSES": f"{A.verifier_key} https://a/?x=1"}, "no query"),
        ({"REGISTRY_WITNESSES": f"{A.verifier_key} https://a;{A.verifier_key} https://b"},
         "given twice"),
        ({"REGISTRY_WITNESSES": f"{A.verifier_key} https://a", "REGISTRY_WITNESS_QUORUM": "2"},
         "REGISTRY_WITNESS_QUORUM=2 is outside 1..1"),
        ({"REGISTRY_WITNESSES": f"{A.verifier_key} https://a", "REGISTRY_WITNESS_QUORUM": "0"},
         "REGISTRY_WITNESS_QUORUM=0 is outside 1..1"),
        ({"REGISTRY_WITNESS_QUORUM": "1"}, "none are given"),
        ({"REGISTRY_WITNESS_WAIT_MS": "soon"}, "REGISTRY_WITNESS_WAIT_MS"),
        ({"REGISTRY_WITNESS_TIMEOUT_MS": "0"}, "REGISTRY_WITNESS_TIMEOUT_MS"),
    ],
)
def test_unusable_witness_settings_are_refused_naming_the_item(
    env: dict[str, str], says: str
) -> None:
    with pytest.raises(SettingsError) as refused:
        Settings.from_env(env)
    assert says in str(refused.value)


@pytest.mark.parametrize(
    ("values", "prefers"),
    [
        (["witnessed"], True),
        (["Witnessed"], True),
        (["return=minimal, witnessed"], True),
        (["respond-async", "witnessed; strict"], True),
        (["witnessed=1"], True),
        ([], False),
        (["unwitnessed"], False),
        (["return=witnessed"], False),
        (["wait=10"], False),
    ],
)
def test_prefer_is_read_as_a_list_of_preferences(values: list[str], prefers: bool) -> None:
    assert prefers_witnessed(values) is prefers


def test_the_request_body_is_what_a_witness_parses() -> None:
    proof = [bytes([i]) * 32 for i in range(3)]
    note = "origin\n5\n" + "A" * 43 + "=\n\n\u2014 origin AAAA\n"
    parsed = parse_request(request_body(4, proof, note))
    assert (parsed.old_size, list(parsed.proof), parsed.note.decode()) == (4, proof, note)
    assert parse_request(request_body(0, [], note)).proof == ()


def test_an_answer_by_an_unknown_key_is_no_cosignature() -> None:
    from registry.tlog.note import NoteSigner, sign_note

    log = NoteSigner("registry.example/log", Ed25519PrivateKey.from_private_bytes(bytes(32)))
    checkpoint = sign_note("registry.example/log\n1\n" + "A" * 43 + "=\n", [log])
    text = checkpoint[: checkpoint.index("\n\n") + 1]
    line, timestamp = cosignature_line(A.verifier(), checkpoint, A.cosign(text, 5).encode())
    assert timestamp == 5 and line == A.cosign(text, 5)[:-1]
    with pytest.raises(Exception, match="no valid cosignature by its key"):
        cosignature_line(A.verifier(), checkpoint, B.cosign(text, 5).encode())


# ---- without witnesses, nothing changes ------------------------------------------------


async def test_without_witnesses_nothing_changes(
    client: Client, regulator: dict[str, str], admin: dict[str, str], db: asyncpg.Pool
) -> None:
    """No task, the checkpoint as the log signed it, no witness metric, `Prefer: witnessed`
    not applied; /log/checkpoint/witnessed is a 404 saying no witnesses are configured."""
    services = client.app.state.services
    assert services.witnessing is None and services.settings.witnesses == ()
    await create_firm(client, regulator, 1)
    head = await db.fetchrow("SELECT checkpoint FROM tlog_head")
    assert head is not None
    assert (await client.get("/log/checkpoint")).text == head["checkpoint"]
    missing = await client.get("/log/checkpoint/witnessed")
    assert missing.status_code == 404
    assert missing.headers["content-type"] == "application/problem+json"
    assert "no witnesses configured (REGISTRY_WITNESSES)" in missing.json()["detail"]
    metrics = (await client.get("/metrics", headers=admin)).text
    assert "registry_witness" not in metrics and "registry_log_witnessed_size" not in metrics
    from tests.test_log_verify import credit_code

    answer = await client.post("/v1/subjects", headers={**regulator, "Prefer": "witnessed"},
                               json={"kind": "vc_firm", "name": "無見證創投有限公司",
                                     "credit_code": credit_code(2)})
    assert answer.status_code == 201
    assert "preference-applied" not in answer.headers
    assert answer.json()["receipt"]["checkpoint"].count("\u2014") == 1
    assert await db.fetchval("SELECT count(*) FROM tlog_cosignatures") == 0
    await assert_log_consistent(db)


async def test_both_routes_are_documented(client: Client) -> None:
    doc = (await client.get("/schema/openapi.json")).json()
    plain = doc["paths"]["/log/checkpoint"]["get"]
    assert "cosignature" in plain["description"]
    witnessed = doc["paths"]["/log/checkpoint/witnessed"]["get"]
    assert "quorum" in witnessed["summary"] and "404" in witnessed["responses"]
    receipt = doc["components"]["schemas"]["Receipt"]["properties"]["checkpoint"]
    assert "Prefer: witnessed" in receipt["description"]
