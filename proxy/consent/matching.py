"""Which elements a block acts on, and what the rewriter is told so it can skip the rest.

A block's selector finds candidate elements; ``applies`` then checks what the selector
cannot say: that a URL attribute points at one of the block's hosts (``url_hosts`` in
the rule file), and that a raw-text element's text holds one of its snippets. The
hints say the same to the rewriter in advance (``Hints``): a tag that names none of the
hosts in a URL attribute, or a script whose text holds none of the snippets, passes
without a stop in Python.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from proxy.consent.rules import Block, Rule
from proxy.html import Element, Hints

URL_ATTRIBUTES = ("src", "href", "data-src", "data", "srcset")  # data: <object>


def host_of(url: str) -> str | None:
    """The host of an absolute or scheme-relative URL; None for a relative one."""
    url = url.strip()
    if url.startswith("//"):
        url = "http:" + url
    try:
        host = urlsplit(url).hostname
    except ValueError:
        return None
    return host.rstrip(".") if host else None


def hosted_by(el: Element, hosts: tuple[str, ...]) -> bool:
    """Whether a URL attribute of ``el`` points at one of ``hosts`` or a subdomain."""
    for attr in URL_ATTRIBUTES:
        value = el.get(attr)
        if not value:
            continue
        # srcset: "url 1x, url 2x": each candidate's URL comes before its descriptor.
        urls = (
            [c.split()[0] for c in value.split(",") if c.strip()] if attr == "srcset" else [value]
        )
        for url in urls:
            host = host_of(url)
            if host and any(host == h or host.endswith("." + h) for h in hosts):
                return True
    return False


def applies(block: Block, el: Element) -> bool:
    """Whether an element its selector matched is one ``block`` acts on."""
    if block.hosts and not hosted_by(el, block.hosts):
        return False
    return not block.contains or any(s in el.text for s in block.contains)


def host_hints(block: Block) -> Hints:
    """What every element a host block acts on names in a URL attribute (the only
    place ``hosted_by`` looks); no hosts: no hint, every element of the selector."""
    return Hints(block.hosts, (), URL_ATTRIBUTES)


def hints_of(block: Block) -> Hints:
    """What every element ``block`` acts on contains: its hosts, else its snippets."""
    if block.hosts:
        return host_hints(block)
    return Hints(text=block.contains)  # none at all: every element of the selector


def snippets(group: tuple[tuple[Rule, Block], ...]) -> tuple[str, ...]:
    """Every snippet the text blocks of ``group`` look for, once each, sorted."""
    return tuple(sorted({s for _, block in group for s in block.contains}))
