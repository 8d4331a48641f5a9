"""(being built)"""

from litestar.types import ControllerRouterHandler

IMPORT_HANDLERS: list[ControllerRouterHandler] = []
