"""Metric conditions of a policy's gates, such as `accuracy >= 0.9 and log_loss < 0.4`.

A tiny language on purpose: comparisons of a run's metrics with numbers, joined by `and` and
`or` (`and` binds tighter), grouped with parentheses. `parse` checks an expression when the
policy is saved and says where it went wrong; `evaluate` judges it on a run's metrics. No eval.
"""

import math
import operator
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass

OPERATORS: dict[str, Callable[[float, float], bool]] = {
    ">=": operator.ge,
    "<=": operator.le,
    "==": operator.eq,
    "!=": operator.ne,
    ">": operator.gt,
    "<": operator.lt,
}
MAX_LENGTH = 500

# Metric names as MLflow allows them: letters, digits and _ - . / (and spaces, which we leave
# out: quote-free names read better in a policy, and such metrics are rare).
TOKEN = re.compile(
    r"\s*(?:(?P<number>[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?)(?![\w.])"
    r"|(?P<op>>=|<=|==|!=|>|<)"
    r"|(?P<paren>[()])"
    r"|(?P<name>[A-Za-z_][\w./-]*))"
)


class ExpressionError(ValueError):
    """A condition that does not parse; `position` counts characters from 0."""

    def __init__(self, message: str, position: int):
        self.message = message
        self.position = position
        super().__init__(f"{message} (at character {position + 1})")


@dataclass(frozen=True)
class Comparison:
    metric: str
    op: str
    value: float


@dataclass(frozen=True)
class Both:
    left: "Node"
    right: "Node"


@dataclass(frozen=True)
class Either:
    left: "Node"
    right: "Node"


Node = Comparison | Both | Either


@dataclass(frozen=True)
class Verdict:
    """`passed` is None when a metric the condition needs is missing."""

    passed: bool | None
    reason: str


def _tokens(text: str) -> list[tuple[str, str, int]]:
    tokens, position = [], 0
    while position < len(text):
        if text[position:].strip() == "":
            break
        match = TOKEN.match(text, position)
        if not match or match.end() == position:
            at = len(text) - len(text[position:].lstrip())
            raise ExpressionError(f"unexpected {text[at]!r}", at)
        kind = match.lastgroup or ""
        start = match.start(kind)
        value = match.group(kind)
        if kind == "name" and value in ("and", "or"):
            kind = value
        tokens.append((kind, value, start))
        position = match.end()
    tokens.append(("end", "", len(text)))
    return tokens


class _Parser:
    def __init__(self, text: str):
        self.tokens = _tokens(text)
        self.at = 0

    def peek(self) -> tuple[str, str, int]:
        return self.tokens[self.at]

    def take(self, kind: str, wanted: str) -> tuple[str, str, int]:
        token = self.peek()
        if token[0] != kind:
            found = "the end" if token[0] == "end" else repr(token[1])
            raise ExpressionError(f"expected {wanted}, found {found}", token[2])
        self.at += 1
        return token

    def either(self) -> Node:
        node = self.both()
        while self.peek()[0] == "or":
            self.at += 1
            node = Either(node, self.both())
        return node

    def both(self) -> Node:
        node = self.atom()
        while self.peek()[0] == "and":
            self.at += 1
            node = Both(node, self.atom())
        return node

    def atom(self) -> Node:
        if self.peek()[:2] == ("paren", "("):
            self.at += 1
            node = self.either()
            token = self.peek()
            if token[:2] != ("paren", ")"):
                raise ExpressionError("expected ')'", token[2])
            self.at += 1
            return node
        _, metric, _ = self.take("name", "a metric name")
        _, op, _ = self.take("op", "a comparison (>=, >, <=, <, ==, !=)")
        _, number, position = self.take("number", "a number")
        value = float(number)
        if not math.isfinite(value):
            raise ExpressionError("the number is too large", position)
        return Comparison(metric, op, value)


def parse(text: str) -> Node:
    """The condition's tree. Raises ExpressionError with the position of the first mistake."""
    if not text.strip():
        raise ExpressionError("the condition is empty", 0)
    if len(text) > MAX_LENGTH:
        raise ExpressionError(f"the condition is longer than {MAX_LENGTH} characters", MAX_LENGTH)
    parser = _Parser(text)
    node = parser.either()
    kind, value, position = parser.peek()
    if kind != "end":
        raise ExpressionError(f"unexpected {value!r}", position)
    return node


def metrics_of(node: Node) -> list[str]:
    """The metrics a condition reads, in order, once each."""
    if isinstance(node, Comparison):
        return [node.metric]
    return list(dict.fromkeys(metrics_of(node.left) + metrics_of(node.right)))


def evaluate(node: Node, metrics: Mapping[str, object]) -> Verdict:
    """Judge the condition on `metrics`. A missing metric makes its comparison missing; `and`
    and `or` decide without it where the other side already does."""
    if isinstance(node, Comparison):
        value = metrics.get(node.metric)
        if not isinstance(value, int | float) or isinstance(value, bool):
            return Verdict(None, f"{node.metric} is not on the run")
        shown = f"{node.metric} = {value:g}"
        if math.isnan(value):
            return Verdict(False, f"{node.metric} is NaN")
        if OPERATORS[node.op](value, node.value):
            return Verdict(True, f"{shown}, {node.op} {node.value:g}")
        return Verdict(False, f"{shown}, not {node.op} {node.value:g}")
    left, right = evaluate(node.left, metrics), evaluate(node.right, metrics)
    deciding = not isinstance(node, Both)
    for side in (left, right):
        if side.passed is deciding:
            return side
    for side in (left, right):
        if side.passed is None:
            return side
    return Verdict(not deciding, f"{left.reason}; {right.reason}")
