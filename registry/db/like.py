"""Searching with LIKE for what a user typed, and nothing more.

`%` and `_` typed by a user are characters to find, not wildcards: `name_prefix=%` once
listed every subject. PostgreSQL's default LIKE escape character is the backslash, so
escaping it first and then the two wildcards makes any text a literal pattern part.
"""

from __future__ import annotations


def literal(text: str) -> str:
    """``text`` as a LIKE pattern that matches exactly it (add your own ``%`` around it)."""
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
