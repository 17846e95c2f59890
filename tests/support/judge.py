"""An independent judge of what a page would make a browser contact: html5lib's tree,
its own table of the attributes that load something, its own URL reading (urllib.parse
after the few steps the WHATWG URL standard adds), and its own list of catalogued
hosts. It shares no code with proxy/consent/ (contacts.py, urls.py, verdicts.py), so
a mistake there is not repeated here.

The list of hosts is read from the data the catalogue is made of: third-party-web's
entities (proxy/consent/data/third-party-web.json) of the categories the issue maps
to a consent category, minus what the operator's table (rules/catalogue.toml) switches
off on purpose (its ``allow`` list and entities or additions set to "off"), plus its
additions. Only the data and the operator's decisions are shared, not their reading.
"""

from __future__ import annotations

import contextlib
import functools
import json
import re
import tomllib
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from dataclasses import dataclass
from urllib.parse import unquote, urlsplit

import html5lib

from tests.support import ROOT
from tests.support.trackers import SNIPPETS, our_surrogate

DATA = ROOT / "proxy" / "consent" / "data" / "third-party-web.json"
TABLE = ROOT / "rules" / "catalogue.toml"
# third-party-web's categories that need consent (issue 14, point 1).
TRACKING = frozenset(
    {"ad", "marketing", "analytics", "tag-manager", "social", "customer-success", "video"}
)
# Loader signatures the judge looks for in running scripts, besides hosts: the test
# oracle's, and the catalogue vendors' documented snippet globals.
SIGNATURES = (*SNIPPETS, "_taboola", "criteo_q", "obApi(", "OBR.extern", "_qevents")
_SPECIAL = frozenset({"http", "https", "ws", "wss", "ftp"})
_FETCHING_RELS = frozenset(
    {"stylesheet", "icon", "apple-touch-icon", "apple-touch-icon-precomposed", "mask-icon"}
    | {"preconnect", "dns-prefetch", "preload", "prefetch", "modulepreload", "prerender"}
    | {"manifest"}
)
_SRCSETS = frozenset({"srcset", "data-srcset", "data-lazy-srcset", "imagesrcset"})
# Lazy-loading attributes count on any element (a loader script copies them into
# place); ``src`` and the rest only on elements that load them.
_LAZY = frozenset({"data-src", "data-lazy-src", "data-original", "data-poster"})
_LOADS = {
    "src": {"img", "image", "script", "iframe", "frame", "embed", "video", "audio", "source"}
    | {"track", "input"},
    "poster": {"video"},
    "background": {"body", "table", "thead", "tbody", "tfoot", "tr", "td", "th"},
    "data": {"object"},
}
_JS = re.compile(r"(?:text|application)/(?:x-)?(?:java|ecma)script(?:1\.\d)?|module|text/jscript")
_HOSTLIKE = re.compile(
    r"(?<![a-z0-9_-])((?:[a-z0-9_-]+\.)+[a-z]{2,})(?![a-z0-9_-])(/[^\s\"'`?#\\<>]*)?", re.I
)
_REFRESH = re.compile(r"\s*[\d.]+\s*[;,]?\s*(?:url\s*=\s*)?[\"']?([^\"']*)", re.I)
# CSS: url() values and strings (@import "x", image-set("x" 1x)), read after the
# escapes are decoded; an unquoted url() holding white space is invalid (no load).
_CSS_URL = re.compile(
    r"url\(\s*(?:\"([^\"\n]*)\"|'([^'\n]*)'|([^\"'()\s]+)\s*\))|[\"']([^\"'\n]+)[\"']", re.I
)
# (A backslash before a line break continues a string: both go.)
_CSS_ESCAPE = re.compile(r"\\([0-9a-fA-F]{1,6})\s?|\\\n|\\(.)", re.S)
_CSS_NEWLINE = re.compile(r"\r\n?|\f")  # CSS reads each as a line feed


