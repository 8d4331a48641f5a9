"""Each running registry keeps its state on its own Services, never in module globals.

Two apps in one process (the tests run many) once shared the bureau runtime, the expiry
task and the feed's signature cache through module-level dicts keyed by ``id(services)``
or by nothing (issue 18).
"""

from __future__ import annotations

from dataclasses import replace

import pytest

from registry.bootstrap import close_services, open_services
from registry.bureau.runtime import bureau_runtime
from registry.clock import ManualClock
from registry.credit.expiry import ExpiryTask
from registry.publish.feed import sign_entry
from registry.settings import Settings


async def test_two_registries_in_one_process_keep_their_own_state(
    settings: Settings, database_url: str, clock: ManualClock
) -> None:
    running = replace(settings, expiry_interval_ms=3_600_000)
    first = await open_services(running, clock=clock, url=database_url)
    second = await open_services(running, clock=clock, url=database_url)
    try:
        assert first.bureau is not None and second.bureau is not None
        assert first.bureau is not second.bureau
        assert bureau_runtime(first) is first.bureau
        assert bureau_runtime(first).recorder is not bureau_runtime(second).recorder
        assert isinstance(first.expiry, ExpiryTask) and isinstance(second.expiry, ExpiryTask)
        assert first.expiry is not second.expiry

        entry = {"seq": 1, "event": "publication"}
        signature = sign_entry(first.integrator.key, entry, first.feed_signatures)
        assert list(first.feed_signatures.values()) == [signature]
        assert not second.feed_signatures

        await close_services(first)
        assert first.bureau is None and first.expiry is None
        with pytest.raises(RuntimeError, match="not started"):
            bureau_runtime(first)
        # The other one runs on.
        assert bureau_runtime(second) is second.bureau
        assert second.expiry is not None
    finally:
        await close_services(second)
        if first.bureau is not None:
            await close_services(first)
