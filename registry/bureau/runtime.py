"""The bureau API's per-process state: access recorder, rate limiter, profile cache, memo
and warmer.

Kept beside the ``Services`` it belongs to (like the expiry task), started and
stopped by registry/bootstrap.py.
"""

from __future__ import annotations

from dataclasses import dataclass

from registry.bureau.access import AccessRecorder
from registry.bureau.limits import RateLimiter
from registry.bureau.profile_cache import ProfileCacheFiller
from registry.bureau.profile_memo import ProfileMemo
from registry.bureau.profile_warmer import ProfileWarmer
from registry.db.changes import CHANGES
from registry.services import Services


@dataclass
class BureauRuntime:
    recorder: AccessRecorder
    limiter: RateLimiter
    profile_fills: ProfileCacheFiller
    profile_memo: ProfileMemo
    # None when REGISTRY_PROFILE_WARM_INTERVAL_MS is 0.
    profile_warmer: ProfileWarmer | None


def start_bureau(services: Services) -> BureauRuntime:
    runtime = BureauRuntime(
        recorder=AccessRecorder(services.pool),
        limiter=RateLimiter(services.policy.bureau_rate_per_minute),
        profile_fills=ProfileCacheFiller(services.pool),
        profile_memo=ProfileMemo(CHANGES),
        profile_warmer=None,
    )
    runtime.recorder.start()
    runtime.profile_fills.start()
    if services.settings.profile_warm_interval_ms:
        runtime.profile_warmer = ProfileWarmer(
            services, services.settings.profile_warm_interval_ms / 1000
        )
        runtime.profile_warmer.start()
    services.bureau = runtime
    return runtime


def bureau_runtime(services: Services) -> BureauRuntime:
    runtime = services.bureau
    if not isinstance(runtime, BureauRuntime):
        raise RuntimeError("the bureau API was not started with these services (see bootstrap)")
    return runtime


async def stop_bureau(services: Services) -> None:
    """Stop the recorder after writing every buffered access record."""
    runtime, services.bureau = services.bureau, None
    if isinstance(runtime, BureauRuntime):
        if runtime.profile_warmer is not None:
            await runtime.profile_warmer.stop()
        await runtime.recorder.stop()
        await runtime.profile_fills.stop()