def _css(text: str) -> Iterator[str]:
    decoded = _CSS_ESCAPE.sub(
        lambda m: chr(min(int(m.group(1), 16), 0x10FFFF)) if m.group(1) else m.group(2) or "",
        _CSS_NEWLINE.sub("\n", text),
    )
    for m in _CSS_URL.finditer(decoded):  # an unquoted url() with a space in it is invalid
        yield next(g for g in m.groups() if g is not None)


@dataclass(frozen=True)
class Found:
    """An element that would make the browser contact a listed host."""

    element: str  # tag and attribute, e.g. "img[srcset]" or "script#text"
    host: str  # the listed host (or the signature, for script text)
    value: str  # the value it was found in (cut short)


@dataclass(frozen=True)
class Listed:
    """The judge's list: domains to look for, domains never looked for (the allow list
    and "off" entries; the most specific domain decides, as documented), and paths on
    shared hosts to look for (host -> path prefixes)."""

    on: frozenset[str]
    off: frozenset[str]
    paths: dict[str, tuple[str, ...]]


@functools.cache
def listed() -> Listed:
    table = tomllib.loads(TABLE.read_text(encoding="utf-8"))
    entities = json.loads(DATA.read_text(encoding="utf-8"))["entities"]
    by_entity = table.get("entities", {})
    by_category = table.get("categories", {})
    on: set[str] = set()
    off: set[str] = {h.lower().removeprefix("*.") for h in table.get("allow", [])}
    paths: dict[str, list[str]] = {}
    for entity in entities:
        choice = by_entity.get(entity["name"])
        if choice is None:
            tracking = entity["category"] in TRACKING
            choice = by_category.get(entity["category"], "off") if tracking else "off"
        for domain in entity["domains"]:
            (off if choice == "off" else on).add(domain.lower().removeprefix("*."))
    for added in table.get("add", []):
        domain, slash, path = added["domain"].lower().partition("/")
        if slash:
            if added["category"] != "off":
                paths.setdefault(domain, []).append(slash + path)
            continue
        (off if added["category"] == "off" else on).add(domain)
        (on if added["category"] == "off" else off).discard(domain)
    return Listed(frozenset(on - off), frozenset(off), {d: tuple(p) for d, p in paths.items()})


def catalogued(host: str | None, path: str = "/") -> bool:
    """Whether ``host`` (and ``path``) is listed: a path entry of the host or a
    domain it ends with, else the most specific listed or switched-off domain."""
    if not host:
        return False
    table = listed()
    labels = host.lower().rstrip(".").split(".")
    suffixes = [".".join(labels[i:]) for i in range(len(labels))]
    for suffix in suffixes:
        for prefix in table.paths.get(suffix, ()):
            if path == prefix or path.startswith(prefix.rstrip("/") + "/"):
                return True
    for suffix in suffixes:
        if suffix in table.off:
            return False
        if suffix in table.on:
            return True
    return False


def host_of(value: str, page_scheme: str = "http") -> str | None:
    """The host a browser contacts for URL ``value`` (see ``target_of``)."""
    target = target_of(value, page_scheme)
    return target[0] if target else None


def target_of(value: str, page_scheme: str = "http") -> tuple[str, str] | None:
    """(host, path) a browser contacts for URL ``value`` on a page of ``page_scheme``:
    C0 controls and spaces stripped at the ends, tabs and newlines dropped, backslashes
    read as slashes in special schemes, ``https:host`` read as a host on a page of
    another scheme; None for relative URLs and other schemes."""
    url = re.sub(r"[\t\n\r]", "", value.strip("".join(map(chr, range(33)))))
    scheme = re.match(r"([A-Za-z][A-Za-z0-9+.-]*):", url)
    if scheme is None:
        if not re.match(r"[/\\]{2}", url):
            return None
        rest = url
    else:
        name = scheme.group(1).lower()
        if name not in _SPECIAL:
            return None
        rest = url[scheme.end() :]
        if name == page_scheme and not re.match(r"[/\\]{2}", rest):
            return None
    rest = "//" + rest.replace("\\", "/").lstrip("/")
    try:
        parts = urlsplit("http:" + rest)
        host = parts.hostname
    except ValueError:
        return None
    if not host:
        return None
    host = unquote(host).translate({0x3002: ".", 0xFF0E: ".", 0xFF61: "."}).lower()
    with contextlib.suppress(UnicodeError):
        host = host.encode("idna").decode("ascii") if not host.isascii() else host
    return host, parts.path or "/"


