"""Talk to the one configured origin: request target and header hygiene, the request
body stream with its cap, and the mapping of failures to 502/504.

Hop-by-hop headers go first (the ones ``Connection`` lists, then the fixed set),
forwarding headers are added after, so a client cannot delete ``X-Forwarded-For``
by listing it in ``Connection``.
"""

from __future__ import annotations

import asyncio
import ipaddress
from collections.abc import AsyncIterator, Iterable, Mapping
from dataclasses import dataclass

import aiohttp
from aiohttp import web
from multidict import CIMultiDict, CIMultiDictProxy

from proxy.http import codec
from proxy.http.deadlines import RequestDeadlines
from proxy.http.forwarded import Authority, Origin, claimed_host, claimed_scheme, parse_authority
from proxy.settings import Network, Settings

HOP_BY_HOP = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-connection",
        "te",
        "trailer",
        "trailers",
        "transfer-encoding",
        "upgrade",
        "proxy-authenticate",
        "proxy-authorization",
        "http2-settings",
    }
)
FORWARDING = (
    "x-forwarded-for",
    "x-forwarded-proto",
    "x-forwarded-host",
    "x-forwarded-port",
    "x-real-ip",
    "forwarded",
)


class ExactRequest(aiohttp.ClientRequest):
    """aiohttp's client request, sending the headers it is given and no others: no
    default Accept, Accept-Encoding or User-Agent, no Content-Type for a body. (The
    session's skip_auto_headers would do the same at a cost on every request.)"""

    _skip_auto_headers = CIMultiDict({"Content-Type": None})

    def update_auto_headers(self, skip_auto_headers: Iterable[str] | None) -> None:
        return None


class BodyTooLarge(Exception):
    """The request body crossed --max-body while streaming."""


class ClientTooSlow(Exception):
    """The client paused longer than --client-timeout while sending its body."""


def connection_tokens(headers: Mapping[str, str] | CIMultiDict[str]) -> set[str]:
    getall = getattr(headers, "getall", None)
    values: Iterable[str] = getall("Connection", []) if getall else [headers.get("Connection", "")]
    return {t.strip().lower() for v in values for t in v.split(",") if t.strip()}


def strip_hop_by_hop(
    headers: CIMultiDict[str] | Mapping[str, str], drop: frozenset[str] = HOP_BY_HOP
) -> CIMultiDict[str]:
    """A copy without hop-by-hop headers (``drop``: those and maybe more, lower-case
    names); repeated headers keep their order."""
    out: CIMultiDict[str] = CIMultiDict(headers)
    if "Connection" in out:
        drop = drop | connection_tokens(headers)
    # Only the names present are removed (found in one pass, in C, any case).
    for name in out.keys() & drop:
        out.popall(name)
    return out


def _is_trusted(address: str, trusted: tuple[Network, ...]) -> bool:
    try:
        ip = ipaddress.ip_address(address.strip().split("%", 1)[0])
    except ValueError:
        return False
    return any(ip in net for net in trusted)


def client_address(peer: str | None, forwarded_for: list[str], trusted: tuple[Network, ...]) -> str:
    """The visitor's address: the peer, or, when the peer is a trusted proxy, the
    rightmost address in X-Forwarded-For that is not a trusted proxy."""
    client = peer or ""
    if not trusted or not _is_trusted(client, trusted):
        return client
    chain = [a.strip() for v in forwarded_for for a in v.split(",") if a.strip()]
    for address in reversed(chain):
        try:
            ipaddress.ip_address(address.split("%", 1)[0])
        except ValueError:
            return client  # garbage in the chain: stop believing it
        client = address
        if not _is_trusted(address, trusted):
            break
    return client


CLIENT_IP = web.RequestKey("client_ip", str)


def visitor(request: web.BaseRequest, trusted: tuple[Network, ...]) -> str:
    """The visitor's address for ``request`` (see ``client_address``), worked out once
    per request."""
    if not trusted:
        return request.remote or ""
    client = request.get(CLIENT_IP)
    if client is None:
        forwarded_for = request.headers.getall("X-Forwarded-For", [])
        client = request[CLIENT_IP] = client_address(request.remote, forwarded_for, trusted)
    return client


