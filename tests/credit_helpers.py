"""Shared helpers of the credit tests: subjects, penalty bodies, the audit log's actions."""

from __future__ import annotations

from typing import Any

import asyncpg
from litestar import Litestar
from litestar.testing import AsyncTestClient

from registry.tlog.leaf import decode_leaf

Client = AsyncTestClient[Litestar]
AUTHORITY = "11630100MB1234567J"
SOURCE = "11630100MB7654321F"


async def subject(client: Client, headers: dict[str, str], kind: str = "vc_firm",
                  code: str = "91630100MA752LKX1M") -> str:
    if kind == "practitioner":
        body: dict[str, Any] = {"kind": kind, "name": "李四", "document_type": "resident_id",
                                "document_number": "630102199003071231"}
    else:
        body = {"kind": kind, "name": "西寧創新投資有限公司", "credit_code": code}
    response = await client.post("/v1/subjects", json=body, headers=headers)
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


def penalty(subject_id: str, number: str = "寧發改罰〔2026〕1號", **overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "subject_id": subject_id,
        "record_kind": "penalty",
        "grade": "general",
        "decision_number": number,
        "violation_type": "未按規定備案",
        "facts": "未按規定報送年度報告",
        "legal_basis": "《創業投資企業管理暫行辦法》第二十八條",
        "penalty_types": ["fine"],
        "penalty_content": "罰款人民幣十二萬五千元",
        "fine_amount": "12.5",
        "decision_date": "2026-03-02",
        "valid_until": "2027-03-01",
        "authority_name": "西寧市發展和改革委員會",
        "authority_code": AUTHORITY,
        "source_name": "西寧市發展和改革委員會",
        "source_code": AUTHORITY,
    }
    # The default amount belongs to the default fine (registry/domain/record_rules.py: an
    # amount goes with its penalty type): penalty types without a fine drop it, unless
    # the test sets fine_amount itself.
    if "fine" not in overrides.get("penalty_types", ["fine"]) and "fine_amount" not in overrides:
        del body["fine_amount"]
    body.update(overrides)
    return body


async def record(client: Client, headers: dict[str, str], body: dict[str, Any]) -> dict[str, Any]:
    response = await client.post("/v1/records", json=body, headers=headers)
    assert response.status_code == 201, response.text
    data: dict[str, Any] = response.json()
    return data


async def actions(db: asyncpg.Pool, since: int = 0) -> list[str]:
    """The actions of the audit log's leaves from index ``since``, in order."""
    rows = await db.fetch("SELECT leaf FROM tlog_leaves WHERE idx >= $1 ORDER BY idx", since)
    return [decode_leaf(bytes(r["leaf"])).action for r in rows]


async def log_size(db: asyncpg.Pool) -> int:
    size: int = await db.fetchval("SELECT count(*) FROM tlog_leaves")
    return size
