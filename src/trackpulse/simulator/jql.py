"""The JQL subset the Jira simulator understands, with Jira's error messages for the rest.

Owns parsing (`parse_jql`) and evaluation against a `JiraWorld` (`JqlQuery.matches`, `JqlQuery.sort`).
Supported: clauses on project, key/issuekey, id, created, updated, status, statusCategory,
issuetype/type, priority, labels, sprint, assignee, reporter; operators = != > >= < <= IN, NOT IN,
IS [NOT] EMPTY; AND, OR, NOT and parentheses; ORDER BY with ASC/DESC. Date values are epoch
milliseconds, "yyyy/MM/dd HH:mm", "yyyy-MM-dd HH:mm", "yyyy/MM/dd", "yyyy-MM-dd" (read in the
calling user's time zone, minute precision) or relative periods such as -5d or "-2h".
Anything else raises `JqlError`, which the app answers with 400 and Jira's error body.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, tzinfo
from typing import TYPE_CHECKING, Any

from trackpulse.simulator.jira_world import (
    ISSUE_TYPES,
    PRIORITIES,
    STATUSES,
    SimIssue,
)

if TYPE_CHECKING:
    from trackpulse.simulator.jira_world import JiraWorld

OPERATORS_TEXT = (
    "The valid operators are '=', '!=', '<', '>', '<=', '>=', '~', '!~', 'IN', 'NOT IN', 'IS' and 'IS NOT'."
)
DATE_FORMATS_TEXT = (
    "Valid formats include: 'yyyy/MM/dd HH:mm', 'yyyy-MM-dd HH:mm', 'yyyy/MM/dd', "
    "'yyyy-MM-dd', or a period format e.g. '-5d', '4w 2d'."
)


class JqlError(ValueError):
    """A query Jira would refuse with 400; `str(error)` is Jira's message."""


_TOKEN = re.compile(
    r"""\s*(?:
        (?P<string>"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*')
      | (?P<op>>=|<=|!=|!~|=|>|<|~)
      | (?P<punct>[(),])
      | (?P<word>[^\s"'(),=!<>~]+)
    )""",
    re.VERBOSE,
)


@dataclass(frozen=True)
class Token:
    kind: str  # string | op | punct | word | end
    text: str
    pos: int

    @property
    def upper(self) -> str:
        return self.text.upper() if self.kind == "word" else self.text


def tokenize(text: str) -> list[Token]:
    tokens: list[Token] = []
    pos = 0
    while pos < len(text):
        if text[pos:].strip() == "":
            break
        m = _TOKEN.match(text, pos)
        if m is None or m.end() == pos:
            raise JqlError(
                f"Error in the JQL Query: The character '{text[pos]}' is a reserved JQL character. "
                f"You must enclose it in a string or use the escape '\\u{ord(text[pos]):04x}' instead. "
                f"(line 1, character {pos + 1})"
            )
        kind = m.lastgroup or "word"
        raw = m.group(kind)
        if kind == "string":
            raw = re.sub(r"\\(.)", r"\1", raw[1:-1])
        tokens.append(Token(kind, raw, m.start(kind) + 1))
        pos = m.end()
    tokens.append(Token("end", "", len(text) + 1))
    return tokens


# ----------------------------------------------------------------------------- AST
@dataclass(frozen=True)
class Clause:
    field: str  # canonical field name
    op: str  # = != > >= < <= in notin is isnot
    values: tuple[Token, ...]


@dataclass(frozen=True)
class BoolOp:
    op: str  # and | or | not
    children: tuple[Any, ...]


@dataclass(frozen=True)
class OrderItem:
    field: str
    descending: bool


FIELD_ALIASES = {
    "project": "project",
    "key": "key",
    "issuekey": "key",
    "id": "id",
    "created": "created",
    "createddate": "created",
    "updated": "updated",
    "updateddate": "updated",
    "status": "status",
    "statuscategory": "statusCategory",
    "issuetype": "issuetype",
    "type": "issuetype",
    "priority": "priority",
    "labels": "labels",
    "sprint": "sprint",
    "assignee": "assignee",
    "reporter": "reporter",
    "resolved": "resolved",
    "resolutiondate": "resolved",
}
ORDERABLE = {"created", "updated", "key", "id", "priority", "status", "project", "resolved"}
DATE_FIELDS = {"created", "updated", "resolved"}