def _from_trusted(request: web.BaseRequest, settings: Settings) -> bool:
    """Whether the peer is a proxy whose X-Forwarded-* headers are believed."""
    trusted = settings.trusted_proxies
    return bool(trusted) and _is_trusted(request.remote or "", trusted)


@dataclass(frozen=True)
class Addressed:
    """How the visitor's browser addressed this request: the scheme, and the host
    (None when no readable one came)."""

    scheme: str
    authority: Authority | None

    @property
    def origin(self) -> Origin | None:
        """This site's origin, as the browser sees it."""
        return Origin.of(self.scheme, self.authority) if self.authority is not None else None


def addressed(request: web.BaseRequest, settings: Settings) -> Addressed:
    """What a trusted proxy in front says the browser addressed (X-Forwarded-Host and
    -Proto, Forwarded host= and proto=), else the Host and scheme that reached us. An
    untrusted peer's forwarding headers are never read: a client does not choose the
    host that goes into a cookie's Domain."""
    scheme, authority = request.scheme, None
    headers = request.headers
    if _from_trusted(request, settings):
        forwarded = headers.getall("Forwarded", [])
        authority = claimed_host(headers.getall("X-Forwarded-Host", []), forwarded)
        scheme = claimed_scheme(headers.getall("X-Forwarded-Proto", []), forwarded) or scheme
    if authority is None:
        authority = parse_authority(headers.get("Host", ""))
    return Addressed(scheme, authority)


# Hop-by-hop, and replaced by the proxy's own: forwarding headers, the Host the
# origin expects, Via, the codings offered.
_REQUEST_DROP = HOP_BY_HOP | {*FORWARDING, "host", "via", "accept-encoding"}


def request_headers(request: web.BaseRequest, settings: Settings, client: str) -> CIMultiDict[str]:
    """Headers to send upstream for ``request``."""
    incoming = request.headers
    headers = strip_hop_by_hop(incoming, _REQUEST_DROP)
    host = incoming.get("Host", "")
    proto = request.scheme
    if _from_trusted(request, settings):
        forwarded = incoming.getall("Forwarded", [])
        claimed = claimed_host(incoming.getall("X-Forwarded-Host", []), forwarded)
        host = str(claimed) if claimed is not None else host
        proto = claimed_scheme(incoming.getall("X-Forwarded-Proto", []), forwarded) or proto
    if settings.preserve_host and host:
        headers["Host"] = host
    headers["Accept-Encoding"] = codec.offer_upstream(incoming.get("Accept-Encoding"))
    headers["X-Forwarded-For"] = client
    headers["X-Forwarded-Proto"] = proto
    if host:
        headers["X-Forwarded-Host"] = host
    version = request.version
    headers["Via"] = via_chain(incoming, f"{version.major}.{version.minor} {settings.via}")
    return headers


def via_chain(headers: CIMultiDictProxy[str] | CIMultiDict[str], ours: str) -> str:
    """The Via header to pass on: the hops before, then ours."""
    return ", ".join([*headers.getall("Via"), ours]) if "Via" in headers else ours


class BodyStream:
    """The request body as it arrives; stops with BodyTooLarge as soon as it crosses
    ``limit``, and with ClientTooSlow when the client pauses longer than ``pause``
    (``exceeded`` and ``stalled`` stay set: the HTTP client may wrap the exception)."""

    def __init__(self, request: web.BaseRequest, limit: int, pause: float) -> None:
        self._request = request
        self._limit = limit
        self._pause = pause
        self.exceeded = False
        self.stalled = False
        # The request's deadlines: the origin's time to answer counts from the end of
        # the body, not from its start.
        self.deadlines: RequestDeadlines | None = None

    async def __aiter__(self) -> AsyncIterator[bytes]:
        seen = 0
        content = self._request.content
        while True:
            try:
                async with asyncio.timeout(self._pause):
                    chunk = await content.readany()
            except TimeoutError:
                self.stalled = True
                raise ClientTooSlow(f"no request body bytes for {self._pause} s") from None
            if not chunk:
                return
            seen += len(chunk)
            if seen > self._limit:
                self.exceeded = True
                raise BodyTooLarge(f"request body exceeds {self._limit} bytes")
            if self.deadlines is not None:
                self.deadlines.expect_answer()
            yield chunk
