"""What cuts.py keeps of a script, remembered: a site sends the same inline scripts with
every page, and cutting one again (its statements, the names they define and use)
costs as much as the first time.

A cut depends on the script's text and on ``blocked``, the judge of which text a
page loses. For a page that judge is made of

- the plan's text patterns (its rules generation and consent variant), compared by
  their source and flags;
- the catalogue's ``TextJudge``: the generation's catalogue (by identity), the
  categories the visitor denied, and the entities exempt on this page (the rules'
  exemptions and the site's own: its host's and its first-party hosts').

Together they make the judge key of ``CutMemo.book``; nothing else goes into a cut
(whether a script is cut at all, XHTML, a policy that allows scripts by hash, is
decided before; the stand-in's markup is made after). A judge key must compare
equal only where it answers alike: a value (``TextJudge``), or a callable compared
by identity (a bound method, a function), which is safe but shares nothing.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable
from dataclasses import dataclass
from typing import Generic, TypeVar

from proxy.consent.catalogue import Catalogue
from proxy.consent.verdicts import text_hits

T = TypeVar("T")


@dataclass(frozen=True)
class TextJudge:
    """The catalogue's judge of a script's text for one visitor's page: whether it
    names a host or signature of a ``denied`` category whose entity is not
    ``exempt``. A value: equal judges answer alike (the memo's key)."""

    catalogue: Catalogue
    denied: frozenset[str]
    exempt: frozenset[str]

    def __call__(self, text: str) -> bool:
        denied, exempt = self.denied, self.exempt
        return any(
            h.category in denied and h.entity not in exempt for h in text_hits(text, self.catalogue)
        )


class Book(Generic[T]):
    """One judge's answers, by script text (``CutMemo.book``)."""

    def __init__(self, memo: CutMemo[T], judge: Hashable) -> None:
        self._memo = memo
        self.judge = judge
        self.answers: dict[str, T] = {}

    def get(self, text: str, make: Callable[[str], T]) -> T:
        """The answer for ``text``: remembered, or ``make(text)`` (then kept)."""
        try:
            return self.answers[text]
        except KeyError:
            pass
        answer = make(text)
        self._memo.keep(self, text, answer)
        return answer


class CutMemo(Generic[T]):
    """Answers remembered per judge and script text. Bounded by the text held (texts
    over an eighth of ``budget`` are not kept) and by the number of judges (rules
    generations times consent variants times sites' own entities): past either,
    everything is forgotten at once. A book given out before that stays its judge's
    (a page keeps its own), but what it learns after is not kept."""

    def __init__(self, budget: int, judges: int) -> None:
        self._budget = budget
        self._judges = judges
        self._books: dict[Hashable, Book[T]] = {}
        self._held = 0

    def book(self, judge: Hashable) -> Book[T]:
        """The answers of ``judge`` (see the module docstring for what it must be)."""
        book = self._books.get(judge)
        if book is None:
            if len(self._books) >= self._judges:
                self.clear()
            book = self._books[judge] = Book(self, judge)
        return book

    def keep(self, book: Book[T], text: str, answer: T) -> None:
        if len(text) > self._budget // 8 or self._books.get(book.judge) is not book:
            return
        if self._held + len(text) > self._budget:
            for each in self._books.values():
                each.answers.clear()
            self._held = 0
        book.answers[text] = answer
        self._held += len(text)

    def clear(self) -> None:
        """Everything forgotten (the books given out included)."""
        for book in self._books.values():
            book.answers.clear()
        self._books.clear()
        self._held = 0