def _srcset(value: str) -> Iterator[str]:
    for candidate in value.split(","):
        words = candidate.split()
        if words:
            yield words[0]


def _local(name: str) -> str:
    return name.rpartition("}")[2].lower()


def _urls(tag: str, el: ET.Element) -> Iterator[tuple[str, str]]:
    """(attribute, URL) for each URL the element would load."""
    attrs = {_local(k): v for k, v in el.attrib.items()}
    rels = set(attrs.get("rel", "").lower().split())
    for name, value in attrs.items():
        if name in _LAZY or tag in _LOADS.get(name, ()):
            if name != "src" or tag != "input" or attrs.get("type", "").strip().lower() == "image":
                yield name, value
        elif name in _SRCSETS:
            for url in _srcset(value):
                yield name, url
        elif name == "ping":
            for url in value.split():
                yield name, url
        elif name == "href" and (
            tag in ("base", "script", "image", "feimage") or rels & _FETCHING_RELS
        ):
            yield name, value
        elif name == "style":
            for url in _css(value):
                yield name, url
        elif (
            name == "content"
            and tag == "meta"
            and attrs.get("http-equiv", "").lower().strip() == "refresh"
        ):
            refresh = _REFRESH.match(value)
            if refresh and refresh.group(1).strip():
                yield name, refresh.group(1)


def _runs(el: ET.Element) -> bool:
    kind = el.get("type")
    if kind is None or not kind.strip():
        return True
    return _JS.fullmatch(kind.strip().lower()) is not None


def judge(data: bytes | str, page_scheme: str = "http", depth: int = 0) -> list[Found]:
    """Every element of an HTML document (as html5lib builds its tree) that would make
    a browser contact a listed host, or that runs a script naming one or a loader."""
    parser = html5lib.HTMLParser(namespaceHTMLElements=False)
    root = (
        parser.parse(data, transport_encoding="utf-8")
        if isinstance(data, bytes)
        else parser.parse(data)
    )
    found: list[Found] = []
    for el in root.iter():
        if not isinstance(el.tag, str):
            continue
        tag = _local(el.tag)
        for name, url in _urls(tag, el):
            target = target_of(url, page_scheme)
            if target is not None and catalogued(*target):
                found.append(Found(f"{tag}[{name}]", target[0], url[:120]))
        srcdoc = el.get("srcdoc")
        if tag == "iframe" and srcdoc and depth < 4:
            found += [
                Found(f"iframe[srcdoc] {f.element}", f.host, f.value)
                for f in judge(srcdoc, page_scheme, depth + 1)
            ]
        text = el.text or ""
        if tag in ("script", "style") and text and not our_surrogate(el):
            if tag == "script" and not _runs(el):
                continue
            if tag == "style":
                targets = [target_of(url, page_scheme) for url in _css(text)]
            else:
                # A URL, not a name: after "//" (or "\/\/"), or followed by a path.
                targets = [
                    (m.group(1).lower(), m.group(2) or "/")
                    for m in _HOSTLIKE.finditer(text)
                    if text[: m.start()].endswith(("//", "\\/\\/")) or len(m.group(2) or "") > 1
                ]
            for target in targets:
                if target is not None and catalogued(*target):
                    found.append(Found(f"{tag}#text", target[0], text[:120]))
                    break
            else:
                for signature in SIGNATURES if tag == "script" else ():
                    if signature in text:
                        found.append(Found("script#text", signature, text[:120]))
                        break
    return found
