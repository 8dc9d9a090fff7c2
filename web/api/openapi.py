"""The OpenAPI 3.1 document of the operator API, assembled from the endpoint table and the
pydantic models that validate the requests (``web/api/endpoints.py``): nothing is written
twice. OpenAPI 3.1's schemas are JSON Schema 2020-12, which pydantic emits."""

from __future__ import annotations

import copy
import dataclasses
import functools
import json
from typing import Any

from pydantic import BaseModel
from pydantic.json_schema import models_json_schema

from web.api.endpoints import PHRASES, Endpoint
from web.api.models import Problem
from web.api.problems import PROBLEM_TYPE

PREFIX = "/api/v1"
REF = "#/components/schemas/{model}"


def _without_null(schema: dict[str, Any]) -> dict[str, Any]:
    """A parameter's schema: an optional one is left out, never sent as null."""
    options = schema.get("anyOf")
    if options and {"type": "null"} in options:
        rest = [o for o in options if o != {"type": "null"}]
        schema = {k: v for k, v in schema.items() if k != "anyOf"}
        if len(rest) == 1:
            schema = {**rest[0], **schema}
        else:
            schema["anyOf"] = rest
        if schema.get("default", 0) is None:
            del schema["default"]
    return schema


def _parameters(
    where: str, model: type[BaseModel] | None, schemas: dict[str, Any]
) -> list[dict[str, Any]]:
    if model is None:
        return []
    definition = schemas[model.__name__]
    required = set(definition.get("required", ()))
    found = []
    for name, schema in definition["properties"].items():
        schema = copy.deepcopy(schema)
        description = schema.pop("description", None)
        schema.pop("title", None)
        parameter: dict[str, Any] = {
            "name": name,
            "in": where,
            "required": where == "path" or name in required,
            "schema": _without_null(schema),
        }
        if description:
            parameter["description"] = description
        found.append(parameter)
    return found


def _responses(endpoint: Endpoint, refs: dict[Any, Any]) -> dict[str, Any]:
    problem = {PROBLEM_TYPE: {"schema": refs[(Problem, "serialization")]}}
    body = {"application/json": {"schema": refs[(endpoint.response, "serialization")]}}
    responses: dict[str, Any] = {"200": {"description": "OK", "content": body}}
    if endpoint.header_model is not None:
        responses["200"]["headers"] = {
            "Idempotent-Replayed": {
                "description": "true: this key was used before; the first answer, nothing done",
                "schema": {"type": "string", "enum": ["true", "false"]},
            }
        }
    for status in endpoint.statuses:
        responses[str(status)] = {"description": PHRASES[status], "content": problem}
        if status == 429:
            responses["429"]["headers"] = {
                "Retry-After": {
                    "description": "Seconds until the token may call again",
                    "schema": {"type": "string"},
                }
            }
        if status == 401:
            responses["401"]["headers"] = {
                "WWW-Authenticate": {"description": "Bearer", "schema": {"type": "string"}}
            }
    return responses


def document(endpoints: tuple[Endpoint, ...]) -> dict[str, Any]:
    """The whole document of these endpoints (a new dict each time)."""
    models: list[tuple[type[BaseModel], str]] = [(Problem, "serialization")]
    for endpoint in endpoints:
        models.append((endpoint.response, "serialization"))
        for model in (endpoint.path_model, endpoint.query_model, endpoint.header_model):
            if model is not None:
                models.append((model, "validation"))
        if endpoint.body_model is not None:
            models.append((endpoint.body_model, "validation"))
    refs, top = models_json_schema(list(dict.fromkeys(models)), ref_template=REF)
    schemas: dict[str, Any] = top.get("$defs", {})
    parameter_models = {
        m.__name__
        for e in endpoints
        for m in (e.path_model, e.query_model, e.header_model)
        if m is not None
    }
    paths: dict[str, Any] = {}
    for endpoint in endpoints:
        operation: dict[str, Any] = {
            "operationId": endpoint.operation_id,
            "summary": endpoint.summary,
            "parameters": [
                *_parameters("path", endpoint.path_model, schemas),
                *_parameters("query", endpoint.query_model, schemas),
                *_parameters("header", endpoint.header_model, schemas),
            ],
            "responses": _responses(endpoint, refs),
        }
        if endpoint.body_model is not None:
            operation["requestBody"] = {
                "required": True,
                "content": {
                    "application/json": {"schema": refs[(endpoint.body_model, "validation")]}
                },
            }
        operation["security"] = [{"bearer": []}] if endpoint.scope is not None else []
        if endpoint.scope == "write":
            operation["description"] = "Needs a token of scope write."
        paths.setdefault(PREFIX + endpoint.path, {})[endpoint.method.lower()] = operation
    paths[PREFIX + "/openapi.json"] = {
        "get": {
            "operationId": "getOpenApi",
            "summary": "This document",
            "security": [],
            "responses": {
                "200": {
                    "description": "The OpenAPI 3.1 document",
                    "content": {"application/json": {"schema": {"type": "object"}}},
                }
            },
        }
    }
    # The parameter models are parameters, not bodies: their schemas stay out of components
    # (the enums and others they refer to stay in).
    for name in parameter_models:
        schemas.pop(name, None)
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Media Lab operator API",
            "version": "1",
            "description": "Balances, usage, limits, features and credits of the bot's users, "
            "its plans and payments. Errors are RFC 9457 problem details.",
        },
        "servers": [{"url": "/"}],
        "paths": paths,
        "components": {
            "schemas": schemas,
            "securitySchemes": {
                "bearer": {
                    "type": "http",
                    "scheme": "bearer",
                    "description": "A token of API_TOKENS (scope read or write)",
                }
            },
        },
    }


def document_text(endpoints: tuple[Endpoint, ...]) -> str:
    """The document as JSON, built once per endpoint table: a server made again with other
    settings (the tests make hundreds) has other handlers but the same document, ~20 ms of
    pydantic's schema generation each time."""
    return _document_text(tuple(dataclasses.replace(e, handler=None) for e in endpoints))  # type: ignore[arg-type]


@functools.lru_cache(maxsize=4)
def _document_text(endpoints: tuple[Endpoint, ...]) -> str:
    return json.dumps(document(endpoints), ensure_ascii=False)
