"""Combinator matching on the stack of open elements, at a cost per element that does
not grow with nesting depth.

A complex selector ``a b > c`` is a chain of steps, one per compound. Each open
element records which steps are *active* for the elements inside it: a step is active
for an element when every compound before it has been matched by suitable ancestors.
Steps reached over a descendant combinator stay active for the whole subtree
(``below``); those reached over a child combinator, for the element's children only
(``children``). The first step of every selector is always active. So a new element
only looks at its parent's entry, tests the compounds of the active steps that name
its type, and never walks its ancestors: the work per element is bounded by the
selectors, not by the page. This is what :meth:`proxy.html.selectors.Complex.matches`
defines, computed forwards instead of by backtracking.

Steps are bits of an int (the steps of one selector are consecutive, so "the next
step" is the next bit). A run of nested elements of one name in one state is one
stack entry with a count, and the stack keeps at most ``LIMIT`` entries: past that
the outermost half is merged into a floor whose state is the union of theirs, so a
page that never closes its tags can only make selectors match more, never less.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from proxy.html.selectors import Complex, Compound, ElementLike

LIMIT = 1024  # stack entries (runs) kept


@dataclass(frozen=True)
class Machine:
    """Complex selectors compiled into steps (shared by every stack that uses them).
    ``subjects[i]`` is the step of the ``i``-th selector's subject."""

    compounds: tuple[Compound, ...]  # one per step
    child: int  # steps whose next step is reached over '>' (a child combinator)
    roots: int  # the first step of every selector: always active
    subjects: tuple[int, ...]
    inner: dict[str, int]  # per type: the steps that are not subjects, of it or untyped
    inner_untyped: int  # the untyped steps that are not subjects

    @classmethod
    def compile(cls, complexes: Sequence[Complex]) -> Machine:
        compounds: list[Compound] = []
        child = roots = inner_untyped = 0
        subjects: list[int] = []
        typed: dict[str, int] = {}
        for cx in complexes:
            roots |= 1 << len(compounds)
            for part, link in zip(cx.parts, cx.links, strict=False):  # all but the subject
                bit = 1 << len(compounds)
                compounds.append(part)
                child |= bit if link == ">" else 0
                if part.tag is None:
                    inner_untyped |= bit
                else:
                    typed[part.tag] = typed.get(part.tag, 0) | bit
            subjects.append(len(compounds))
            compounds.append(cx.subject)
        inner = {tag: bits | inner_untyped for tag, bits in typed.items()}
        return cls(tuple(compounds), child, roots, tuple(subjects), inner, inner_untyped)


class _Entry:
    """A run of ``count`` nested open elements named ``name`` in one state, or one
    element whose state is not computed yet (``el`` is kept for that)."""

    __slots__ = ("below", "children", "count", "el", "name")

    def __init__(self, name: str, el: ElementLike | None, below: int = 0, children: int = 0):
        self.name = name
        self.el = el
        self.below = below
        self.children = children
        self.count = 1


class OpenElements:
    """The open elements a rewriter follows, as selector state. ``active()`` is what a
    new element can match; ``open`` and ``close`` follow start and end tags.

    States are computed when ``active()`` asks for them, each once: elements that
    close before a subject needs them cost a stack entry and nothing more."""

    def __init__(self, machine: Machine) -> None:
        self._machine = machine
        self._stack: list[_Entry] = []
        self._done = 0  # the entries below this index have their state
        self._open: dict[str, int] = {}  # entries per name: an end tag of none costs nothing
        self.compound_tests = 0  # a measure of the work done, for tests

    @property
    def top(self) -> str | None:
        """The name of the innermost open element (None: none)."""
        return self._stack[-1].name if self._stack else None

    def active(self) -> int:
        """The steps active for an element opened now."""
        if self._done < len(self._stack):
            self._compute()
        if not self._stack:
            return self._machine.roots
        top = self._stack[-1]
        return top.below | top.children | self._machine.roots

    def matches(self, index: int, el: ElementLike, active: int) -> bool:
        """Whether selector ``index`` matches ``el``, opened where ``active()`` was."""
        step = self._machine.subjects[index]
        if not active >> step & 1:
            return False
        self.compound_tests += 1
        return self._machine.compounds[step].matches(el)

    def open(self, el: ElementLike) -> None:
        """``el`` starts, inside the innermost open element."""
        self._stack.append(_Entry(el.tag, el))
        self._open[el.tag] = self._open.get(el.tag, 0) + 1
        if len(self._stack) > LIMIT:
            self._compute()  # runs may join
            if len(self._stack) > LIMIT:
                self._merge(LIMIT // 2)

    def close(self, name: str) -> None:
        """An end tag: the innermost open ``name`` ends, and everything inside it."""
        if not self._open.get(name):
            return
        stack = self._stack
        while stack[-1].name != name:
            self._drop()
        self.close_top()

    def close_top(self) -> None:
        """The innermost open element ends (its end is implied by a start tag)."""
        if not self._stack or not self._stack[-1].name:
            return  # the floor stays
        top = self._stack[-1]
        if top.count > 1:
            top.count -= 1
        else:
            self._drop()

    def _drop(self) -> None:
        entry = self._stack.pop()
        self._open[entry.name] -= 1
        self._done = min(self._done, len(self._stack))

    def _compute(self) -> None:
        """Give the entries from ``_done`` up their state, from the outermost in; an
        entry of the same name and state as its parent joins the parent's run."""
        machine, stack = self._machine, self._stack
        pending = stack[self._done :]
        del stack[self._done :]
        for entry in pending:
            el = entry.el
            assert el is not None
            entry.el = None
            parent = stack[-1] if stack else None
            below = parent.below if parent is not None else 0
            active = below | (parent.children if parent is not None else 0) | machine.roots
            todo = active & machine.inner.get(entry.name, machine.inner_untyped)
            children = 0
            while todo:
                bit = todo & -todo
                todo ^= bit
                self.compound_tests += 1
                if machine.compounds[bit.bit_length() - 1].matches(el):
                    if bit & machine.child:
                        children |= bit << 1
                    else:
                        below |= bit << 1
            if (
                parent is not None
                and parent.name == entry.name
                and parent.below == below
                and parent.children == children
            ):
                parent.count += 1
                self._open[entry.name] -= 1
                continue
            entry.below, entry.children = below, children
            stack.append(entry)
        self._done = len(stack)

    def _merge(self, n: int) -> None:
        """Merge the outermost ``n`` entries into one that no end tag closes."""
        floor = _Entry("", None)
        for entry in self._stack[:n]:
            floor.below |= entry.below
            floor.children |= entry.children
            if entry.name:
                self._open[entry.name] -= 1
        self._stack[:n] = [floor]
        self._done -= n - 1
