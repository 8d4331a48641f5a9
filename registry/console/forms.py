"""HTML forms in, the API's structs out; the API's refusals back out at their fields.

A console form's field names are the API's JSON field names, so a form is read into
the same struct the API decodes (``struct_from_form``) and handed to the same use
case. What the struct or the use case refuses comes back as an ``InvalidInput``
naming the field; ``field_errors`` turns it into the Chinese message shown next to
that field, and the page is rendered again with what was typed (``FormState``).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar

import msgspec
from litestar import Request

from registry.console.texts import reason_zh
from registry.errors import InvalidInput

T = TypeVar("T")

_AT_FIELD = re.compile(r"at `\$\.([A-Za-z_][A-Za-z0-9_]*)")
_NAMED_FIELD = re.compile(r"field `([A-Za-z_][A-Za-z0-9_]*)`")
_ROOT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


async def read_form(request: Request[Any, Any, Any]) -> dict[str, list[str]]:
    """Every field of the posted form, each with all its values (a multi-select sends
    several), the CSRF token left out."""
    form = await request.form()
    values: dict[str, list[str]] = {}
    for name, value in form.multi_items():
        if name == "_csrf_token" or not isinstance(value, str):
            continue
        values.setdefault(name, []).append(value)
    return values


def struct_from_form(form: Mapping[str, list[str]], struct: type[T], *,
                     lists: frozenset[str] = frozenset(),
                     extra: Mapping[str, Any] | None = None) -> T:
    """``struct`` from the form: an empty field is left out (the struct's default, as if
    the JSON had no such key); a field in ``lists`` is a list of its non-empty values;
    text reaches dates and amounts as the JSON's strings would. Raises ``InvalidInput``
    naming the field, like the API's 4xx."""
    data: dict[str, Any] = {}
    for name, values in form.items():
        if name in lists:
            kept = [v for v in values if v.strip()]
            if kept:
                data[name] = kept
        elif values and values[-1].strip():
            data[name] = values[-1]
    data.update(extra or {})
    try:
        return msgspec.convert(data, struct, strict=False)
    except msgspec.ValidationError as error:
        message = str(error)
        found = _AT_FIELD.search(message) or _NAMED_FIELD.search(message)
        raise InvalidInput(found.group(1) if found else "body", message) from None


def field_of(error: InvalidInput) -> str:
    """The form field an error names: ``penalty_types[1]`` is ``penalty_types``."""
    found = _ROOT.match(error.field)
    return found.group(0) if found else error.field


@dataclass
class FormState:
    """What a form page shows: the values typed, and the errors by field (Chinese)."""

    values: dict[str, list[str]] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)
    # A refusal not about one field (another authority's record, a stale version).
    alert: str | None = None

    def value(self, name: str, default: str = "") -> str:
        found = self.values.get(name)
        return found[-1] if found else default

    def chosen(self, name: str) -> list[str]:
        return self.values.get(name, [])

    def refused(self, error: InvalidInput) -> FormState:
        self.errors[field_of(error)] = reason_zh(error.reason)
        return self