@dataclass
class JqlQuery:
    text: str
    where: Any | None
    order: list[OrderItem] = field(default_factory=list)

    @property
    def is_bounded(self) -> bool:
        """Jira Cloud's enhanced search refuses queries without a search restriction."""
        return self.where is not None

    def compile(self, world: JiraWorld, tz: tzinfo = UTC) -> Callable[[SimIssue], bool]:
        """A predicate over issues; validates values (unknown projects, keys, dates) eagerly."""
        if self.where is None:
            return lambda issue: True
        return _compile(self.where, world, tz)

    def sort_key(self) -> Callable[[SimIssue], Any]:
        order = self.order or []

        def key(issue: SimIssue) -> Any:
            parts: list[Any] = []
            for item in order:
                value = _order_value(issue, item.field)
                parts.append(_Desc(value) if item.descending else value)
            parts.append(issue.nid)  # stable tie-break
            return tuple(parts)

        return key

    def run(self, world: JiraWorld, tz: tzinfo = UTC) -> list[SimIssue]:
        pred = self.compile(world, tz)
        found = [i for i in world.live_issues() if pred(i)]
        found.sort(key=self.sort_key())
        return found


class _Desc:
    __slots__ = ("v",)

    def __init__(self, v: Any) -> None:
        self.v = v

    def __lt__(self, other: _Desc) -> bool:
        return bool(other.v < self.v)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, _Desc) and self.v == other.v


def _key_sort(key: str) -> tuple[str, int]:
    project, _, number = key.rpartition("-")
    return (project, int(number) if number.isdigit() else 0)


def _order_value(issue: SimIssue, name: str) -> Any:
    if name == "created":
        return issue.created
    if name == "updated":
        return issue.updated
    if name == "key":
        return _key_sort(issue.key)
    if name == "id":
        return issue.nid
    if name == "priority":
        return int(issue.priority)
    if name == "status":
        return STATUSES[issue.status].name
    if name == "project":
        return issue.project_key
    if name == "resolved":
        return issue.resolved_at or datetime.max.replace(tzinfo=UTC)
    raise AssertionError(name)


# ----------------------------------------------------------------------------- parser
class _Parser:
    def __init__(self, text: str) -> None:
        self.text = text
        self.tokens = tokenize(text)
        self.i = 0

    def peek(self) -> Token:
        return self.tokens[self.i]

    def next(self) -> Token:
        tok = self.tokens[self.i]
        self.i += 1
        return tok

    def error_expecting(self, what: str, tok: Token) -> JqlError:
        got = "end of the query" if tok.kind == "end" else f"'{tok.text}'"
        return JqlError(
            f"Error in the JQL Query: Expecting {what} but got {got}. (line 1, character {tok.pos})"
        )

    def parse(self) -> JqlQuery:
        where = None
        if not (self.peek().upper == "ORDER" or self.peek().kind == "end"):
            where = self.parse_or()
        order: list[OrderItem] = []
        if self.peek().upper == "ORDER":
            self.next()
            if self.next().upper != "BY":
                raise self.error_expecting("'BY'", self.tokens[self.i - 1])
            while True:
                tok = self.next()
                if tok.kind not in ("word", "string"):
                    raise self.error_expecting("a field name", tok)
                name = FIELD_ALIASES.get(tok.text.lower())
                if name is None or name not in ORDERABLE:
                    raise JqlError(f"Not able to sort using field '{tok.text}'.")
                desc = False
                if self.peek().upper in ("ASC", "DESC"):
                    desc = self.next().upper == "DESC"
                order.append(OrderItem(name, desc))
                if self.peek().text == ",":
                    self.next()
                    continue
                break
            if len(order) > 7:
                raise JqlError("The ORDER BY clause can have at most 7 fields.")
        if self.peek().kind != "end":
            raise self.error_expecting(
                "either 'OR' or 'AND'" if where is not None else "a field name", self.peek()
            )
        return JqlQuery(self.text, where, order)

    def parse_or(self) -> Any:
        parts = [self.parse_and()]
        while self.peek().upper == "OR":
            self.next()
            parts.append(self.parse_and())
        return parts[0] if len(parts) == 1 else BoolOp("or", tuple(parts))

    def parse_and(self) -> Any:
        parts = [self.parse_not()]
        while self.peek().upper == "AND":
            self.next()
            parts.append(self.parse_not())
        return parts[0] if len(parts) == 1 else BoolOp("and", tuple(parts))

    def parse_not(self) -> Any:
        if self.peek().upper == "NOT":
            self.next()
            return BoolOp("not", (self.parse_not(),))
        if self.peek().text == "(" and self.peek().kind == "punct":
            self.next()
            inner = self.parse_or()
            if self.next().text != ")":
                raise self.error_expecting("')'", self.tokens[self.i - 1])
            return inner
        return self.parse_clause()

    def parse_clause(self) -> Clause:
        tok = self.next()
        if tok.kind not in ("word", "string"):
            raise self.error_expecting("a field name", tok)
        name = FIELD_ALIASES.get(tok.text.lower())
        if name is None:
            raise JqlError(f"Field '{tok.text}' does not exist or you do not have permission to view it.")
        op_tok = self.next()
        if op_tok.kind == "op":
            op = op_tok.text
            if op in ("~", "!~"):
                raise JqlError(f"The operator '{op}' is not supported by the '{tok.text}' field.")
            return Clause(name, op, (self.parse_value(),))
        upper = op_tok.upper
        if upper == "IN" or (upper == "NOT" and self.peek().upper == "IN"):
            if upper == "NOT":
                self.next()
            if self.next().text != "(":
                raise self.error_expecting("'('", self.tokens[self.i - 1])
            values = [self.parse_value()]
            while self.peek().text == ",":
                self.next()
                values.append(self.parse_value())
            if self.next().text != ")":
                raise self.error_expecting("')'", self.tokens[self.i - 1])
            return Clause(name, "in" if upper == "IN" else "notin", tuple(values))
        if upper == "IS":
            negate = False
            if self.peek().upper == "NOT":
                self.next()
                negate = True
            val = self.next()
            if val.upper not in ("EMPTY", "NULL"):
                raise self.error_expecting("'EMPTY' or 'NULL'", val)
            return Clause(name, "isnot" if negate else "is", ())
        raise JqlError(
            f"Error in the JQL Query: Expecting operator but got '{op_tok.text}'. {OPERATORS_TEXT} "
            f"(line 1, character {op_tok.pos})"
        )

    def parse_value(self) -> Token:
        tok = self.next()
        if tok.kind not in ("word", "string"):
            raise self.error_expecting("either a value, list or function", tok)
        if tok.kind == "word" and self.peek().text == "(" and self.peek().kind == "punct":
            raise JqlError(f"Unable to find JQL function '{tok.text}()'.")
        return tok


