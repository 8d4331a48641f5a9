"""Settings are read once from the environment and refuse unusable values by name."""

from __future__ import annotations

import asyncio

import asyncpg
import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient

from registry.settings import Settings, SettingsError
from registry.tlog.note import parse_checkpoint
from tests.conftest import issue


def test_policy_comes_from_the_environment() -> None:
    settings = Settings.from_env({"REGISTRY_POLICY_SERIOUS_MIN_MONTHS": "6",
                                  "REGISTRY_POLICY_PERIOD_START": "publication_date"})
    assert settings.policy.serious_min_months == 6
    assert settings.policy.period_start == "publication_date"
    assert Settings.from_env({}).policy.serious_min_months == 12


@pytest.mark.parametrize(
    ("env", "named"),
    [
        ({"REGISTRY_POLICY_SERIOUS_MIN_MONTHS": "many"}, "REGISTRY_POLICY_SERIOUS_MIN_MONTHS"),
        ({"REGISTRY_POLICY_GENERAL_MIN_MONTHS": "40"}, "general"),
        ({"REGISTRY_BATCH_WINDOW_MS": "-1"}, "REGISTRY_BATCH_WINDOW_MS"),
        ({"REGISTRY_LOG_ORIGIN": "has space"}, "REGISTRY_LOG_ORIGIN"),
        ({"REGISTRY_PII_KEY": "not base64!"}, "REGISTRY_PII_KEY"),
        ({"REGISTRY_POOL_MIN": "5", "REGISTRY_POOL_MAX": "2"}, "REGISTRY_POOL_MIN"),
        ({"REGISTRY_DEV_KEYS": "maybe"}, "REGISTRY_DEV_KEYS"),
        ({"REGISTRY_PROFILE_WARM_INTERVAL_MS": "soon"}, "REGISTRY_PROFILE_WARM_INTERVAL_MS"),
        ({"REGISTRY_PROFILE_WARM_INTERVAL_MS": "-5"}, "REGISTRY_PROFILE_WARM_INTERVAL_MS"),
    ],
)
def test_unusable_values_are_refused_by_name(env: dict[str, str], named: str) -> None:
    with pytest.raises(SettingsError, match=named):
        Settings.from_env(env)


async def test_leaves_nobody_waits_for_are_signed_by_the_sweep(
    client: AsyncTestClient[Litestar], db: asyncpg.Pool
) -> None:
    """A write from outside the service (CLI, expiry, a dead process) is integrated anyway."""
    await issue(db, "bureau", "written beside the service")
    size = await db.fetchval("SELECT next_index FROM tlog_sequence")
    for _ in range(50):
        checkpoint = parse_checkpoint((await client.get("/log/checkpoint")).text.split("\n\n")[0] + "\n")
        if checkpoint.size >= size:
            break
        await asyncio.sleep(0.1)
    assert checkpoint.size >= size


def test_the_public_url_and_trusted_proxies_come_from_the_environment() -> None:
    settings = Settings.from_env({"REGISTRY_PUBLIC_URL": "https://Credit.Xining.gov.cn/vc/",
                                  "REGISTRY_TRUSTED_PROXIES": "10.0.0.5, 10.1.0.0/16,"})
    assert settings.public_url == "https://credit.xining.gov.cn/vc"
    assert settings.trusted_proxies == ("10.0.0.5", "10.1.0.0/16")
    defaults = Settings.from_env({})
    assert defaults.public_url == "http://127.0.0.1:8000"
    assert defaults.trusted_proxies == ()  # nobody's forwarded headers are believed


@pytest.mark.parametrize(
    ("env", "named"),
    [
        ({"REGISTRY_PUBLIC_URL": "credit.xining.gov.cn"}, "REGISTRY_PUBLIC_URL"),
        ({"REGISTRY_PUBLIC_URL": "ftp://credit.xining.gov.cn"}, "REGISTRY_PUBLIC_URL"),
        ({"REGISTRY_PUBLIC_URL": "https://credit.xining.gov.cn/?a=1"}, "REGISTRY_PUBLIC_URL"),
        ({"REGISTRY_PUBLIC_URL": "https://user@credit.xining.gov.cn"}, "REGISTRY_PUBLIC_URL"),
        ({"REGISTRY_TRUSTED_PROXIES": "10.0.0.5,proxy.local"}, "REGISTRY_TRUSTED_PROXIES"),
    ],
)
def test_a_bad_public_url_or_proxy_is_refused_by_name(env: dict[str, str], named: str) -> None:
    with pytest.raises(SettingsError, match=named):
        Settings.from_env(env)
