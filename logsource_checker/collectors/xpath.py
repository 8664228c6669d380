"""The XPath subset Windows accepts in event queries, evaluated against one event we need.

Windows event queries (WEF subscriptions, ``wevtutil qe /q``, Wazuh ``<query>``, NXLog ``Query``,
the OpenTelemetry ``xml_query``) use a restricted XPath 1.0: location paths over ``Event/System``
and ``EventData``/``UserData``, predicates in brackets, ``and``/``or``/``not()``, the comparisons
``= != < > <= >=``, and the functions ``band()``, ``timediff()`` and ``position()`` (Microsoft Learn,
"Consuming Events": XPath 1.0 limitations). We know of an event only its channel, EventID and provider,
so the evaluator is three-valued: ``True``/``False`` where those decide, ``None`` (with the reason)
where the query tests something else (Level, Keywords, event data, an unknown function). Time windows
(``TimeCreated[timediff(@SystemTime) <= N]``) select recent events only and are ignored with a note.
A query outside the subset is not guessed at: it parses to an error and every verdict is ``None``.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Union

MAX_QUERY_CHARS = 64 * 1024
MAX_DEPTH = 60

_TOKEN_RE = re.compile(r"""
    \s*(?:
      (?P<num>0[xX][0-9A-Fa-f]+|\d+)
     |(?P<str>'[^']*'|"[^"]*")
     |(?P<op><=|>=|!=|=|<|>)
     |(?P<punct>[\[\]()/,@*])
     |(?P<name>[A-Za-z_][A-Za-z0-9_.:-]*)
    )""", re.X)


class XPathError(ValueError):
    """A query outside the subset (or not XPath at all)."""


@dataclass(frozen=True)
class Event:
    """What we know of an event we need: its channel, EventID and provider (None when not known)."""
    channel: str
    event_id: int | None
    provider: str | None = None


@dataclass
class Result:
    value: bool | None
    notes: list[str] = field(default_factory=list)


# AST nodes: tuples keep it small. ("or", a, b) ("and", a, b) ("not", a) ("path", steps)
# ("cmp", op, left, right) ("lit", value) ("call", name, args); a step is (name, predicates).
Node = Union[tuple, str, int]


def _tokens(text: str) -> list[tuple[str, str]]:
    out, pos, text = [], 0, text.strip()
    while pos < len(text):
        match = _TOKEN_RE.match(text, pos)
        if match is None or match.end() == pos:
            raise XPathError(f"unexpected {text[pos:pos + 12]!r}")
        kind = match.lastgroup or ""
        out.append((kind, match.group(kind)))
        pos = match.end()
        while pos < len(text) and text[pos].isspace():
            pos += 1
    return out


class _Parser:
    def __init__(self, text: str) -> None:
        if len(text) > MAX_QUERY_CHARS:
            raise XPathError(f"query longer than {MAX_QUERY_CHARS} characters")
        self.toks = _tokens(text)
        self.i = 0
        self.depth = 0

    def peek(self, value: str | None = None) -> bool:
        if self.i >= len(self.toks):
            return False
        kind, text = self.toks[self.i]
        if value is None:
            return True
        return text == value if kind != "str" else False

    def take(self, value: str | None = None) -> tuple[str, str]:
        if not self.peek(value):
            found = self.toks[self.i][1] if self.i < len(self.toks) else "end of query"
            raise XPathError(f"expected {value or 'more'}, found {found!r}")
        tok = self.toks[self.i]
        self.i += 1
        return tok

    def parse(self) -> Node:
        node = self.expr()
        if self.i != len(self.toks):
            raise XPathError(f"unexpected {self.toks[self.i][1]!r}")
        return node

    def expr(self) -> Node:
        self.depth += 1
        if self.depth > MAX_DEPTH:
            raise XPathError("query nested too deeply")
        node = self.and_expr()
        while self._word("or"):
            node = ("or", node, self.and_expr())
        self.depth -= 1
        return node

    def _word(self, word: str) -> bool:
        if self.i < len(self.toks) and self.toks[self.i] == ("name", word):
            self.i += 1
            return True
        return False

    def and_expr(self) -> Node:
        node = self.cmp_expr()
        while self._word("and"):
            node = ("and", node, self.cmp_expr())
        return node

    def cmp_expr(self) -> Node:
        left = self.primary()
        if self.i < len(self.toks) and self.toks[self.i][0] == "op":
            op = self.take()[1]
            right = self.primary()
            if self.i < len(self.toks) and self.toks[self.i][0] == "op":
                raise XPathError("chained comparison")
            return ("cmp", op, left, right)
        return left

    def primary(self) -> Node:
        if not self.peek():
            raise XPathError("query ends too early")
        kind, text = self.toks[self.i]
        if kind == "num":
            self.i += 1
            return ("lit", int(text, 16) if text[:2].lower() == "0x" else int(text))
        if kind == "str":
            self.i += 1
            return ("lit", text[1:-1])
        if text == "(":
            self.i += 1
            node = self.expr()
            self.take(")")
            return node
        if kind == "name" and self.i + 1 < len(self.toks) and self.toks[self.i + 1][1] == "(":
            return self.call()
        return ("path", self.path())

    def call(self) -> Node:
        name = self.take()[1]
        self.take("(")
        args: list[Node] = []
        if not self.peek(")"):
            args.append(self.expr())
            while self.peek(","):
                self.take(",")
                args.append(self.expr())
        self.take(")")
        if name == "not":
            if len(args) != 1:
                raise XPathError("not() takes one argument")
            return ("not", args[0])
        return ("call", name, tuple(args))

    def path(self) -> tuple:
        steps = [self.step()]
        while self.peek("/"):
            self.take("/")
            steps.append(self.step())
        return tuple(steps)

    def step(self) -> tuple:
        kind, text = self.take()
        if text == "@":
            name = "@" + self.take()[1]
        elif text == "*" or kind == "name":
            name = text
        else:
            raise XPathError(f"unexpected {text!r}")
        preds = []
        while self.peek("["):
            self.take("[")
            preds.append(self.expr())
            self.take("]")
        return (name, tuple(preds))


def parse(text: str) -> Node:
    """The query's syntax tree; raises ``XPathError`` outside the subset."""
    return _Parser(text).parse()


