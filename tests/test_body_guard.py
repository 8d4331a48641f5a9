"""Bodies nested too deeply to decode: a 400 naming `body`, never a 500 (issue 15's first
finding: `'[' * 1000 + ']' * 1000` to the bulk lookup raised RecursionError)."""

from __future__ import annotations

import pytest

from registry.api.body_guard import MAX_DEPTH, nesting_within
from tests.credit_helpers import Client, penalty, subject


@pytest.mark.parametrize(("body", "ok"), [
    (b"", True),
    (b'{"a": [1, {"b": [2]}]}', True),
    (b"[" * MAX_DEPTH + b"]" * MAX_DEPTH, True),
    (b"[" * (2 * MAX_DEPTH + 1) + b"]" * (2 * MAX_DEPTH + 1), False),
    (b'{"facts": "' + b"[" * 5000 + b'"}', True),  # brackets in a string do not nest
    (b'{"facts": "\\"[[[[", "x": []}', True),  # an escaped quote does not end the string
    (b"[" * 10_000, False),  # unbalanced: never decoded
    (b"[]" * 2_000_000, True),  # wide, not deep: a few C-speed passes
])
def test_nesting_is_measured_without_decoding(body: bytes, ok: bool) -> None:
    assert nesting_within(body) is ok


@pytest.mark.parametrize("depth", [1000, 10_000])
async def test_a_deep_body_is_a_400_and_the_server_goes_on(
    client: Client, bureau: dict[str, str], regulator: dict[str, str], depth: int,
) -> None:
    for path, headers in (("/v1/bureau/profiles/bulk", bureau), ("/v1/records", regulator)):
        response = await client.post(path, headers={**headers, "Content-Type": "application/json"},
                                     content=b"[" * depth + b"]" * depth)
        assert response.status_code == 400, response.text
        problem = response.json()
        assert problem["field"] == "body" and str(MAX_DEPTH) in problem["detail"]
    objects = b'{"a":' * depth + b"1" + b"}" * depth
    response = await client.post("/v1/subjects", content=objects,
                                 headers={**regulator, "Content-Type": "application/json"})
    assert response.status_code == 400 and response.json()["field"] == "body"
    sid = await subject(client, regulator)  # still serving
    deep_text = penalty(sid, facts="[" * 3000 + "]" * 3000)
    assert (await client.post("/v1/records", headers=regulator, json=deep_text)).status_code == 201


async def test_like_wildcards_are_searched_as_typed(client: Client, regulator: dict[str, str]) -> None:
    """`name_prefix=%` once listed every subject: `%` and `_` are characters to find."""
    await subject(client, regulator)  # 西寧創新投資有限公司
    for prefix, count in (("%", 0), ("_", 0), ("西寧", 1), ("西寧%", 0)):
        listed = await client.get("/v1/subjects", headers=regulator,
                                  params={"name_prefix": prefix})
        assert listed.status_code == 200
        assert len(listed.json()["items"]) == count, prefix


async def test_csv_cells_never_run_as_formulas(client: Client, regulator: dict[str, str]) -> None:
    """`=cmd|' /C calc'!A0` and friends, read back with a real CSV reader: each cell starts
    with an apostrophe, so a spreadsheet shows the text instead of running it."""
    import csv
    import io

    sid = await subject(client, regulator)
    hostile = ["=cmd|' /C calc'!A0", "+cmd", "-1+1", "@SUM(1+1)", "\t=1+1", "\r=1+1"]
    for n, text in enumerate(hostile):
        await client.post("/v1/records", headers=regulator,
                          json=penalty(sid, f"寧罰〔2026〕{100 + n}號", facts=text))
    exported = await client.get("/public/exports/penalties.csv")
    rows = list(csv.reader(io.StringIO(exported.content.decode("utf-8-sig"))))
    facts = rows[0].index("违法事实")
    cells = {row[facts] for row in rows[1:]}
    # (Leading white space is trimmed when a record is written: "\t=1+1" is stored "=1+1".)
    assert cells == {"'" + text.strip() for text in hostile}
    for row in rows[1:]:
        assert not any(cell.startswith(("=", "+", "-", "@", "\t", "\r")) for cell in row), row
    # JSON keeps the text as typed: no spreadsheet opens it.
    assert "=cmd|' /C calc'!A0" in (await client.get("/public/exports/penalties.json")).text
