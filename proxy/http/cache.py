"""Rewritten pages kept for the next visitor who gets the same page from the origin.

Every request still goes to the origin: what the cache saves is the rewrite (and its
re-encoding), for visitors of the same consent variant and rules generation when the
origin sends the same bytes. An entry is found by what the output depends on (the
rewrite's variant, which names the consent variant and the rules generation; the
client's coding; the Host and the path with its query; the page's charset and
whether it is XHTML; the request headers the origin's Vary names; the page's
Content-Security-Policy headers) and used only when its proof matches what the origin
sent this time:

- a strong ETag (the origin promises byte-identical bodies under one),
- else Last-Modified with the length and coding of the body,
- else a digest (SHA-256) of the decoded body: known once the body has been read, so
  the proxy reads ahead (without sending) while the origin sends without pausing, up
  to the stored page's length; a page that pauses or grows past it is rewritten.
  Such an entry also keeps the origin's bytes as they came (still in their
  Content-Encoding), and the read-ahead first compares what arrives with them: a
  body that comes back byte for byte the same (the usual case) is never decoded or
  hashed, which costs about a tenth of SHA-256 (a 150 KB page: some 10 us instead of
  over 100; the accepting visitor's page, which only gets the Consent Mode default,
  is served this way). Only where the bytes differ (an origin that compresses with a
  timestamp, say) is the body decoded and its digest compared, as before.

Never kept or served: answers marked ``no-store`` or ``private``, answers that set
cookies, ``Vary: *``, a Content-Security-Policy with a nonce (made for one response:
what the proxy adds carries it), anything but a 200 to a GET, requests with credentials
(``Authorization``), and pages whose rewrite depends on the visitor beyond the
variant (``BodyRewrite.cacheable``). Entries hold the output encoded for one coding
(re-encoding on every hit would cost what the rewrite costs); they are bounded by their
total size (LRU; the origin's bytes a digest entry keeps count too), each at most an
eighth of it, and dropped whole when the rules generation changes.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

import aiohttp
import cachetools
from aiohttp import web

from proxy.http import mime
from proxy.http.hook import BodyRewrite
from proxy.observe.decisions import PageDecision

Status = Literal["hit", "miss", "bypass"]
Proof = tuple[str, ...]  # ("etag", tag) | ("modified", date, length, coding) | ("digest", hex)
Key = tuple[str, ...]


@dataclass(frozen=True)
class Stored:
    """One rewritten page, as a hit sends it."""

    proof: Proof
    body: bytes  # encoded for the coding of its key
    actions: str | None  # X-Consent-Actions of the whole page (None: not sent)
    decision: PageDecision | None  # of the visitor it was made for
    decoded: int  # length of the origin's decoded body
    # A digest entry: the origin's body as received, and its Content-Encoding (None:
    # not kept, only the digest proves sameness).
    received: bytes | None = None
    coding: str = ""


class Ticket:
    """One rewritten response's business with the cache: whether it was a hit, and,
    for a miss, the output collected for the entry stored once the page is complete."""

    __slots__ = (
        "_got",
        "_hasher",
        "_limit",
        "_size",
        "candidate",
        "coding",
        "hit",
        "key",
        "parts",
        "proof",
        "received",
        "status",
    )

    def __init__(
        self,
        status: Status,
        key: Key = (),
        proof: Proof | None = None,
        found: Stored | None = None,
        limit: int = 0,
        coding: str = "",
    ) -> None:
        """``coding``: the origin's Content-Encoding (as it sent it)."""
        self.status: Status = status
        self.key = key
        self.proof = proof  # None: the digest of the body, known at its end
        self.hit = (
            found if found is not None and proof is not None and found.proof == proof else None
        )
        if self.hit is not None:
            self.status = "hit"
        # A page kept under a digest: this one may be the same, once read whole.
        digest_entry = found is not None and found.proof[0] == "digest"
        self.candidate = found if proof is None and digest_entry else None
        self._hasher = hashlib.sha256() if status == "miss" and proof is None else None
        self._limit = limit
        self.parts: list[bytes] | None = [] if status == "miss" else None
        self._size = 0
        self.coding = coding
        # The origin's bytes as received, kept with a digest entry (None: not kept).
        self.received: list[bytes] | None = [] if self._hasher is not None else None
        self._got = 0

    def same_so_far(self) -> bytes | None:
        """The bytes the origin sent for the candidate entry, when they can be
        compared with this body's as received (the same Content-Encoding)."""
        candidate = self.candidate
        if candidate is None or candidate.received is None or candidate.coding != self.coding:
            return None
        return candidate.received

    def receive(self, chunk: bytes) -> None:
        """Take the next bytes of the origin's body as received (kept for the entry
        while its proof is a digest and they fit in an entry)."""
        received = self.received
        if received is not None:
            received.append(chunk)
            self._got += len(chunk)
            if self._got > self._limit:
                self.received = None  # too big to keep beside the page

    def digest(self, decoded: bytes) -> None:
        """Take the next decoded bytes of the origin's body (for a digest proof)."""
        if self._hasher is not None:
            self._hasher.update(decoded)

    def same_as_candidate(self) -> bool:
        """Whether the body read whole is the one the candidate entry was made from."""
        if self.candidate is None or self._hasher is None:
            return False
        return self.candidate.proof == ("digest", self._hasher.hexdigest())

    def collect(self, data: bytes) -> None:
        """Take the next bytes sent to the client (kept while under the entry limit)."""
        parts = self.parts
        if parts is None or not data:
            return
        self._size += len(data)
        if self._size > self._limit:
            self.parts = None  # too big to keep: nothing more is collected
        else:
            parts.append(data)

    def final_proof(self) -> Proof | None:
        if self.proof is not None:
            return self.proof
        return ("digest", self._hasher.hexdigest()) if self._hasher is not None else None


