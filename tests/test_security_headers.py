"""Headers every answer carries (issue 15, "Headers"): pages that run nothing and cannot be
framed, answers never sniffed, 401s that name their scheme."""

from __future__ import annotations

from tests.credit_helpers import Client


async def test_public_pages_run_no_script_and_cannot_be_framed(client: Client) -> None:
    for path in ("/public/", "/public/penalties", "/public/blacklist"):
        page = await client.get(path)
        assert page.status_code == 200, path
        policy = page.headers["content-security-policy"]
        assert "default-src 'none'" in policy and "frame-ancestors 'none'" in policy
        assert "script-src" not in policy  # nothing may run
        assert page.headers["x-frame-options"] == "DENY"
        assert page.headers["referrer-policy"] == "no-referrer"
        assert "<script" not in page.text  # what the policy allows is all the page needs


async def test_no_answer_is_sniffed(client: Client, regulator: dict[str, str]) -> None:
    for path, headers in (("/public/feed.json", {}), ("/v1/records", regulator),
                          ("/v1/records", {}), ("/public/nothing-here", {})):
        response = await client.get(path, headers=headers)
        assert response.headers.get_list("x-content-type-options") == ["nosniff"], path


async def test_a_401_names_the_bearer_scheme(client: Client) -> None:
    for headers in ({}, {"Authorization": "Bearer vcr_regulator_unknown"}):
        refused = await client.get("/v1/records", headers=headers)
        assert refused.status_code == 401
        assert refused.headers["www-authenticate"].startswith("Bearer ")
