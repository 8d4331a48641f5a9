"""Whether a step is allowed now, and if not why, in words: asked of the rule itself.

The domain's transitions (``registry.domain.blacklist``, ``objections``, ``repair``)
are pure functions that return the next state or raise the refusal the API answers
with. A page asks the same function with today's date and the current state: no
error means the button is shown; an error's reason, in Chinese (``texts.reason_zh``),
is shown instead of the button. So a page never states a rule of its own, and the
button and the API cannot disagree.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from registry.console.texts import reason_zh
from registry.errors import RegistryError


@dataclass(frozen=True)
class Permit:
    """A step's verdict for a page: ``allowed``, or ``reason`` (Chinese) why not."""

    allowed: bool
    reason: str | None = None


ALLOWED = Permit(True)


def refused(reason_english: str) -> Permit:
    return Permit(False, reason_zh(reason_english))


def permit(attempt: Callable[[], object]) -> Permit:
    """Try ``attempt`` (a pure domain transition on the current state, for today); its
    refusal, if any, becomes the reason shown."""
    try:
        attempt()
    except RegistryError as error:
        return refused(error.detail)
    return ALLOWED
