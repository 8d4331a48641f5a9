"""OpenAPI metadata: the security scheme, the docs UIs, and documented error answers."""

from __future__ import annotations

import msgspec
from litestar._openapi.schema_generation import SchemaCreator
from litestar._openapi.schema_generation.plugins.struct import StructSchemaPlugin
from litestar.openapi import OpenAPIConfig, ResponseSpec
from litestar.openapi.plugins import ScalarRenderPlugin, SwaggerRenderPlugin
from litestar.openapi.spec import Components, Schema, SecurityScheme
from litestar.typing import FieldDefinition

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


# Every route may answer these: malformed or unacceptable input, and overload.
_ALWAYS = (400, 422, 503)


def problem_responses(*statuses: int) -> dict[int, ResponseSpec]:
    return {
        status: ResponseSpec(
            data_container=Problem,
            description=_DESCRIPTIONS[status],
            media_type="application/problem+json",
        )
        for status in sorted({*statuses, *_ALWAYS})
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


class StrictStructSchemaPlugin(StructSchemaPlugin):
    """Document ``forbid_unknown_fields`` structs as ``additionalProperties: false``.

    The server refuses unknown fields (they are usually typos); saying so in the
    schema keeps clients and fuzzers from treating that refusal as a bug.
    """

    def to_openapi_schema(self, field_definition: FieldDefinition, schema_creator: SchemaCreator) -> Schema:
        schema = super().to_openapi_schema(field_definition, schema_creator)
        info = msgspec.inspect.type_info(field_definition.type_)
        if isinstance(info, msgspec.inspect.StructType) and info.forbid_unknown_fields:
            target = schema_creator.schema_registry.get_schema_for_field_definition(field_definition)
            target.additional_properties = False
        return schema
