"""Outbound HTTP over ``wasi:http``, to the origins the manifest grants.

The host answers only requests to origins in the manifest's
``[capabilities] outbound_http``; any other is refused before a connection
opens, and :func:`request` raises :class:`HttpError` with ``kind ==
"denied"``. ``syncplane service build`` imports ``wasi:http`` into a
component only when the manifest grants an origin, so without a grant every
call raises ``kind == "denied"`` too::

    from syncplane import http

    answer = http.get(f"{require_config('api_url')}/zones").raise_for_status()
    zones = answer.json()
    http.post(url, json={"name": o.name}, headers={"X-API-Key": secret("key")})

A status such as 404 is not an error of :func:`request`;
:meth:`Response.raise_for_status` makes it one. Redirects are not followed.
Uncaught, an :class:`HttpError` fails the step with its message, which
names the method and URL.
"""

from __future__ import annotations

import json as _json
from dataclasses import dataclass, field
from typing import Any, Dict, List, Mapping, Optional, Tuple
from urllib.parse import urlsplit

from . import _host
from .errors import Failed

DEFAULT_BODY_LIMIT = 16 * 1024 * 1024
"""The most response body bytes :func:`request` reads unless told otherwise."""

_QUOTED_BODY = 1024
_CHUNK = 4096
_READ = 65536

KINDS = ("invalid", "denied", "connect", "timeout", "body_too_large", "status", "decode", "other")
"""The values of :attr:`HttpError.kind`."""


class HttpError(Failed):
    """A request did not produce the response the caller wanted.

    ``kind`` says why (one of :data:`KINDS`):

    - ``invalid``: the request could not be built (URL, header, body); nothing was sent;
    - ``denied``: the manifest does not grant the origin; nothing was sent;
    - ``connect``: DNS, a refused or reset connection, TLS;
    - ``timeout``: a connect, first-byte or between-bytes timeout;
    - ``body_too_large``: the response body is over the request's ``body_limit``;
    - ``status``: :meth:`Response.raise_for_status` found a status that is not 2xx;
    - ``decode``: the body is not UTF-8 or not JSON;
    - ``other``: a protocol error or a limit of the host.
    """

    def __init__(self, kind: str, request: str, detail: str, status: Optional[int] = None) -> None:
        super().__init__(f"{request}: {detail}")
        self.kind = kind
        self.request = request
        self.status = status

    @property
    def denied(self) -> bool:
        """Whether the host refused a request its grants do not cover."""
        return self.kind == "denied"


@dataclass
class Response:
    """A complete response: status, headers (names lower-cased) and body."""

    status: int
    headers: List[Tuple[str, str]]
    body: bytes
    request: str = field(default="")

    def header(self, name: str) -> Optional[str]:
        """The first value of header ``name`` (case-insensitive)."""
        wanted = name.lower()
        return next((v for k, v in self.headers if k == wanted), None)

    @property
    def ok(self) -> bool:
        """Whether the status is 2xx."""
        return 200 <= self.status < 300

    def raise_for_status(self) -> "Response":
        """This response when its status is 2xx, else :class:`HttpError`
        (``status``) with the status and the start of the body."""
        if self.ok:
            return self
        quoted = self.body[:_QUOTED_BODY].decode("utf-8", "replace").strip()
        if len(self.body) > _QUOTED_BODY:
            quoted += " [...]"
        raise HttpError("status", self.request, f"status {self.status}: {quoted}", self.status)

    def text(self) -> str:
        """The body as UTF-8 text (``decode`` when it is not)."""
        try:
            return self.body.decode("utf-8")
        except UnicodeDecodeError as e:
            raise HttpError("decode", self.request, f"the response body is not UTF-8: {e}") from None

    def json(self) -> Any:
        """The body parsed as JSON (``decode`` when it is not)."""
        try:
            return _json.loads(self.text())
        except ValueError as e:
            raise HttpError("decode", self.request, f"the response body is not JSON: {e}") from None


