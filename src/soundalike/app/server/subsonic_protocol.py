"""The Subsonic protocol: parameters (query string and POST form), authentication, XML and JSON answers, errors.

Every ``/rest`` endpoint is a function of a :class:`Call` that returns the fields of the ``subsonic-response``
envelope (a dict, rendered as JSON with ``f=json`` and as XML otherwise) or a ready :class:`Response` (audio,
images). :func:`endpoint` routes ``/rest/NAME`` and ``/rest/NAME.view`` for GET and POST.

Authentication, when the server has a token (``soundalike serve --token T``): the token is the password of any
user name. Accepted: ``apiKey=T`` (OpenSubsonic ``apiKeyAuthentication``), ``u`` with ``t=md5(T + s)`` and salt
``s``, ``u`` with ``p=T`` or ``p=enc:HEX(T)``, and this server's ``token=T`` or ``Authorization: Bearer T``. Errors
follow Subsonic: 10 missing parameter, 40 wrong user name or password, 43 conflicting mechanisms, 44 bad API key,
70 not found, 0 anything else; HTTP 200 with ``status="failed"`` (404 for a missing image).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import sqlite3
import xml.etree.ElementTree as ET
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from fastapi import APIRouter, Request
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool

from soundalike import __version__
from soundalike.library.catalog import CatalogError
from soundalike.library.playlists import PlaylistError
from soundalike.recommend import QueryError

from .security import token_matches
from .state import ModelNameError

if TYPE_CHECKING:
    from .app import Server

API_VERSION = "1.16.1"
XMLNS = "http://subsonic.org/restapi"
EXTENSIONS = [{"name": "sonicSimilarity", "versions": [1]}, {"name": "apiKeyAuthentication", "versions": [1]},
              {"name": "formPost", "versions": [1]}]
MAX_PARAM = 10_000  # characters of one parameter value
_XML_BAD = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")

rest = APIRouter(prefix="/rest", tags=["OpenSubsonic"])


class SubsonicError(Exception):
    """Answered as a Subsonic error envelope with ``code`` (and HTTP ``status``, 200 but for missing images)."""

    def __init__(self, code: int, message: str, status: int = 200) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.status = status


def missing(name: str) -> SubsonicError:
    """Error 10 for a required parameter that was not given."""
    return SubsonicError(10, f"Required parameter is missing: {name}")


def not_found(what: str, value: str) -> SubsonicError:
    """Error 70 for an id that names nothing."""
    return SubsonicError(70, f"{what} not found: {value[:60]}")


class Params:
    """The request's parameters: the query string and, for a form POST, the form (a name may repeat)."""

    def __init__(self, items: list[tuple[str, str]]) -> None:
        self.items = items

    def get(self, name: str) -> str | None:
        """The first value of ``name``, or None."""
        for key, value in self.items:
            if key == name:
                return value
        return None

    def all(self, name: str) -> list[str]:
        """Every value of ``name`` in order (``songId=1&songId=2``)."""
        return [value for key, value in self.items if key == name]

    def required(self, name: str) -> str:
        """The value of ``name``; error 10 when missing or empty."""
        value = self.get(name)
        if value is None or value == "":
            raise missing(name)
        return value

    def integer(self, name: str, default: int | None = None, *, lo: int = 0, hi: int = 500) -> int:
        """A whole number clamped to ``[lo, hi]``; ``default`` when absent (error 10 if there is none)."""
        raw = self.get(name)
        if raw is None or raw == "":
            if default is None:
                raise missing(name)
            return default
        return clamp_int(name, raw, lo, hi)

    def flag(self, name: str, default: bool) -> bool:
        """``true``/``false`` (also 1/0)."""
        raw = self.get(name)
        if raw is None or raw == "":
            return default
        if raw.lower() in ("true", "1"):
            return True
        if raw.lower() in ("false", "0"):
            return False
        raise SubsonicError(0, f"{name} must be true or false")


def clamp_int(name: str, raw: str, lo: int, hi: int) -> int:
    """``raw`` as an integer in ``[lo, hi]`` (error 0 when it is not a whole number)."""
    text = raw.strip()
    if not (text.isascii() and text.lstrip("-").isdigit()) or len(text) > 18:
        raise SubsonicError(0, f"{name} must be a whole number")
    return min(hi, max(lo, int(text)))


@dataclass
class Call:
    """One request to a Subsonic endpoint: the request, its parameters and the server behind it."""

    request: Request
    params: Params
    server: Server

    @property
    def user(self) -> str:
        """The user name the client gave (any name is accepted; the token is the password)."""
        return (self.params.get("u") or "soundalike")[:100]

    @property
    def client(self) -> str:
        """The client's name (``c``)."""
        return (self.params.get("c") or "")[:100]


def authorise(call: Call) -> None:
    """Check the credentials when the server has a token (see the module docstring); raise :class:`SubsonicError`."""
    expected = call.server.config.token
    if expected is None:
        return
    params = call.params
    api_key, user = params.get("apiKey"), params.get("u")
    if api_key is not None:
        if user is not None or params.get("p") is not None or params.get("t") is not None:
            raise SubsonicError(43, "Multiple conflicting authentication mechanisms provided")
        if not token_matches(api_key, expected):
            raise SubsonicError(44, "Invalid API key")
        return
    header = call.request.headers.get("authorization", "")
    bearer = header[7:].strip() if header.lower().startswith("bearer ") else None
    direct = params.get("token") or bearer
    if direct is not None and user is None:
        if not token_matches(direct, expected):
            raise SubsonicError(40, "Wrong username or password")
        return
    if user is None:
        raise missing("u")
    token, salt, password = params.get("t"), params.get("s"), params.get("p")
    if token is not None:
        if salt is None:
            raise missing("s")
        wanted = hashlib.md5((expected + salt).encode("utf-8")).hexdigest()
        ok = hmac.compare_digest(wanted.encode(), token.lower().encode("utf-8", "surrogateescape"))
    elif password is not None:
        if password.startswith("enc:"):
            try:
                password = bytes.fromhex(password[4:]).decode("utf-8")
            except ValueError:
                raise SubsonicError(40, "Wrong username or password") from None
        ok = token_matches(password, expected)
    else:
        raise missing("p or t and s")
    if not ok:
        raise SubsonicError(40, "Wrong username or password")