def parse_jql(text: str | None) -> JqlQuery:
    """Parse a JQL string; raises `JqlError` with Jira's message on unsupported syntax."""
    return _Parser(text or "").parse()


# ----------------------------------------------------------------------------- evaluation
_RELATIVE = re.compile(r"^([+-]?)\s*((?:\d+\s*[wdhm]\s*)+)$", re.IGNORECASE)
_DATE_PATTERNS = ("%Y/%m/%d %H:%M", "%Y-%m-%d %H:%M", "%Y/%m/%d", "%Y-%m-%d")


def parse_jql_date(value: str, field_name: str, now: datetime, tz: tzinfo) -> datetime:
    text = value.strip()
    if re.fullmatch(r"-?\d{10,}", text):
        return datetime.fromtimestamp(int(text) / 1000, tz=UTC)
    m = _RELATIVE.match(text)
    if m:
        sign = -1 if m.group(1) == "-" else 1
        total = timedelta(0)
        for amount, unit in re.findall(r"(\d+)\s*([wdhm])", m.group(2), re.IGNORECASE):
            total += {
                "w": timedelta(weeks=1),
                "d": timedelta(days=1),
                "h": timedelta(hours=1),
                "m": timedelta(minutes=1),
            }[unit.lower()] * int(amount)
        return now + sign * total
    for pattern in _DATE_PATTERNS:
        try:
            naive = datetime.strptime(text, pattern)
        except ValueError:
            continue
        return naive.replace(tzinfo=tz).astimezone(UTC)
    raise JqlError(f"Date value '{value}' for field '{field_name}' is invalid. {DATE_FORMATS_TEXT}")


def _compile(node: Any, world: JiraWorld, tz: tzinfo) -> Callable[[SimIssue], bool]:
    if isinstance(node, BoolOp):
        children = [_compile(c, world, tz) for c in node.children]
        if node.op == "and":
            return lambda i: all(c(i) for c in children)
        if node.op == "or":
            return lambda i: any(c(i) for c in children)
        only = children[0]
        return lambda i: not only(i)
    assert isinstance(node, Clause)
    return _compile_clause(node, world, tz)


def _compare(op: str, left: Any, right: Any) -> bool:
    if op == "=":
        return bool(left == right)
    if op == "!=":
        return bool(left != right)
    if left is None:
        return False
    if op == ">":
        return bool(left > right)
    if op == ">=":
        return bool(left >= right)
    if op == "<":
        return bool(left < right)
    if op == "<=":
        return bool(left <= right)
    raise JqlError(f"Error in the JQL Query: Expecting operator but got '{op}'. {OPERATORS_TEXT}")


