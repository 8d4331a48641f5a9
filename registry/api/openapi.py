"""OpenAPI metadata: the security scheme, the docs UIs, and documented error answers."""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal
from typing import Any

import msgspec
from litestar import Litestar
from litestar._openapi.plugin import OpenAPIPlugin
from litestar._openapi.schema_generation import SchemaCreator
from litestar._openapi.schema_generation.plugins.struct import StructSchemaPlugin
from litestar.openapi import OpenAPIConfig, ResponseSpec
from litestar.openapi.spec import Components, OpenAPIType, Schema, SecurityScheme
from litestar.params import QueryParameter
from litestar.plugins import OpenAPISchemaPlugin
from litestar.typing import FieldDefinition

from registry.api.docs import OfflineSwagger
from registry.structs.common import Problem

_DESCRIPTIONS = {
    400: "Malformed request: the problem names the field, the reason and what is accepted",
    401: "Missing, unknown or revoked bearer token",
    403: "The token's role may not do this",
    404: "No such resource",
    409: "Conflicts with the current state (duplicate, stale version, illegal transition)",
    413: "Request body too large",
    415: "The body's Content-Type is not one the route reads: Accept-Post lists those it does",
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
        # Served from local files: the docs work without internet (api/docs.py).
        render_plugins=[OfflineSwagger()],
    )


# The registry's decimals are amounts in 万元 (structs/credit.py Amount): 12 digits, 6 decimals.
AMOUNT_PATTERN = r"^[0-9]{1,12}(\.[0-9]{1,6})?$"


class AmountSchemaPlugin(OpenAPISchemaPlugin):
    """Document a ``Decimal`` as what the decoder accepts: a decimal string (the preferred
    form) or a JSON number. Litestar's default, any string, let clients send ``""`` and
    learn only from the 400."""

    @staticmethod
    def is_plugin_supported_type(value: Any) -> bool:
        return value is Decimal

    def to_openapi_schema(self, field_definition: FieldDefinition, schema_creator: SchemaCreator) -> Schema:
        return Schema(
            one_of=[
                Schema(type=OpenAPIType.STRING, pattern=AMOUNT_PATTERN),
                Schema(type=OpenAPIType.NUMBER, minimum=0, exclusive_maximum=10**12),
            ],
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


def enum_query(
    values: Sequence[str], description: str, *, query: str | None = None
) -> QueryParameter:
    """A query parameter that takes one of ``values``, documented as that ``enum``.

    The schema only documents: the route checks the value against the same ``values`` and
    answers anything else with its 422 naming the field and the accepted list (typed as a
    ``Literal`` instead, the value would be refused by Litestar, with a 400, before it).
    """
    return QueryParameter(name=query, description=description, schema_extra={"enum": list(values)})


# What every query parameter's text must be (api/body_guard.py refuses the rest with a 400).
QUERY_TEXT_PATTERN = "^[^\\u0000-\\u001f\\u007f-\\u009f]*$"


def state_query_text_rule(app: Litestar) -> None:
    """Write the query-text rule into the document once, for every free-text query
    parameter (those without an enum, format or pattern of their own), so that clients
    and fuzzers know a control character is refused rather than finding out."""
    document = app.plugins.get(OpenAPIPlugin).provide_openapi()
    for item in (document.paths or {}).values():
        for method in ("get", "head", "post", "put", "patch", "delete"):
            operation = getattr(item, method, None)
            for parameter in (operation.parameters or []) if operation else []:
                if getattr(parameter, "param_in", None) == "query":
                    for schema in _alternatives(getattr(parameter, "schema", None)):
                        if schema.type == OpenAPIType.STRING and not (
                            schema.enum or schema.format or schema.pattern or schema.const
                        ):
                            schema.pattern = QUERY_TEXT_PATTERN


def _alternatives(schema: object) -> list[Schema]:
    """A schema and the choices of its ``oneOf``/``anyOf`` (an optional text is
    ``oneOf: [string, null]``)."""
    if not isinstance(schema, Schema):
        return []
    choices = [*(schema.one_of or []), *(schema.any_of or [])]
    return [schema, *(s for s in choices if isinstance(s, Schema))]
