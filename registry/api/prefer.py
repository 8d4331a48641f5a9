"""``Prefer: witnessed`` (RFC 7240) on a write: a receipt whose checkpoint the witnesses cosigned.

The preference rides on the request's own view of the services (``provide_services``
gives ``Services.preferring_witnessed``), so every handler's ``services.receipt(...)``
honours it without knowing of it. The answer says whether it was honoured:
``Preference-Applied: witnessed`` when every receipt in it got a checkpoint cosigned by a
quorum of the witnesses (``preference_applied``, a before-send hook); otherwise the
receipt carries the log's checkpoint as always, and no such header. A server without
witnesses never applies it, and does not even register the hook (api/app.py).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from litestar import Request
from litestar.datastructures import MutableScopeHeaders, State
from litestar.types import Message, Scope

from registry.services import Services, WitnessedPreference

PREFERENCE = "witnessed"
# Where the request's preference waits for the answer (the scope's state, per request).
_STATE_KEY = "registry_witnessed_preference"


def prefers_witnessed(values: Iterable[str]) -> bool:
    """True if a ``Prefer`` header value names ``witnessed`` (RFC 7240 §2: a comma-separated
    list of tokens, each with an optional value and parameters; tokens are case-insensitive)."""
    for value in values:
        for item in value.split(","):
            token = item.split(";", 1)[0].split("=", 1)[0].strip()
            if token.lower() == PREFERENCE:
                return True
    return False


def provide_services(state: State, request: Request[Any, Any, Any]) -> Services:
    """The ``services`` dependency: the app's, or its view for a ``Prefer: witnessed`` request."""
    services: Services = state.services
    if services.witnessing is None or not prefers_witnessed(request.headers.getall("prefer", [])):
        return services
    preference = WitnessedPreference()
    request.state[_STATE_KEY] = preference
    return services.preferring_witnessed(preference)


async def preference_applied(message: Message, scope: Scope) -> None:
    """Before an answer's headers go: ``Preference-Applied: witnessed`` if it was honoured."""
    if message["type"] != "http.response.start":
        return
    state: Any = scope.get("state") or {}
    preference = state.get(_STATE_KEY)
    if isinstance(preference, WitnessedPreference) and preference.applied:
        MutableScopeHeaders.from_message(message).add("Preference-Applied", PREFERENCE)
