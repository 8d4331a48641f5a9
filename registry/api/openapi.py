"""OpenAPI metadata: the security scheme, the docs UIs, and documented error answers."""

from __future__ import annotations

from litestar.openapi import OpenAPIConfig, ResponseSpec
from litestar.openapi.plugins import ScalarRenderPlugin, SwaggerRenderPlugin
from litestar.openapi.spec import Components, SecurityScheme

from registry.api.schemas import Problem

_DESCRIPTIONS = {
    400: "Malformed request: the problem names the field, the reason and what is accepted",
    401: "Missing, unknown or revoked bearer token",
    403: "The token's role may not do this",
    404: "No such resource",
    409: "Conflicts with the current state (duplicate, stale version, illegal transition)",
    413: "Request body too large",
    422: "A field's value is not acceptable (e.g. wrong check character)",
    429: "Rate limit reached; see Retry-After",
    503: "Temporarily unavailable; see Retry-After",
}


def problem_responses(*statuses: int) -> dict[int, ResponseSpec]:
    return {
        status: ResponseSpec(
            data_container=Problem,
            description=_DESCRIPTIONS[status],
            media_type="application/problem+json",
        )
        for status in statuses
    }


def openapi_config(version: str) -> OpenAPIConfig:
    return OpenAPIConfig(
        title="Xining venture-investment credit registry",
        version=version,
        description=(
            "Credit records of venture-capital firms, their managers and practitioners; the "
            "serious-dishonesty list; a tamper-evident RFC 6962 audit log with signed C2SP "
            "checkpoints. Errors are RFC 9457 problem details. Authenticated routes take "
            "`Authorization: Bearer <token>` issued with `registry keys issue`."
        ),
        components=Components(
            security_schemes={
                "bearer": SecurityScheme(
                    type="http", scheme="bearer", description="Token from `registry keys issue`"
                )
            }
        ),
        path="/schema",
        render_plugins=[ScalarRenderPlugin(), SwaggerRenderPlugin(path="/swagger")],
    )
