"""JavaScript read just far enough to split a script into its top-level statements.

``statements(text)`` tokenizes a classic script (strings, template literals with their
substitutions, comments, regular expression literals told from division by the token
before them, brackets) and cuts it where a top-level statement ends: after a ``;``
(unless ``else`` follows), after a ``}`` that a name, a string or a number follows
(a block, a declaration or, on a new line, automatic semicolon insertion), and at a
line break between the end of an expression and a name, a string or a number (the
insertion rule). Where the grammar could go either way (a ``(`` or ``[`` on the next
line, ``do ... while``), statements are not split: a part may hold several of them.

It is not a parser. Anything it is unsure of gives None: an unterminated string,
comment, template or regular expression, brackets that do not match, an escape
outside a string, HTML-like comments (``<!--``, ``-->``). The caller treats None as
"cannot be cut" (see cuts.py: the script goes whole).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Generic, NamedTuple, TypeVar

NAME, NUMBER, STRING, TEMPLATE = "name", "number", "string", "template"
REGEX, PUNCT = "regex", "punct"

_NEWLINE = re.compile(r"[\n\r\u2028\u2029]")
_SKIP = re.compile(
    r"(?:[ \t\v\f\n\r\u00a0\ufeff\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]+"
    r"|//[^\n\r\u2028\u2029]*|/\*.*?\*/)*",
    re.S,
)
# The characters _SKIP can begin with: its white space, and "/" of a comment.
SKIP_STARTS = frozenset(
    " \t\v\f\n\r\u00a0\ufeff\u1680\u2028\u2029\u202f\u205f\u3000/"
    + "".join(map(chr, range(0x2000, 0x200B)))
)
# Written as runs of plain characters between escapes: the same language as
# (plain|escape)*, without a loop turn per character (~3x faster in re).
_STRING = re.compile(
    r""""[^"\\\n\r]*(?:\\(?:\r\n|[\s\S])[^"\\\n\r]*)*"|'[^'\\\n\r]*(?:\\(?:\r\n|[\s\S])[^'\\\n\r]*)*'"""
)
_TEMPLATE_PART = re.compile(r"[^`\\$]*(?:(?:\\[\s\S]|\$(?!\{))[^`\\$]*)*(`|\$\{)")
_REGEX = re.compile(
    r"/(?![*/])(?:[^/\\\[\n\r]|\\[^\n\r]|\[(?:[^\]\\\n\r]|\\[^\n\r])*\])+/[A-Za-z]*"
)
_IDENT = re.compile(r"#?(?:[^\W\d]|\$)[\w$]*")  # "#": a class's private name
_NUMBER = re.compile(r"(?:\d|\.\d)(?:[\w.]|(?<=[eE])[+-])*")
_OPERATOR = re.compile(r"\.\.\.|\?\.(?!\d)|=>|[-+*%&|^<>!=?~]+|/=?|[{}()\[\];,.:]")

# After these names an expression goes on: never the end of a statement.
CONTINUING = frozenset(
    {"var", "let", "const", "return", "typeof", "instanceof", "in", "of", "new", "delete"}
    | {"void", "throw", "else", "do", "if", "for", "while", "function", "class", "extends"}
    | {"case", "default", "yield", "await", "async", "export", "import", "with", "switch"}
    | {"try", "catch", "finally"}
)
# After these names a "/" begins a regular expression (they take an operand).
_OPERAND_KEYWORDS = frozenset(
    {"return", "typeof", "instanceof", "in", "of", "new", "delete", "void", "throw", "case"}
    | {"do", "else", "yield", "await"}
)
# Names that go on with the statement before them: a "}" or ";" before them ends nothing.
_GOES_ON = frozenset({"else", "catch", "finally", "in", "instanceof", "of"})
# The heads whose "(...)" a statement follows: no semicolon is inserted after its ")".
_HEADS = frozenset({"if", "for", "while", "with", "switch", "catch"})
_CLOSERS = {")": "(", "]": "[", "}": "{"}


T = TypeVar("T")


class Token(NamedTuple):
    """One token: its kind, its text, where it is, the brackets around it (a bracket
    itself counts as outside), whether a line break comes before it, and for a ``)``
    whether it closes a statement head (``if (...)``). A NamedTuple, not a frozen
    dataclass: a script's first split makes tens of thousands, and a frozen
    dataclass's seven ``object.__setattr__`` calls each were a third of that split."""

    kind: str
    text: str
    start: int
    end: int
    level: int
    newline: bool
    head: bool = False


@dataclass(frozen=True)
class Statement:
    """A top-level statement (or a few the grammar would not let us tell apart):
    ``text[start:end]``, from its first token to its last, and its tokens."""

    start: int
    end: int
    tokens: tuple[Token, ...]


def tokens(text: str) -> list[Token] | None:
    """The tokens of a classic script, or None where unsure (module docstring)."""
    out: list[Token] = []
    stack: list[str] = []  # "(", "[", "{", "(head", "(for" and "`" (a template's substitution)
    semicolons = [0]  # per for-head: more than two cannot be
    pos, n, newline = 0, len(text), False
    while pos < n:
        c = text[pos]
        if c in SKIP_STARTS:  # else nothing to skip (most tokens follow another at once)
            skipped = _SKIP.match(text, pos).end()  # type: ignore[union-attr]  # matches "" too
            if skipped > pos:  # white space and comments, in one go
                newline = newline or _NEWLINE.search(text, pos, skipped) is not None
                pos = skipped
                if pos >= n:
                    break
                c = text[pos]
        if c == "/" and text.startswith("/*", pos):
            return None  # a comment that does not end
        level = len(stack)
        head = False
        if c in "\"'":
            m = _STRING.match(text, pos)
            if m is None:
                return None
            kind, end = STRING, m.end()
        elif c == "`" or (c == "}" and stack and stack[-1] == "`"):
            if c == "}":
                stack.pop()
                level = len(stack)
            m = _TEMPLATE_PART.match(text, pos + 1)
            if m is None:
                return None
            if m.group(1) == "${":
                stack.append("`")
            kind, end = TEMPLATE, m.end()
        elif c == "/" and _regex_allowed(out):
            m = _REGEX.match(text, pos)
            if m is None:
                return None
            kind, end = REGEX, m.end()
        elif (c.isalpha() or c in "_$#") and (m := _IDENT.match(text, pos)):
            kind, end = NAME, m.end()
        elif (c.isdigit() or c == ".") and (m := _NUMBER.match(text, pos)):
            kind, end = NUMBER, m.end()
        elif m := _OPERATOR.match(text, pos):
            kind, end = PUNCT, m.end()
            op = m.group()
            if "<!--" in op or (op.startswith("-->") and (newline or not out)):
                return None  # HTML-like comments: browsers read them, we do not
            if not _may_follow(out, stack, op):
                return None
            if op in "([{":
                is_head = op == "(" and bool(out) and out[-1].kind == NAME
                head_of = out[-1].text if is_head else ""
                stack.append("(for" if head_of == "for" else "(head" if head_of in _HEADS else op)
                semicolons.append(0)
            elif op in _CLOSERS:
                if not stack or stack[-1][0] != _CLOSERS[op]:
                    return None
                head = stack.pop() in ("(head", "(for")
                semicolons.pop()
                level = len(stack)
            elif op == ";" and stack and stack[-1] != "{":
                semicolons[-1] += 1  # in a for-head (two at most), else an error
                if stack[-1] != "(for" or semicolons[-1] > 2:
                    return None
        else:
            return None  # a backslash (an escaped name) or a stray character
        out.append(Token(kind, text[pos:end], pos, end, level, newline, head))
        pos, newline = end, False
    return None if stack else out


def _may_follow(before: list[Token], stack: list[str], op: str) -> bool:
    """Whether operator ``op`` may begin a statement or property where it stands:
    after a ";" or "{" (outside brackets other than braces), or first in the script,
    a binary operator (``& amp;`` of text escaped twice) is a syntax error: the
    browser never runs the script, so no part of it may be made to run."""
    if stack and stack[-1] not in ("{", "`"):
        return True
    if before and not (before[-1].kind == PUNCT and before[-1].text in (";", "{")):
        return True
    return op in ("(", "[", "{", ";", "}", "...", "*") or set(op) <= set("!~+-")


def _regex_allowed(before: list[Token]) -> bool:
    """Whether a "/" here begins a regular expression (else it divides)."""
    if not before:
        return True
    last = before[-1]
    if last.kind == NAME:
        return last.text in _OPERAND_KEYWORDS
    if last.kind == PUNCT:
        if last.text in (")", "]"):
            return False
        return not last.text.endswith(("++", "--"))
    if last.kind == TEMPLATE:
        return not last.text.endswith("`")
    return False  # a number, a string, a regular expression


def _ends_expression(t: Token) -> bool:
    if t.kind == NAME:
        return t.text not in CONTINUING
    if t.kind == TEMPLATE:
        return t.text.endswith("`")
    if t.kind == PUNCT:
        return (t.text == ")" and not t.head) or t.text in ("]", "}") or t.text in ("++", "--")
    return True


def _starts_statement(t: Token) -> bool:
    """A token that cannot go on with the expression before it (a new line's name,
    string or number): where a semicolon is inserted."""
    return (t.kind == NAME and t.text not in _GOES_ON) or t.kind in (STRING, NUMBER)


class TextMemo(Generic[T]):
    """Answers remembered by script text: a site sends the same few scripts with every
    page, and reading one again costs ~14 Python calls a token. Bounded by the text
    held (texts over an eighth of ``budget`` are not kept); forgotten all at once when
    full."""

    def __init__(self, budget: int) -> None:
        self._answers: dict[str, T] = {}
        self._budget = budget
        self._held = 0

    def get(self, text: str, make: Callable[[str], T]) -> T:
        try:
            return self._answers[text]
        except KeyError:
            pass
        answer = make(text)
        if len(text) <= self._budget // 8:
            if self._held + len(text) > self._budget:
                self._answers.clear()
                self._held = 0
            self._answers[text] = answer
            self._held += len(text)
        return answer


_SPLIT: TextMemo[tuple[Statement, ...] | None] = TextMemo(512 * 1024)  # the tokens: ~30x


def statements(text: str) -> tuple[Statement, ...] | None:
    """The top-level statements of ``text`` in order, or None where unsure."""
    return _SPLIT.get(text, _statements)


def _statements(text: str) -> tuple[Statement, ...] | None:
    found = tokens(text)
    if found is None:
        return None
    out: list[Statement] = []
    first = 0
    for i, t in enumerate(found):
        after = found[i + 1] if i + 1 < len(found) else None
        if t.level == 0 and _ends_here(found[first], t, after):
            out.append(Statement(found[first].start, t.end, tuple(found[first : i + 1])))
            first = i + 1
    if first < len(found):
        out.append(Statement(found[first].start, found[-1].end, tuple(found[first:])))
    return tuple(out)


def _ends_here(first: Token, t: Token, after: Token | None) -> bool:
    """Whether a top-level statement that began with ``first`` ends with ``t``."""
    if after is None:
        return True
    if t.text == ";" and t.kind == PUNCT:
        if after.kind == NAME and after.text == "while" and first.text == "do":
            return False
        return not (after.kind == NAME and after.text == "else")
    if t.text == "}" and t.kind == PUNCT:
        if after.kind == NAME and after.text == "while" and first.text == "do":
            return False
        return _starts_statement(after)
    return after.newline and _ends_expression(t) and _starts_statement(after)
