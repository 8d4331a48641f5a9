"""Subjects at the console (being built)."""

from litestar.types import ControllerRouterHandler

SUBJECT_HANDLERS: list[ControllerRouterHandler] = []