# -- evaluation -------------------------------------------------------------------------------

_TRUE, _FALSE = Result(True), Result(False)


def _and(a: Result, b: Result) -> Result:
    if a.value is False or b.value is False:
        return Result(False)
    return Result(None if None in (a.value, b.value) else True, a.notes + b.notes)


def _or(a: Result, b: Result) -> Result:
    if a.value is True or b.value is True:
        notes = (a.notes if a.value is True else []) + (b.notes if b.value is True else [])
        return Result(True, notes)
    return Result(None if None in (a.value, b.value) else False, a.notes + b.notes)


def _not(a: Result) -> Result:
    return Result(None if a.value is None else not a.value, a.notes)


def _unknown(reason: str) -> Result:
    return Result(None, [reason])


_EVENT_ROOTS = ("*", "Event")


class _Evaluator:
    def __init__(self, event: Event) -> None:
        self.event = event

    def boolean(self, node: Node, ctx: tuple[str, ...]) -> Result:
        op = node[0]
        if op == "or":
            return _or(self.boolean(node[1], ctx), self.boolean(node[2], ctx))
        if op == "and":
            return _and(self.boolean(node[1], ctx), self.boolean(node[2], ctx))
        if op == "not":
            return _not(self.boolean(node[1], ctx))
        if op == "path":
            return self.exists(node[1], ctx)
        if op == "cmp":
            return self.compare(node, ctx)
        if op == "lit":
            return Result(bool(node[1]))
        return self.call(node, ctx)

    def exists(self, steps: tuple, ctx: tuple[str, ...]) -> Result:
        result = Result(True)
        for name, preds in steps:
            if name == "*" and not ctx:
                name = "Event"
            ctx = ctx + (name,)
            known = self.element_known(ctx)
            if known.value is not True:
                return _and(result, known)
            for pred in preds:
                result = _and(result, self.boolean(pred, ctx))
                if result.value is False:
                    return result
        return result

    def element_known(self, ctx: tuple[str, ...]) -> Result:
        if ctx[0] not in _EVENT_ROOTS:
            return _unknown(f"the query starts at {ctx[0]!r}, not at an event (* or Event)")
        if len(ctx) == 1:
            return Result(True)
        part = ctx[1]
        if part == "System":
            if len(ctx) == 2:
                return Result(True)
            field_name = ctx[2]
            if field_name in ("EventID", "Provider", "Channel") and len(ctx) <= 4:
                return Result(True)
            if field_name == "TimeCreated":
                return Result(True, ["a TimeCreated time window is ignored (it selects recent events only)"])
            return _unknown(f"the query tests System/{'/'.join(ctx[2:])}, which we do not know for the event")
        return _unknown(f"the query tests {'/'.join(ctx[1:])} (event data), which only the event itself shows")

    def value(self, node: Node, ctx: tuple[str, ...]) -> tuple[object, str | None]:
        """The value of an operand: a literal, or what the event has at a path; (None, reason) if unknown."""
        if node[0] == "lit":
            return node[1], None
        if node[0] != "path":
            return None, "a comparison with a computed value"
        steps = node[1]
        full = ctx
        for name, preds in steps:
            if preds:
                return None, f"a comparison through a filtered step ({name}[...])"
            full = full + (("Event" if name == "*" and not full else name),)
        if full[:1] and full[0] in _EVENT_ROOTS:
            full = full[1:]
        field_path = "/".join(full)
        if field_path == "System/EventID":
            return self.event.event_id, (None if self.event.event_id is not None else "the EventID is not known")
        if field_path == "System/Provider/@Name":
            return self.event.provider, (None if self.event.provider else "the event's provider is not known")
        if field_path == "System/Channel":
            return self.event.channel, None
        return None, f"the query tests {field_path or 'the event'}, which we do not know for the event"

    def compare(self, node: Node, ctx: tuple[str, ...]) -> Result:
        _, op, left, right = node
        for side in (left, right):
            if side[0] == "call" and side[1] == "timediff":
                return Result(True, ["a time window (timediff) is ignored: it selects recent events only"])
            if side[0] == "call":
                return self.call(side, ctx)
        lval, lwhy = self.value(left, ctx)
        rval, rwhy = self.value(right, ctx)
        if lwhy or rwhy:
            return _unknown(lwhy or rwhy or "")
        return Result(_cmp(op, lval, rval))

    def call(self, node: Node, ctx: tuple[str, ...]) -> Result:
        name = node[1]
        if name == "band":
            return _unknown("band() tests event keywords, which we do not know for the event")
        if name == "position":
            return _unknown("position() selects by position, which we cannot know")
        return _unknown(f"{name}() is not in the XPath subset Windows event queries support")


def _cmp(op: str, a: object, b: object) -> bool:
    if isinstance(a, int) or isinstance(b, int):
        try:
            x, y = _number(a), _number(b)
        except ValueError:
            return op == "!="
    else:
        x, y = str(a).casefold(), str(b).casefold()
    return {"=": x == y, "!=": x != y, "<": x < y, ">": x > y, "<=": x <= y, ">=": x >= y}[op]  # type: ignore[operator]


def _number(value: object) -> int:
    text = str(value).strip()
    return int(text, 16) if text[:2].lower() == "0x" else int(text)


def evaluate(tree: Node, event: Event) -> Result:
    """Does the query select ``event``: True, False, or None with the reasons."""
    result = _Evaluator(event).boolean(tree, ())
    result.notes = list(dict.fromkeys(result.notes))
    return result


__all__ = ["Event", "Result", "XPathError", "evaluate", "parse"]
