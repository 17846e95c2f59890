"""What the proxy does to an HTML body, and the response headers that go with it.

``BodyRewrite`` is the one hook the proxy calls for HTML: ``begin`` sees the origin's
response headers first, ``feed``/``close`` turn the decoded body into the new one,
``variant`` names the output (it goes into the ETag so a cache never confuses two
variants), ``fix_headers`` adds the page's own response headers (response_headers.py
decides the rest), ``decision`` is what the decision log keeps. The proxy's own hook
enforces consent (consent_hook.py); ``Identity`` leaves every body as it is, on the
rewrite path (the tests of the proxy's mechanics use it).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple, Protocol

from multidict import CIMultiDict, CIMultiDictProxy

from proxy.observe.decisions import PageDecision


class BodyRewrite(Protocol):
    @property
    def variant(self) -> str: ...

    @property
    def passes_through(self) -> bool:
        """Whether the page would leave exactly as it came (it can skip decoding)."""
        ...

    @property
    def depends_on_consent(self) -> bool:
        """Whether the page differs between visitors' choices: its response is then
        private and varies on what consent is read from (response_headers.py)."""
        ...

    @property
    def cacheable(self) -> bool:
        """Whether the output depends on nothing but the page's bytes, its path and
        format, and ``variant``: another visitor of the variant may be given it (the
        rewrite cache, cache.py)."""
        ...

    def set_format(self, encoding: str, xml: bool) -> None:
        """The page's encoding (a Python codec of an ASCII-compatible encoding: what
        inserted markup is written in) and whether it is XHTML (a self-closing tag has
        no content). Called before the first ``feed``; the default is UTF-8 HTML."""
        ...

    def begin(self, headers: CIMultiDictProxy[str] | CIMultiDict[str]) -> None:
        """The origin's response headers, before the first ``feed`` (what the body may
        depend on, such as the page's Content-Security-Policy nonce)."""
        ...

    def feed(self, chunk: bytes) -> bytes: ...

    def close(self) -> bytes: ...

    def fix_headers(self, headers: CIMultiDict[str]) -> None:
        """Add what the page itself says to its response headers (the rest is
        response_headers.py's), as they leave."""
        ...

    def decision(self) -> PageDecision | None:
        """What the decision log keeps of the page (None: nothing)."""
        ...

    def untouched_members(self, size: int) -> str:
        """The decision of a page that passed through untouched (``size`` bytes), as
        the members of its decision-log line (observe.decisions.untouched_members):
        the line written for most pages. Empty: nothing to log."""
        ...


class RequestInfo(NamedTuple):
    """What a rewrite may know about the request (no body, no peer address). A tuple:
    one is made per HTML response."""

    method: str
    path: str  # as the client sent it, with the query (placeholders come back here)
    headers: CIMultiDictProxy[str] | CIMultiDict[str]
    host: str | None = None  # the host the browser addressed (a trusted front's), Host form


RewriteFactory = Callable[[RequestInfo], BodyRewrite]


class Identity:
    """Leaves the body as it is."""

    variant = "id"
    passes_through = False  # the proxy's own hook stays on the rewrite path
    depends_on_consent = False
    cacheable = True

    def set_format(self, encoding: str, xml: bool) -> None:
        return None

    def begin(self, headers: CIMultiDictProxy[str] | CIMultiDict[str]) -> None:
        return None

    def feed(self, chunk: bytes) -> bytes:
        return chunk

    def close(self) -> bytes:
        return b""

    def fix_headers(self, headers: CIMultiDict[str]) -> None:
        return None

    def decision(self) -> PageDecision | None:
        return None

    def untouched_members(self, size: int) -> str:
        return ""


def identity_factory(info: RequestInfo) -> BodyRewrite:
    return Identity()