BYPASS = Ticket("bypass")


class RewriteCache:
    """The cache of one worker (see the module docstring). ``size``: bytes of output
    kept in all (0: off). ``generation``: the rules generation in force; when it
    changes, every entry goes."""

    def __init__(self, size: int, generation: Callable[[], str]) -> None:
        self.size = size
        self.entry_limit = size // 8
        self._generation = generation
        self._seen = ""
        self._entries: cachetools.LRUCache[Key, Stored] = cachetools.LRUCache(
            maxsize=max(size, 1), getsizeof=_stored_size
        )

    def __len__(self) -> int:
        return len(self._entries)

    def ticket(
        self,
        request: web.BaseRequest,
        upstream: aiohttp.ClientResponse,
        ctype: mime.ResponseType,
        rewrite: BodyRewrite,
        coding: str | None,
    ) -> Ticket:
        """What the cache can do for this response (its headers are in, its body not)."""
        if not self.size or not rewrite.cacheable or not _cacheable(request, upstream):
            return BYPASS
        vary = _vary_values(request, upstream)
        policies = _policies(upstream)
        if vary is None or policies is None:
            return BYPASS
        generation = self._generation()
        if generation != self._seen:  # new rules: pages made under the old ones go
            self._entries.clear()
            self._seen = generation
        key: Key = (
            rewrite.variant,
            coding or "",
            request.host,
            request.raw_path,
            ctype.charset or "",
            "xml" if ctype.xml else "",
            *vary,
            *policies,
        )
        found = self._entries.get(key)
        coding = upstream.headers.get("Content-Encoding", "")
        return Ticket("miss", key, _proof(upstream), found, self.entry_limit, coding)

    def store(
        self,
        ticket: Ticket,
        body: bytes,
        actions: str | None,
        decision: PageDecision | None,
        decoded: int,
    ) -> None:
        """Keep a complete page made for a miss (``body``: all that was sent)."""
        proof = ticket.final_proof()
        if ticket.status != "miss" or proof is None or len(body) > self.entry_limit:
            return
        if proof[0] == "digest" and decoded > self.entry_limit:
            return  # its next visitor's body would be read ahead: held in memory
        received = None
        if proof[0] == "digest" and ticket.received is not None:
            received = b"".join(ticket.received)
            if len(body) + len(received) > self.entry_limit:
                received = None  # the digest alone proves sameness
        entry = Stored(proof, body, actions, decision, decoded, received, ticket.coding)
        self._entries[ticket.key] = entry

    def clear(self) -> None:
        self._entries.clear()


def _stored_size(entry: Stored) -> int:
    return len(entry.body) + (len(entry.received) if entry.received is not None else 0)


def _cacheable(request: web.BaseRequest, upstream: aiohttp.ClientResponse) -> bool:
    if request.method != "GET" or upstream.status != 200 or "Authorization" in request.headers:
        return False
    headers = upstream.headers
    if "Set-Cookie" in headers:
        return False
    for value in headers.getall("Cache-Control", ()):
        for directive in value.split(","):
            name = directive.split("=", 1)[0].strip().lower()
            if name in ("no-store", "private"):
                return False
    return True


def _vary_values(request: web.BaseRequest, upstream: aiohttp.ClientResponse) -> list[str] | None:
    """The request's values of the headers the origin's answer varies on (None: it
    varies on everything, ``Vary: *``). Accept-Encoding aside: the page is decoded."""
    values: list[str] = []
    for value in upstream.headers.getall("Vary", ()):
        for name in value.split(","):
            name = name.strip().lower()
            if name == "*":
                return None
            if name and name != "accept-encoding":
                values.append(f"{name}={chr(10).join(request.headers.getall(name, ()))}")
    return values


def _policies(upstream: aiohttp.ClientResponse) -> list[str] | None:
    """The response's Content-Security-Policies (what the proxy adds to a page obeys
    them); None when one has a nonce, made for this response alone."""
    policies = [
        f"{name}={value}"
        for name in ("Content-Security-Policy", "Content-Security-Policy-Report-Only")
        for value in upstream.headers.getall(name, ())
    ]
    return None if any("'nonce-" in p.lower() for p in policies) else policies


def _proof(upstream: aiohttp.ClientResponse) -> Proof | None:
    """What shows the origin's body is the same as before without reading it."""
    headers = upstream.headers
    etag = headers.get("ETag", "").strip()
    if etag.startswith('"') and etag.endswith('"') and len(etag) > 2:  # strong, not W/
        return ("etag", etag)
    modified = headers.get("Last-Modified")
    length = headers.get("Content-Length")
    if modified and length is not None and length.isdigit():
        return ("modified", modified, length, headers.get("Content-Encoding", ""))
    return None
