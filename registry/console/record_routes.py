"""(being built)"""

from litestar.types import ControllerRouterHandler

RECORD_HANDLERS: list[ControllerRouterHandler] = []