def request(
    method: str,
    url: str,
    *,
    headers: Optional[Mapping[str, str]] = None,
    body: Optional[bytes] = None,
    json: Any = None,
    timeout: Optional[float] = None,
    body_limit: int = DEFAULT_BODY_LIMIT,
) -> Response:
    """Sends a request and reads the whole response.

    ``json`` sends a value as a JSON body (with ``content-type:
    application/json``); ``body`` sends bytes. ``timeout`` (seconds) bounds
    the connect, the wait for the first byte and each wait between bytes;
    without it only the host's limits apply. Raises :class:`HttpError`.
    """
    described = f"{method.upper()} {url}"
    outgoing_handler, types, streams = _bindings(described)
    payload, all_headers = _payload(described, headers, body, json)
    scheme, authority, path = _split(described, url)

    fields = types.Fields()
    for name, value in all_headers:
        try:
            fields.append(name, value.encode("utf-8"))
        except Exception as e:
            raise HttpError("invalid", described, f"header `{name}` was refused ({_what(e)})") from None
    outgoing = types.OutgoingRequest(fields)
    _set(described, "method", outgoing.set_method, _method(types, method))
    _set(described, "scheme", outgoing.set_scheme, types.Scheme_Https() if scheme == "https" else types.Scheme_Http())
    _set(described, "host", outgoing.set_authority, authority)
    _set(described, "path", outgoing.set_path_with_query, path)
    options = None
    if timeout is not None:
        nanos = max(0, int(timeout * 1_000_000_000))
        options = types.RequestOptions()
        _set(described, "timeout", options.set_connect_timeout, nanos)
        _set(described, "timeout", options.set_first_byte_timeout, nanos)
        _set(described, "timeout", options.set_between_bytes_timeout, nanos)
    outgoing_body = outgoing.body() if payload else None

    # The body is written after `handle`: before it nothing reads the
    # body's stream, and a large body would block.
    try:
        future = outgoing_handler.handle(outgoing, options)
    except Exception as e:
        if outgoing_body is not None:
            outgoing_body.__exit__(None, None, None)
        raise _from_error(described, e) from None
    written: Optional[HttpError] = None
    if outgoing_body is not None:
        written = _write_body(described, types, outgoing_body, payload)
    with future:
        incoming = _wait(described, future)
    if written is not None:
        incoming.__exit__(None, None, None)
        raise written
    with incoming:
        status = incoming.status()
        with incoming.headers() as received:
            response_headers = [(k.lower(), v.decode("utf-8", "replace")) for k, v in received.entries()]
        data = _read_body(described, streams, incoming.consume(), response_headers, body_limit)
    return Response(status, response_headers, data, described)


def get(url: str, **kwargs: Any) -> Response:
    """``request("GET", url, ...)``."""
    return request("GET", url, **kwargs)


def post(url: str, **kwargs: Any) -> Response:
    """``request("POST", url, ...)``."""
    return request("POST", url, **kwargs)


def put(url: str, **kwargs: Any) -> Response:
    """``request("PUT", url, ...)``."""
    return request("PUT", url, **kwargs)


def patch(url: str, **kwargs: Any) -> Response:
    """``request("PATCH", url, ...)``."""
    return request("PATCH", url, **kwargs)


def delete(url: str, **kwargs: Any) -> Response:
    """``request("DELETE", url, ...)``."""
    return request("DELETE", url, **kwargs)


def _bindings(described: str) -> Tuple[Any, Any, Any]:
    """The generated ``wasi:http`` modules, or ``denied`` when this
    component was built without them (its manifest grants no origin)."""
    if _host.outgoing_handler is None or _host.wasi_http_types is None or _host.streams is None:
        raise HttpError(
            "denied",
            described,
            "denied: this component has no outbound HTTP (grant origins with `[capabilities] outbound_http` "
            "in syncplane.toml and build again)",
        )
    return _host.outgoing_handler, _host.wasi_http_types, _host.streams


def _payload(
    described: str, headers: Optional[Mapping[str, str]], body: Optional[bytes], value: Any
) -> Tuple[bytes, List[Tuple[str, str]]]:
    """The body's bytes and every header to send, content-length included."""
    all_headers: List[Tuple[str, str]] = list((headers or {}).items())
    names = {k.lower() for k, _ in all_headers}
    if body is not None and value is not None:
        raise HttpError("invalid", described, "give `body` or `json`, not both")
    payload = b""
    if value is not None:
        try:
            payload = _json.dumps(value).encode("utf-8")
        except (TypeError, ValueError) as e:
            raise HttpError("invalid", described, f"the JSON body cannot be encoded: {e}") from None
        if "content-type" not in names:
            all_headers.append(("content-type", "application/json"))
    elif body is not None:
        payload = bytes(body)
    if payload and "content-length" not in names:
        # Without a length the body goes out chunked, which some backends'
        # servers do not read.
        all_headers.append(("content-length", str(len(payload))))
    return payload, all_headers


