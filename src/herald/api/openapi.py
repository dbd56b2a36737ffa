"""The OpenAPI document: what aiohttp-apigami builds from the handlers' decorators, finished with what decorators
cannot say (operation ids, links, the id in paths, bodies that must not be empty, security by auth mode), so that
the document states exactly what the server enforces and answers."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

from aiohttp import web
from aiohttp.typedefs import Handler
from aiohttp_apigami import AiohttpApiSpec
from aiohttp_apigami.constants import SWAGGER_DICT
from aiohttp_apigami.swagger_ui import SWAGGER_UI_STATIC_FILES

from herald.api.common import problems
from herald.api.problems import on_validation_error
from herald.api.routes import OPENAPI_URL, setup_routes
from herald.api.schemas import MAX_ID, Problem

DESCRIPTION = """\
Herald keeps a directory of clients and delivers mailings to them through an external SMS API.

* A mailing starts by itself at `start_at` and delivers one message to every client that matches its filter;
  nothing is delivered at or after `end_at`. An optional `send_window` limits sending to hours of each client's
  local time.
* Ids are integers. Lists page by key: pass a page's `next_after` as `after` to get the next one.
* Times are ISO 8601 with an offset; they come back in UTC.
* Every error is `application/problem+json`; validation errors (422) list the offending fields under `errors`.
* Creates can be retried safely with an `Idempotency-Key` header: the same key and body answer the first result
  again, without a second write.
"""
SWAGGER_PAGE = Path(__file__).with_name("swagger")
BEARER = {"bearerAuth": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"}}
# A POST's answer carries the id that the operations under a path take.
LINKED = {
    ("post", "/api/v1/clients"): "/api/v1/clients/{id}",
    ("post", "/api/v1/mailings"): "/api/v1/mailings/{id}",
    ("post", "/api/v1/clients/import"): "/api/v1/imports/{id}",
}
# The id in a path: digits (the route admits nothing else), and beyond int64 nothing exists (a 404).
PATH_ID = {
    "in": "path",
    "name": "id",
    "required": True,
    "schema": {"type": "integer", "format": "int64", "minimum": 0, "maximum": MAX_ID},
}
# Changes of which at least one field must be given.
NOT_EMPTY = ("ClientPatch", "MailingPatch")
# What the access-control middleware answers for every protected operation (auth mode oidc).
GATE = problems(401, 403, 503)


def setup_docs(app: web.Application, *, access_control: bool) -> None:
    """The document at OPENAPI_URL and Swagger UI at /docs/, for the routes the app has now."""
    docs = AiohttpApiSpec(
        title="Herald",
        version="1.0",
        url=OPENAPI_URL,
        openapi_version="3.0.3",
        error_callback=on_validation_error,
        info={"description": DESCRIPTION},
    )
    # Error responses refer to it by name; apispec resolves the decorators' dicts in place, so the component is
    # registered here for every app, not only for the first one built in a process.
    docs.spec.components.schema("Problem", schema=Problem)
    docs.register(app, in_place=True)
    finish(app[SWAGGER_DICT], app.router, access_control=access_control)
    # Swagger UI: the bundle aiohttp-apigami ships, in a page of Herald's whose script is a file (see security.py).
    app.router.add_static("/static/swagger", SWAGGER_UI_STATIC_FILES)
    app.router.add_get("/docs/", _swagger_file("index.html"), allow_head=False)
    app.router.add_get("/docs/init.js", _swagger_file("init.js"), allow_head=False)


def document(*, access_control: bool) -> dict[str, Any]:
    """The document a Herald serves in that auth mode; no app starts (`herald openapi`)."""
    app = web.Application()
    setup_routes(app)
    setup_docs(app, access_control=access_control)
    served: dict[str, Any] = app[SWAGGER_DICT]
    return served


def finish(document: dict[str, Any], router: web.UrlDispatcher, *, access_control: bool) -> None:
    """Completes the document in place (the app serves that very dict)."""
    names = {(route.method.lower(), route.resource.canonical): route.handler.__name__ for route in router.routes()
             if route.resource is not None}  # fmt: skip
    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            operation["operationId"] = names[method, path]
            operation.pop("produces", None)  # aiohttp-apigami's leftover of OpenAPI 2
            operation["parameters"] = [PATH_ID if p["in"] == "path" and p["name"] == "id" else p
                                       for p in operation["parameters"]]  # fmt: skip
            if "requestBody" in operation:
                operation["requestBody"]["required"] = True
    for (method, path), target in LINKED.items():
        created = document["paths"][path][method]["responses"]
        status = next(code for code in created if code.startswith("2"))
        created[status]["links"] = {
            _link_name(operation["operationId"]): {
                "operationId": operation["operationId"],
                "parameters": {"id": "$response.body#/id"},
            }
            for linked_path, operations in document["paths"].items()
            if linked_path == target or linked_path.startswith(target + "/")
            for operation in operations.values()
        }
    schemas = document["components"]["schemas"]
    for schema in schemas.values():
        for field in schema.get("properties", {}).values():
            _nullable_ref(field)
    for name in NOT_EMPTY:
        schemas[name]["minProperties"] = 1
    if access_control:
        document["security"] = [{"bearerAuth": []}]
        document["components"]["securitySchemes"] = copy.deepcopy(BEARER)
        for operations in document["paths"].values():
            for operation in operations.values():
                operation["responses"].update(copy.deepcopy(_resolved(GATE)))


def without_security(document: dict[str, Any]) -> dict[str, Any]:
    """The document as mode `none` serves it: nobody is asked for credentials, so nobody is refused them."""
    document = copy.deepcopy(document)
    document.pop("security", None)
    document["components"].pop("securitySchemes", None)
    for operations in document["paths"].values():
        for operation in operations.values():
            for status in GATE:
                operation["responses"].pop(str(status), None)
    return document


def _nullable_ref(field: dict[str, Any]) -> None:
    """apispec writes a nullable nested object as "that object, or any object or null", which admits {} or any other
    object; it is that object or null: OpenAPI 3.0 says so with allOf and nullable."""
    match field.get("anyOf"):
        case [{"$ref": ref}, {"type": "object", "nullable": True}]:
            del field["anyOf"]
            field.update({"allOf": [{"$ref": ref}], "nullable": True})


def _swagger_file(name: str) -> Handler:
    path = SWAGGER_PAGE / name

    async def serve(request: web.Request) -> web.StreamResponse:
        return web.FileResponse(path)

    return serve


def _link_name(operation_id: str) -> str:
    return "".join(word.capitalize() for word in operation_id.split("_"))


def _resolved(responses: dict[int, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Responses as they appear in the finished document: string codes, the Problem schema by reference."""
    ref = {"$ref": "#/components/schemas/Problem"}
    return {
        str(code): {
            "description": response["description"],
            "content": {media: {"schema": ref} for media in response["content"]},
        }
        for code, response in responses.items()
    }