def _compile_clause(c: Clause, world: JiraWorld, tz: tzinfo) -> Callable[[SimIssue], bool]:
    name = c.field
    texts = [t.text for t in c.values]

    if name in DATE_FIELDS:
        if c.op in ("is", "isnot"):
            get = _date_getter(name)
            return (lambda i: get(i) is None) if c.op == "is" else (lambda i: get(i) is not None)
        if c.op in ("in", "notin"):
            raise JqlError(
                f"The operator '{'in' if c.op == 'in' else 'not in'}' is not supported by the '{name}' field."
            )
        when = parse_jql_date(texts[0], name, world.now, tz)
        get = _date_getter(name)
        op = c.op
        return lambda i: _compare(op, get(i), when)

    if c.op in ("is", "isnot"):
        get_multi = _value_getter(name, world)
        empty = c.op == "is"
        return lambda i: (not get_multi(i)) == empty

    if c.op in ("<", "<=", ">", ">=") and name not in ("id", "key", "priority"):
        raise JqlError(f"The operator '{c.op}' is not supported by the '{name}' field.")

    wanted = _resolve_values(name, texts, world)
    get_multi = _value_getter(name, world)
    if c.op in ("=", "in"):
        return lambda i: not wanted.isdisjoint(get_multi(i))
    if c.op in ("!=", "notin"):
        return lambda i: wanted.isdisjoint(get_multi(i))
    # ordering comparisons on id / key / priority
    target = next(iter(wanted))
    op = c.op
    return lambda i: any(_compare(op, v, target) for v in get_multi(i))


def _date_getter(name: str) -> Callable[[SimIssue], datetime | None]:
    if name == "created":
        return lambda i: i.created
    if name == "updated":
        return lambda i: i.updated
    return lambda i: i.resolved_at


def _value_getter(name: str, world: JiraWorld) -> Callable[[SimIssue], set[Any]]:
    if name == "project":
        return lambda i: {i.project_key}
    if name == "key":
        return lambda i: {_key_sort(i.key)}
    if name == "id":
        return lambda i: {i.nid}
    if name == "status":
        return lambda i: {i.status}
    if name == "statusCategory":
        return lambda i: {STATUSES[i.status].category}
    if name == "issuetype":
        return lambda i: {i.issue_type}
    if name == "priority":
        return lambda i: {int(i.priority)}
    if name == "labels":
        return lambda i: set(i.labels)
    if name == "sprint":
        return lambda i: set(i.sprints)
    if name == "assignee":
        return lambda i: {i.assignee} if i.assignee else set()
    if name == "reporter":
        return lambda i: {i.reporter}
    raise JqlError(f"Field '{name}' does not exist or you do not have permission to view it.")


def _resolve_values(name: str, texts: list[str], world: JiraWorld) -> set[Any]:
    out: set[Any] = set()
    match: Any
    for text in texts:
        folded = text.casefold()
        if name == "project":
            match = next(
                (
                    p.key
                    for p in world.projects.values()
                    if folded in (p.key.casefold(), p.id, p.name.casefold())
                ),
                None,
            )
            if match is None:
                raise JqlError(f"The value '{text}' does not exist for the field 'project'.")
            out.add(match)
        elif name == "key":
            issue = world.find_issue(text) if not text.isdigit() else None
            if issue is None:
                raise JqlError(f"An issue with key '{text}' does not exist for field 'key'.")
            # A former key of a moved issue finds the issue under its new key, as in Jira.
            out.add(_key_sort(issue.key))
        elif name == "id":
            if not text.isdigit():
                raise JqlError(f"The issue key '{text}' for field 'id' is invalid.")
            out.add(int(text))
        elif name == "status":
            match = next((s.id for s in STATUSES.values() if folded in (s.id, s.name.casefold())), None)
            if match is None:
                raise JqlError(f"The value '{text}' does not exist for the field 'status'.")
            out.add(match)
        elif name == "statusCategory":
            cats = {
                "new": "new",
                "to do": "new",
                "2": "new",
                "indeterminate": "indeterminate",
                "in progress": "indeterminate",
                "4": "indeterminate",
                "done": "done",
                "3": "done",
            }
            if folded not in cats:
                raise JqlError(f"The value '{text}' does not exist for the field 'statusCategory'.")
            out.add(cats[folded])
        elif name == "issuetype":
            match = next((t.id for t in ISSUE_TYPES.values() if folded in (t.id, t.name.casefold())), None)
            if match is None:
                raise JqlError(f"The value '{text}' does not exist for the field 'issuetype'.")
            out.add(match)
        elif name == "priority":
            match = next((int(k) for k, v in PRIORITIES.items() if folded in (k, v.casefold())), None)
            if match is None:
                raise JqlError(f"The value '{text}' does not exist for the field 'priority'.")
            out.add(match)
        elif name == "labels":
            out.add(text)
        elif name == "sprint":
            match = next(
                (s.id for s in world.sprints.values() if folded in (str(s.id), s.name.casefold())), None
            )
            if match is None:
                raise JqlError(f"Sprint with id '{text}' does not exist.")
            out.add(match)
        elif name in ("assignee", "reporter"):
            match = next(
                (
                    u.id
                    for u in world.users.values()
                    if folded in (u.account_id.casefold(), u.name.casefold(), u.email.casefold())
                ),
                None,
            )
            if match is None:
                raise JqlError(f"The value '{text}' does not exist for the field '{name}'.")
            out.add(match)
    return out