def _split(described: str, url: str) -> Tuple[str, str, str]:
    """``(scheme, authority, path_with_query)`` of an absolute http(s) URL."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as e:
        raise HttpError("invalid", described, f"not a URL: {e}") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise HttpError("invalid", described, "not an absolute http:// or https:// URL")
    if parts.username is not None or parts.password is not None:
        raise HttpError("invalid", described, "credentials in the URL are not sent; use a header")
    host = parts.hostname if ":" not in parts.hostname else f"[{parts.hostname}]"
    authority = host if port is None else f"{host}:{port}"
    path = parts.path or "/"
    if parts.query:
        path += f"?{parts.query}"
    return parts.scheme, authority, path


def _method(types: Any, method: str) -> Any:
    known: Dict[str, str] = {
        "GET": "Method_Get",
        "HEAD": "Method_Head",
        "POST": "Method_Post",
        "PUT": "Method_Put",
        "DELETE": "Method_Delete",
        "OPTIONS": "Method_Options",
        "PATCH": "Method_Patch",
    }
    name = known.get(method.upper())
    return getattr(types, name)() if name else types.Method_Other(method)


def _set(described: str, what: str, setter: Any, value: Any) -> None:
    try:
        setter(value)
    except Exception:
        raise HttpError("invalid", described, f"the host refused the {what}") from None


def _write_body(described: str, types: Any, outgoing_body: Any, payload: bytes) -> Optional[HttpError]:
    """Writes and finishes the body; the error, if writing failed."""
    try:
        with outgoing_body.write() as stream:
            for start in range(0, len(payload), _CHUNK):
                stream.blocking_write_and_flush(payload[start : start + _CHUNK])
        types.OutgoingBody.finish(outgoing_body, None)
    except Exception as e:
        return HttpError("other", described, f"sending the body failed ({_what(e)})")
    return None


def _wait(described: str, future: Any) -> Any:
    """The incoming response of a future, once it is in."""
    while True:
        answer = future.get()
        if answer is not None:
            break
        with future.subscribe() as ready:
            ready.block()
    inner = getattr(answer, "value", answer)
    if type(answer).__name__ == "Err":
        raise HttpError("other", described, "the response was already taken")
    if type(inner).__name__ == "Err":
        raise _from_code(described, inner.value)
    return getattr(inner, "value", inner)


def _read_body(
    described: str, streams: Any, body: Any, headers: List[Tuple[str, str]], limit: int
) -> bytes:
    length = next((v for k, v in headers if k == "content-length"), None)
    if length is not None and length.isdigit() and int(length) > limit:
        body.__exit__(None, None, None)
        raise HttpError("body_too_large", described, f"the response body is over the limit of {limit} bytes")
    chunks: List[bytes] = []
    size = 0
    with body:
        with body.stream() as stream:
            while True:
                try:
                    chunk = stream.blocking_read(_READ)
                except Exception as e:
                    if type(getattr(e, "value", None)).__name__ == "StreamError_Closed":
                        break
                    raise HttpError("other", described, f"reading the body failed ({_what(e)})") from None
                size += len(chunk)
                if size > limit:
                    raise HttpError(
                        "body_too_large", described, f"the response body is over the limit of {limit} bytes"
                    )
                chunks.append(chunk)
    return b"".join(chunks)


def _from_error(described: str, e: Exception) -> HttpError:
    """The error for an exception from ``outgoing-handler.handle``."""
    value = getattr(e, "value", None)
    if value is None:
        return HttpError("other", described, _what(e))
    return _from_code(described, value)


def _from_code(described: str, code: Any) -> HttpError:
    """Classifies a ``wasi:http`` error code."""
    name = type(code).__name__.removeprefix("ErrorCode_")
    value = getattr(code, "value", None)
    if name == "InternalError" and isinstance(value, str) and value.startswith("denied"):
        return HttpError("denied", described, value)
    if name == "HttpRequestDenied":
        return HttpError("denied", described, "denied: the host refused the request")
    if name == "DestinationIpProhibited":
        return HttpError("denied", described, "denied: the destination address is prohibited")
    if name in ("DnsTimeout", "ConnectionTimeout", "ConnectionReadTimeout", "ConnectionWriteTimeout", "HttpResponseTimeout"):
        return HttpError("timeout", described, _words(name))
    if name.startswith("Dns") or name.startswith("Destination") or name.startswith("Connection") or name.startswith("Tls"):
        return HttpError("connect", described, _words(name))
    detail = _words(name)
    if isinstance(value, str) and value:
        detail += f": {value}"
    return HttpError("other", described, detail)


def _words(name: str) -> str:
    """``ConnectionRefused`` -> ``connection refused``."""
    out = "".join(f" {c.lower()}" if c.isupper() else c for c in name).strip()
    return out.replace("dns", "DNS").replace("tls", "TLS").replace("http", "HTTP").replace(" ip ", " IP ")


def _what(e: Exception) -> str:
    value = getattr(e, "value", None)
    return type(value).__name__ if value is not None else str(e) or type(e).__name__