# --- answers ------------------------------------------------------------------------------------------------------
def envelope(status: str = "ok", **fields: Any) -> dict[str, Any]:
    """The ``subsonic-response`` body: status, versions, server type, ``openSubsonic: true`` and ``fields``."""
    return {"status": status, "version": API_VERSION, "type": "soundalike", "serverVersion": __version__,
            "openSubsonic": True, **fields}


def _text(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return _XML_BAD.sub("\ufffd", str(value))


def _fill(element: ET.Element, fields: dict[str, Any]) -> None:
    """Scalars become attributes (``value`` the text), dicts child elements, lists repeated child elements."""
    for key, value in fields.items():
        if value is None:
            continue
        if isinstance(value, dict):
            _fill(ET.SubElement(element, key), value)
        elif isinstance(value, list):
            for item in value:
                if isinstance(item, dict):
                    _fill(ET.SubElement(element, key), item)
                else:
                    ET.SubElement(element, key).text = _text(item)
        elif key == "value":
            element.text = _text(value)
        else:
            element.set(key, _text(value))


def to_xml(body: dict[str, Any]) -> bytes:
    """A ``subsonic-response`` body as the XML document of the Subsonic schema (UTF-8, with declaration)."""
    root = ET.Element("subsonic-response", {"xmlns": XMLNS})
    _fill(root, body)
    return ET.tostring(root, encoding="utf-8", xml_declaration=True)


def without_nulls(value: Any) -> Any:
    """``value`` without the None fields of its dicts (absent in XML; strict JSON decoders of apps want them
    absent rather than null)."""
    if isinstance(value, dict):
        return {k: without_nulls(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [without_nulls(v) for v in value]
    return value


def render(body: dict[str, Any], params: Params, status: int = 200) -> Response:
    """The body as JSON (``f=json``), JSONP (``f=jsonp`` with ``callback``) or XML (anything else)."""
    form = (params.get("f") or "xml").lower()
    if form == "json":
        data = {"subsonic-response": without_nulls(body)}
        return Response(json.dumps(data, ensure_ascii=False, separators=(",", ":")), status_code=status,
                        media_type="application/json")
    callback = params.get("callback") or ""
    if form == "jsonp" and re.fullmatch(r"[A-Za-z_$][\w$.]{0,100}", callback):
        text = f"{callback}({json.dumps({'subsonic-response': without_nulls(body)})});"
        return Response(text, status_code=status, media_type="text/javascript")
    return Response(to_xml(body), status_code=status, media_type="text/xml; charset=utf-8")


def failure(code: int, message: str, params: Params, status: int = 200) -> Response:
    """A Subsonic error answer (``status="failed"`` with ``error.code`` and ``error.message``)."""
    return render(envelope("failed", error={"code": code, "message": message}), params, status)


# --- routing ------------------------------------------------------------------------------------------------------
Handler = Callable[[Call], "dict[str, Any] | Response"]


async def _params(request: Request) -> Params:
    items = [(k, v[:MAX_PARAM]) for k, v in request.query_params.multi_items()]
    if request.method == "POST" and request.headers.get("content-type", "").startswith(
            "application/x-www-form-urlencoded"):
        form = await request.form(max_files=0, max_fields=5000)
        items += [(k, v[:MAX_PARAM]) for k, v in form.multi_items() if isinstance(v, str)]
    return Params(items)


def _run(call: Call, handler: Handler, public: bool) -> Response:
    try:
        if not public:
            authorise(call)
        answer = handler(call)
        return answer if isinstance(answer, Response) else render(envelope(**answer), call.params)
    except SubsonicError as exc:
        return failure(exc.code, exc.message, call.params, exc.status)
    except PlaylistError as exc:
        code = 70 if str(exc).startswith("no ") else 0
        return failure(code, str(exc), call.params)
    except (QueryError, CatalogError, ModelNameError, ValueError) as exc:
        return failure(0, call.server.state.redact(str(exc)), call.params)
    except sqlite3.OperationalError as exc:  # locked past the busy timeout, a damaged catalogue...: not an HTTP 500
        reason = call.server.state.redact(str(exc)).splitlines()[0] if str(exc) else type(exc).__name__
        return failure(0, f"the catalogue cannot be used now ({reason}); try again", call.params)


def endpoint(name: str, summary: str, *, public: bool = False) -> Callable[[Handler], Handler]:
    """Route ``/rest/NAME`` and ``/rest/NAME.view``, GET and POST; only GET ``/rest/NAME`` is in the OpenAPI
    document. ``public`` endpoints need no credentials."""
    def wrap(handler: Handler) -> Handler:
        async def route(request: Request) -> Response:
            call = Call(request, await _params(request), request.app.state.server)
            return await run_in_threadpool(_run, call, handler, public)

        route.__doc__ = handler.__doc__
        for path in (f"/{name}", f"/{name}.view"):
            for method in ("GET", "POST"):
                listed = method == "GET" and not path.endswith(".view")
                rest.add_api_route(path, route, methods=[method], summary=summary if listed else None,
                                   include_in_schema=listed, response_class=Response,
                                   operation_id=f"subsonic_{name}" if listed else f"subsonic_{name}_{method}{path}")
        return handler

    return wrap
