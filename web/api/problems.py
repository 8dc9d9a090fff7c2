"""Every error of the operator API in one shape: RFC 9457 problem details
(``application/problem+json``: type, title, status, detail, instance).

A handler raises :class:`ApiProblem`; the API's middleware turns it, aiohttp's own refusals
(no route, a wrong method, a body too large) and any unexpected error into a problem response.
"""

from __future__ import annotations

import json
from typing import Any

from aiohttp import web

from web.api.models import Problem

PROBLEM_TYPE = "application/problem+json"
# Our problem types: a URN per kind of error (RFC 9457 allows any URI; "about:blank" for a
# plain HTTP status with nothing more to say).
TYPE_PREFIX = "urn:media-lab:problem:"


class ApiProblem(Exception):
    """An error the API answers with a problem document."""

    def __init__(
        self,
        status: int,
        kind: str,
        title: str,
        detail: str,
        *,
        headers: dict[str, str] | None = None,
        errors: list[dict[str, Any]] | None = None,
    ) -> None:
        super().__init__(detail)
        self.status = status
        self.kind = kind
        self.title = title
        self.detail = detail
        self.headers = headers or {}
        self.errors = errors


def problem_response(
    request: web.Request,
    status: int,
    *,
    type_: str,
    title: str,
    detail: str,
    headers: dict[str, str] | None = None,
    errors: list[dict[str, Any]] | None = None,
) -> web.Response:
    body = Problem(
        type=type_,
        title=title,
        status=status,
        detail=detail,
        instance=request.path,
        errors=errors,
    ).model_dump(mode="json", exclude_none=True)
    return web.Response(
        status=status,
        text=json.dumps(body, ensure_ascii=False),
        content_type=PROBLEM_TYPE,
        headers=headers,
    )


def from_problem(request: web.Request, problem: ApiProblem) -> web.Response:
    return problem_response(
        request,
        problem.status,
        type_=TYPE_PREFIX + problem.kind,
        title=problem.title,
        detail=problem.detail,
        headers=problem.headers,
        errors=problem.errors,
    )


def from_http_error(request: web.Request, exc: web.HTTPException) -> web.Response:
    """aiohttp's own refusal (404 no route, 405, 413) as a problem: about:blank, the
    status's phrase as the title."""
    headers = {k: v for k, v in exc.headers.items() if k.lower() == "allow"}
    return problem_response(
        request,
        exc.status,
        type_="about:blank",
        title=exc.reason,
        detail=exc.reason if exc.status != 404 else f"no such resource: {request.path[:200]}",
        headers=headers,
    )
