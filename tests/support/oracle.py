"""html5lib as the reference parser: parse, find by selector, remove, canonical dump."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Iterator
from typing import Any

import html5lib

from proxy.html.selectors import parse_selector


class TreeElement:
    """An html5lib (etree) element as proxy.html.selectors sees it."""

    def __init__(self, node: ET.Element) -> None:
        self.node = node

    @property
    def tag(self) -> str:
        return str(self.node.tag).lower()

    def get(self, name: str) -> str | None:
        return self.node.get(name.lower())


def parse(data: bytes) -> ET.Element:
    parser = html5lib.HTMLParser(namespaceHTMLElements=False)
    root: ET.Element = parser.parse(data, transport_encoding="utf-8")
    return root


def walk(
    node: ET.Element, ancestors: list[TreeElement]
) -> Iterator[tuple[ET.Element, list[TreeElement]]]:
    for child in node:
        if not isinstance(child.tag, str):
            continue  # comments, processing instructions
        yield child, ancestors
        yield from walk(child, [*ancestors, TreeElement(child)])


def matching(root: ET.Element, selectors: list[str]) -> list[ET.Element]:
    """Elements that any selector matches, outermost only (their content goes too)."""
    complexes = [cx for sel in selectors for cx in parse_selector(sel)]
    found: list[ET.Element] = []
    inside: set[int] = set()
    for node, ancestors in walk(root, []):
        if any(id(a.node) in inside for a in ancestors):
            continue
        el = TreeElement(node)
        if any(cx.matches(el, ancestors) for cx in complexes):
            found.append(node)
            inside.add(id(node))
    return found


def remove(root: ET.Element, nodes: list[ET.Element]) -> None:
    """Remove ``nodes`` from the tree, keeping the text that followed each."""
    parents = {id(c): p for p in root.iter() for c in p}
    for node in nodes:
        parent = parents[id(node)]
        children = list(parent)
        index = children.index(node)
        tail = node.tail or ""
        if index > 0:
            prev = children[index - 1]
            prev.tail = (prev.tail or "") + tail
        else:
            parent.text = (parent.text or "") + tail
        parent.remove(node)


def dump(node: Any, depth: int = 0) -> list[str]:
    """A canonical line-per-node form, adjacent text merged, like html5lib's tests."""
    lines: list[str] = []
    pad = "  " * depth
    if node.tag is ET.Comment:
        lines.append(f"{pad}<!-- {node.text} -->")
    elif isinstance(node.tag, str):
        attrs = " ".join(f'{k}="{v}"' for k, v in sorted(node.attrib.items()))
        lines.append(f"{pad}<{node.tag} {attrs}>")
        if node.text:
            lines.append(f'{pad}  "{node.text}"')
        for child in node:
            lines.extend(dump(child, depth + 1))
    if node.tail and depth:
        lines.append(f'{pad}"{node.tail}"')
    return _merge_text(lines)


def _merge_text(lines: list[str]) -> list[str]:
    out: list[str] = []
    for line in lines:
        if (
            out
            and line.lstrip().startswith('"')
            and out[-1].lstrip().startswith('"')
            and len(line) - len(line.lstrip()) == len(out[-1]) - len(out[-1].lstrip())
        ):
            out[-1] = out[-1][:-1] + line.lstrip()[1:]
        else:
            out.append(line)
    return out
