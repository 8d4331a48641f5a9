"""(being built)"""

from litestar.types import ControllerRouterHandler

DECISION_HANDLERS: list[ControllerRouterHandler] = []
