"""The OpenAPI 3 document of the API, generated from the route table and its
marshmallow schemas (apispec's MarshmallowPlugin): one operation per route,
its path parameters, query parameters, request body, answer and the one
error body for every status the gateway answers with."""
from __future__ import annotations

from apispec import APISpec
from apispec.ext.marshmallow import MarshmallowPlugin

from services.gateway.api import schemas as api_schemas
from shared.money import Money

TITLE = "Dibao API (最低生活保障业务系统)"
VERSION = "1"
ERRORS = {
    400: "validation_failed: details.fields names each invalid field",
    401: "unauthenticated: no login, or one identity no longer honours",
    403: "forbidden: the role, the jurisdiction or the separation of duties refuses it",
    404: "not_found: no such record within your jurisdiction",
    409: "conflict: the record's state does not allow it",
    500: "internal_error: details.reference finds it in the gateway's log",
}
DESCRIPTION = """Every operator call of Dibao over HTTP, made as the person logged in.

Authenticate with the token identity gives at login (`dibao login`, then
`dibao auth print-token`) as `Authorization: Bearer <token>`, or with the
console's session cookie (`dibao_session`; a call that changes something then
also sends the page's CSRF token as `X-CSRF-Token`). Each service checks the
person's roles and jurisdiction and records the command as theirs. Errors
have one body: `{code, message, details}`."""


def _schema_name(schema) -> str:
    cls = schema if isinstance(schema, type) else type(schema)
    module = cls.__module__.rsplit(".", 1)[-1]
    name = cls.__name__.removesuffix("Schema")
    prefix = "" if module in ("schemas", "openapi") else module.title()
    return name if name.startswith(prefix) else f"{prefix}{name}"


def _parameter(name: str, route) -> dict:
    kind, doc = route.path_types.get(name, ("uuid", ""))
    schema = {"type": "integer"} if kind == "integer" else {"type": "string", "format": "uuid"} \
        if kind == "uuid" else {"type": "string"}
    return {"in": "path", "name": name, "required": True, "schema": schema, "description": doc or name}


def operation(route) -> dict:
    op = {"operationId": route.operation_id, "summary": route.summary, "tags": [route.tag],
          "description": route.description or f"RPC `{route.service}.{route.rpc}` as the logged-in person.",
          "parameters": [_parameter(name, route) for name in route.path_params]}
    if route.query is not None:
        op["parameters"].append({"in": "query", "schema": route.query})
    if route.body is not None:
        op["requestBody"] = {"required": True, "content": {"application/json": {"schema": route.body}}}
    answer = route.response or api_schemas.Answer
    content_schema = {"type": "array", "items": answer} if route.many else answer
    op["responses"] = {str(route.status): {"description": "the service's answer",
                                           "content": {"application/json": {"schema": content_schema}}}}
    for status in ERRORS:
        op["responses"][str(status)] = {"$ref": f"#/components/responses/E{status}"}
    return op


def _described(self, field, **kwargs) -> dict:
    """The schemas' own ``metadata={"doc": ...}`` as the property's description."""
    doc = field.metadata.get("doc")
    return {"description": doc} if doc and "description" not in field.metadata else {}


def _money(self, field, **kwargs) -> dict:
    if isinstance(field, Money):
        return {"type": "string", "pattern": r"^-?\d+(\.\d{1,2})?$",
                "description": field.metadata.get("doc") or "an amount in yuan (元), a decimal string such as \"1200.50\""}
    return {}


def document(routes) -> dict:
    plugin = MarshmallowPlugin(schema_name_resolver=_schema_name)
    spec = APISpec(title=TITLE, version=VERSION, openapi_version="3.0.3", plugins=[plugin],
                   info={"description": DESCRIPTION}, servers=[{"url": "/api"}])
    plugin.converter.add_attribute_function(_money)
    plugin.converter.add_attribute_function(_described)
    spec.components.security_scheme("bearerAuth", {"type": "http", "scheme": "bearer", "bearerFormat": "JWT",
                                                   "description": "identity's token (EdDSA JWT)"})
    spec.components.security_scheme("cookieAuth", {"type": "apiKey", "in": "cookie", "name": "dibao_session",
                                                   "description": "the console's session (plus X-CSRF-Token "
                                                                  "on a call that changes something)"})
    spec.components.schema("Error", schema=api_schemas.ErrorSchema)
    for status, text in ERRORS.items():
        spec.components.response(f"E{status}", {"description": text, "content": {
            "application/json": {"schema": "Error"}}})
    paths: dict[str, dict] = {}
    for route in routes:
        paths.setdefault(route.path, {})[route.method.lower()] = operation(route)
    for path, operations in paths.items():
        spec.path(path=path, operations=operations)
    out = spec.to_dict()
    out["security"] = [{"bearerAuth": []}, {"cookieAuth": []}]
    return out
