"""The credit bureaus' name lookup (`GET /v1/bureau/subjects?q=`) through the real app.

It is the regulators' search (registry/search.py, registry.subjects.list_subjects) limited
to organisations: 西宁 and 西寧 find the same firm, so do a credit code's start and a decision
number, and each organisation comes with the path of its profile. A practitioner is never
listed, whatever matches: a bureau reaches a person only by document, keyed, with a stated
purpose, and recorded.
"""

from __future__ import annotations

from typing import Any

from tests.bureau_helpers import credit_code, organisation, practitioner, resident_id
from tests.credit_helpers import Client, penalty, record

PATH = "/v1/bureau/subjects"
PROBLEM = "application/problem+json"


async def names(client: Client, bureau: dict[str, str], q: str) -> list[str]:
    """Names the bureau lookup finds for ``q`` (one page is enough in these tests)."""
    response = await client.get(PATH, headers=bureau, params={"q": q})
    assert response.status_code == 200, response.text
    return sorted(item["name"] for item in response.json()["items"])


async def regulator_names(client: Client, regulator: dict[str, str], q: str) -> list[str]:
    response = await client.get("/v1/subjects", headers=regulator, params={"q": q})
    assert response.status_code == 200, response.text
    return sorted(item["name"] for item in response.json()["items"])


def problem(response: Any, status: int, field: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith(PROBLEM)
    body: dict[str, Any] = response.json()
    assert body["field"] == field, body
    return body


async def test_either_script_and_a_code_prefix_find_the_firm_with_its_profile(
    client: Client, regulator: dict[str, str], bureau: dict[str, str]
) -> None:
    """西宁 finds 西寧創投1234567有限公司 as 西寧 does; so do its code's start and a decision
    number of its record; the item names it and links to a profile that answers."""
    firm = await organisation(client, regulator, 1_234_567)
    await organisation(client, regulator, 2_000_000)
    other = await client.post("/v1/subjects", headers=regulator, json={
        "kind": "vc_manager", "name": "青海高原資本管理有限公司", "credit_code": credit_code(3)})
    assert other.status_code == 201, other.text
    await record(client, regulator, penalty(firm, "寧發改罰〔2026〕7號"))
    code = credit_code(1_234_567)
    for q in ("西宁创投1", "西寧創投1", code[:14], "９１６３０１０００" + code[9:14], "宁发改罚〔2026〕7号"):
        response = await client.get(PATH, headers=bureau, params={"q": q})
        assert response.status_code == 200, response.text
        assert response.json() == {"items": [{
            "credit_code": code,
            "name": "西寧創投1234567有限公司",
            "kind": "vc_firm",
            "profile": f"/v1/bureau/profiles/{code}",
        }], "next_cursor": None}, q
    assert await names(client, bureau, "西宁") == ["西寧創投1234567有限公司", "西寧創投2000000有限公司"]
    [manager] = (await client.get(PATH, headers=bureau, params={"q": "高原"})).json()["items"]
    assert manager["kind"] == "vc_manager"
    profile = await client.get(manager["profile"], headers=bureau)
    assert profile.status_code == 200, profile.text
    assert profile.json()["subject"]["name"] == "青海高原資本管理有限公司"


async def test_a_practitioner_is_never_listed_even_when_the_name_matches(
    client: Client, regulator: dict[str, str], bureau: dict[str, str]
) -> None:
    """The regulators' search finds the practitioner by name and by their record's number;
    the bureaus' finds only the organisation."""
    org = await organisation(client, regulator, 4)
    person = await practitioner(client, regulator, resident_id(4), org)
    renamed = await client.patch(f"/v1/subjects/{person}", headers=regulator,
                                 json={"version": 1, "name": "西寧創投張三"})
    assert renamed.status_code == 200, renamed.text
    await record(client, regulator, penalty(person, "寧發改罰〔2026〕44號"))
    assert await regulator_names(client, regulator, "西宁创投") == [
        "西寧創投4有限公司", "西寧創投張三"]
    assert await regulator_names(client, regulator, "〕44號") == ["西寧創投張三"]
    assert await names(client, bureau, "西宁创投") == ["西寧創投4有限公司"]
    for q in ("張三", "张三", "〕44號", resident_id(4)):
        assert await names(client, bureau, q) == [], q


async def test_pages_return_every_match_exactly_once(
    client: Client, regulator: dict[str, str], bureau: dict[str, str]
) -> None:
    """Matching firms among non-matching ones and practitioners of the same name, read three
    at a time: each once, then a last page without a cursor."""
    wanted = set()
    for n in range(10, 21):
        await organisation(client, regulator, n)  # 西寧創投<n>有限公司
        wanted.add(f"西寧創投{n}有限公司")
        person = await practitioner(client, regulator, resident_id(n))
        renamed = await client.patch(f"/v1/subjects/{person}", headers=regulator,
                                     json={"version": 1, "name": f"西寧創投{n}號人"})
        assert renamed.status_code == 200, renamed.text
    for n in range(30, 33):
        created = await client.post("/v1/subjects", headers=regulator, json={
            "kind": "vc_firm", "name": f"海東資本{n}有限公司", "credit_code": credit_code(n)})
        assert created.status_code == 201, created.text
    seen: list[str] = []
    params: dict[str, Any] = {"q": "西宁创投", "limit": 3}
    for _ in range(10):
        response = await client.get(PATH, headers=bureau, params=params)
        assert response.status_code == 200, response.text
        page = response.json()
        assert len(page["items"]) <= 3
        seen += [item["name"] for item in page["items"]]
        if page["next_cursor"] is None:
            break
        params["cursor"] = page["next_cursor"]
    else:
        raise AssertionError("the pages never ended")
    assert len(seen) == len(set(seen))
    assert set(seen) == wanted


async def test_only_bureaus_may_look_names_up(
    client: Client, regulator: dict[str, str]
) -> None:
    """Regulators have their own listing; this route is the bureaus'."""
    refused = await client.get(PATH, headers=regulator, params={"q": "西宁"})
    assert refused.status_code == 403, refused.text
    assert "bureau" in refused.json()["detail"]
    assert (await client.get(PATH, params={"q": "西宁"})).status_code == 401


async def test_a_missing_blank_or_malformed_q_is_refused_naming_it(
    client: Client, bureau: dict[str, str]
) -> None:
    """No q is a 400 naming q; a control character too (the query guard); a q with nothing
    visible would list every organisation, so it is a 422 naming q."""
    problem(await client.get(PATH, headers=bureau), 400, "q")
    body = problem(await client.get(f"{PATH}?q=%E8%A5%BF%00", headers=bureau), 400, "q")
    assert "U+0000" in body["reason"]
    for blank in ("", " ", "\u200b"):
        problem(await client.get(PATH, headers=bureau, params={"q": blank}), 422, "q")
    problem(await client.get(PATH, headers=bureau, params={"q": "西宁", "cursor": "nope"}),
            422, "cursor")
