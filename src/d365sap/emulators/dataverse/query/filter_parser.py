"""``$filter``: a recursive-descent parser that binds and type-checks against the table.

Grammar and precedence are the OData library's (which Dataverse runs), lowest first::

    or         := and ("or" and)*
    and        := comparison ("and" comparison)*
    comparison := unary (("eq"|"ne"|"gt"|"ge"|"lt"|"le") unary)*
    unary      := "not" unary | primary
    primary    := "(" or ")" | literal | @alias | function "(" args ")"
                | path ["/" ("any"|"all") "(" [var ":" or] ")"]

so ``not`` binds tighter than ``eq``: ``not name eq 'x'`` is ``(not name) eq 'x'`` and is
refused, exactly as Dataverse refuses it; write ``not (name eq 'x')``. Binding happens while
parsing: an unknown column, a type clash or an unsupported construct is refused before any
row is read, with the OData library's message and Dataverse's code.
"""

from __future__ import annotations

from collections.abc import Mapping

from d365sap.emulators.dataverse.query import errors, functions
from d365sap.emulators.dataverse.query.filter_nodes import (
    Compare,
    Lambda,
    Literal,
    Logical,
    Member,
    Node,
    Not,
    StringCall,
)
from d365sap.emulators.dataverse.query.tokens import Tok, Token, tokenize
from d365sap.emulators.dataverse.query.types import (
    BINARY,
    BOOLEAN,
    DATE,
    DATETIMEOFFSET,
    NULL,
    NUMERIC_TYPES,
    STRING,
    QueryTable,
)

OPERATOR_KINDS = {
    "eq": "Equal",
    "ne": "NotEqual",
    "gt": "GreaterThan",
    "ge": "GreaterThanOrEqual",
    "lt": "LessThan",
    "le": "LessThanOrEqual",
}
_ARITHMETIC = frozenset({"add", "sub", "mul", "div", "mod"})
_STRING_FUNCTIONS = frozenset({"contains", "startswith", "endswith"})
_UNSUPPORTED_BUILTINS = frozenset(
    {
        "tolower",
        "toupper",
        "trim",
        "length",
        "substring",
        "substringof",
        "indexof",
        "concat",
        "year",
        "month",
        "day",
        "hour",
        "minute",
        "second",
        "fractionalseconds",
        "date",
        "time",
        "now",
        "round",
        "floor",
        "ceiling",
        "cast",
        "isof",
        "maxdatetime",
        "mindatetime",
        "totaloffsetminutes",
        "totalseconds",
    }
)
_MAX_ALIAS_DEPTH = 8


def incompatible(left: str, right: str, op: str) -> errors.QueryError:
    """The OData library's refusal of a binary operator over clashing types."""
    return errors.odata(
        "A binary operator with incompatible types was detected. Found operand types "
        f"'{left}' and '{right}' for operator kind '{op}'."
    )


def _comparable(op: str, left: Node, right: Node) -> bool:
    lt, rt = left.edm_type, right.edm_type
    if BINARY in (lt, rt):
        return False
    if isinstance(left, Member) and isinstance(right, Member):
        same = lt == rt  # column comparison: the types must match
    elif lt in NUMERIC_TYPES and rt in NUMERIC_TYPES:
        same = True
    elif {lt, rt} == {DATE, DATETIMEOFFSET}:
        # a date literal against a datetime column means midnight UTC; not the reverse
        date_side = left if lt == DATE else right
        same = isinstance(date_side, Literal)
    else:
        same = lt == rt
    if not same:
        return False
    return op in ("eq", "ne") or lt != BOOLEAN


class FilterParser:
    """Parses one expression; ``variables`` are the lambda variables in scope."""

    def __init__(
        self,
        text: str,
        table: QueryTable,
        aliases: Mapping[str, str] | None,
        variables: Mapping[str, QueryTable] | None = None,
        depth: int = 0,
    ) -> None:
        self.text = text
        self.table = table
        self.aliases = aliases
        self.variables = dict(variables or {})
        self.depth = depth
        self.tokens = tokenize(text)
        self.index = 0

    # -- token helpers ---------------------------------------------------------------------

    def peek(self, offset: int = 0) -> Token:
        return self.tokens[min(self.index + offset, len(self.tokens) - 1)]

    def take(self) -> Token:
        token = self.peek()
        self.index += 1
        return token

    def word(self, *words: str) -> str | None:
        token = self.peek()
        if token.kind is Tok.NAME and token.text in words:
            self.index += 1
            return token.text
        return None

    def fail(self, message: str, token: Token | None = None) -> errors.QueryError:
        position = (token or self.peek()).position
        return errors.syntax(message, position, self.text)

    def expect_close(self) -> None:
        if self.peek().kind is not Tok.CLOSE:
            raise self.fail("')' or operator expected")
        self.take()

    # -- grammar ---------------------------------------------------------------------------

    def parse_filter(self) -> Node:
        """The whole text as a ``$filter``: must end and be Boolean."""
        node = self.parse_expression()
        if node.edm_type not in (BOOLEAN, NULL):
            raise errors.odata("The $filter expression must evaluate to a single boolean value.")
        return node

    def parse_expression(self) -> Node:
        """The whole text as one expression (also used for parameter aliases)."""
        node = self.parse_or()
        if self.peek().kind is not Tok.END:
            raise self.fail("Syntax error")
        return node

    def parse_or(self) -> Node:
        node = self.parse_and()
        while self.word("or"):
            node = self.logical("or", node, self.parse_and())
        return node

    def parse_and(self) -> Node:
        node = self.parse_comparison()
        while self.word("and"):
            node = self.logical("and", node, self.parse_comparison())
        return node

    def logical(self, op: str, left: Node, right: Node) -> Node:
        for side in (left, right):
            if side.edm_type not in (BOOLEAN, NULL):
                raise incompatible(left.edm_type, right.edm_type, op.capitalize())
        return Logical(op, left, right)

    def parse_comparison(self) -> Node:
        node = self.parse_unary()
        while True:
            token = self.peek()
            if token.kind is not Tok.NAME:
                return node
            if token.text in OPERATOR_KINDS:
                self.take()
                node = self.compare(token.text, node, self.parse_unary())
            elif token.text == "in":
                raise errors.odata(
                    "The 'in' operator is an OData 4.01 feature the Dataverse Web API (OData "
                    "4.0) does not support; use Microsoft.Dynamics.CRM.In(PropertyName='…',"
                    "PropertyValues=[…])."
                )
            elif token.text in _ARITHMETIC or token.text == "has":
                raise errors.odata(
                    f"The '{token.text}' operator is not supported in a Dataverse $filter."
                )
            else:
                return node

    def compare(self, op: str, left: Node, right: Node) -> Node:
        if NULL not in (left.edm_type, right.edm_type) and not _comparable(op, left, right):
            raise incompatible(left.edm_type, right.edm_type, OPERATOR_KINDS[op])
        return Compare(op, left, right)

    def parse_unary(self) -> Node:
        token = self.peek()
        if token.kind is Tok.NAME and token.text == "not" and self.peek(1).kind is not Tok.SLASH:
            self.take()
            operand = self.parse_unary()
            if operand.edm_type not in (BOOLEAN, NULL):
                raise errors.odata(
                    "A unary operator with an incompatible type was detected. Found operand "
                    f"type '{operand.edm_type}' for operator kind 'Not'."
                )
            return Not(operand)
        return self.parse_primary()

    def parse_primary(self) -> Node:
        token = self.take()
        if token.kind is Tok.OPEN:
            node = self.parse_or()
            self.expect_close()
            return node
        if token.kind is Tok.LITERAL:
            return Literal(token.value, token.edm_type)
        if token.kind is Tok.ALIAS:
            return self.alias(token)
        if token.kind is Tok.NAME:
            if token.text in ("true", "false"):
                return Literal(token.text == "true", BOOLEAN)
            if token.text == "null":
                return Literal(None, NULL)
            if self.peek().kind is Tok.OPEN:
                return self.call(token)
            return self.path(token)
        raise self.fail("Expression expected", token)

    def alias_text(self, token: Token) -> str | None:
        """The value of a parameter alias (``None``: not assigned, which means null)."""
        if self.aliases is None:
            raise errors.odata(f"Parameter aliases ('{token.text}') cannot be used inside $expand.")
        return self.aliases.get(token.text)

    def alias(self, token: Token) -> Node:
        """A parameter alias: its value is parsed as an expression; unassigned means null."""
        text = self.alias_text(token)
        if text is None:
            return Literal(None, NULL)
        if self.depth >= _MAX_ALIAS_DEPTH:
            raise errors.odata(f"The parameter alias '{token.text}' refers to itself.")
        sub = FilterParser(text, self.table, self.aliases, self.variables, self.depth + 1)
        return sub.parse_expression()

    # -- paths and lambdas -----------------------------------------------------------------

    def path(self, first: Token) -> Node:
        table, variable, segment = self.table, None, first
        if first.text in self.variables:
            if self.peek().kind is not Tok.SLASH:
                raise errors.odata(
                    f"The range variable '{first.text}' must be followed by '/' and a property."
                )
            self.take()
            table, variable = self.variables[first.text], first.text
            segment = self.take()
            if segment.kind is not Tok.NAME:
                raise self.fail("Expression expected", segment)
        steps: list[tuple[QueryTable, str]] = []
        while True:
            followed = self.peek().kind is Tok.SLASH
            column = table.column(segment.text)
            if column is not None:
                if followed:
                    raise errors.odata(
                        f"The property '{segment.text}' is not a navigation property and cannot "
                        "be followed by '/'."
                    )
                return Member(segment.text, column.edm_type, table, tuple(steps), variable)
            navigation = table.navigation(segment.text)
            if navigation is None:
                raise errors.unknown_property(segment.text, table)
            if not followed:
                raise errors.odata(
                    f"The navigation property '{segment.text}' cannot be compared; filter on "
                    "one of its properties (or on the lookup property) instead."
                )
            self.take()
            if navigation.collection:
                return self.lambda_(table, segment.text, navigation.target, steps, variable)
            steps.append((table, segment.text))
            table = navigation.target
            segment = self.take()
            if segment.kind is not Tok.NAME:
                raise self.fail("Expression expected", segment)

    def lambda_(
        self,
        table: QueryTable,
        navigation: str,
        target: QueryTable,
        steps: list[tuple[QueryTable, str]],
        variable: str | None,
    ) -> Node:
        operator = self.take()
        if operator.kind is not Tok.NAME or operator.text not in ("any", "all"):
            raise errors.odata(
                f"The collection-valued navigation property '{navigation}' can only be "
                "followed by /any(...) or /all(...)."
            )
        if steps:
            raise errors.odata(
                "Conditions on collection-valued navigation properties nested in a lookup "
                "navigation property are not supported."
            )
        if self.peek().kind is not Tok.OPEN:
            raise self.fail("'(' expected")
        self.take()
        if operator.text == "any" and self.peek().kind is Tok.CLOSE:
            self.take()
            return Lambda("any", table, navigation, (), variable, "", None)
        name = self.take()
        if name.kind is not Tok.NAME or self.peek().kind is not Tok.COLON:
            raise self.fail("Syntax error", name)
        self.take()
        outer = self.variables
        self.variables = {**outer, name.text: target}
        try:
            predicate = self.parse_or()
        finally:
            self.variables = outer
        if predicate.edm_type not in (BOOLEAN, NULL):
            raise errors.odata(
                f"The expression of '{operator.text}' must evaluate to a single boolean value."
            )
        self.expect_close()
        return Lambda(operator.text, table, navigation, (), variable, name.text, predicate)

    # -- function calls --------------------------------------------------------------------

    def call(self, name: Token) -> Node:
        if name.text.startswith(functions.NAMESPACE_PREFIX):
            self.take()
            return functions.bind(name.text, self.named_arguments(), self.table)
        if name.text in _STRING_FUNCTIONS:
            self.take()
            args = self.positional_arguments()
            if len(args) != 2 or any(a.edm_type not in (STRING, NULL) for a in args):
                raise errors.odata(
                    f"No function signature for the function with name '{name.text}' matches "
                    "the specified arguments. The function signatures considered are: "
                    f"{name.text}(Edm.String Nullable=true, Edm.String Nullable=true)."
                )
            return StringCall(name.text, args[0], args[1])
        if name.text in _UNSUPPORTED_BUILTINS:
            raise errors.odata(
                f"The function '{name.text}' is not supported in a Dataverse $filter; use "
                "contains, startswith, endswith or a Microsoft.Dynamics.CRM query function."
            )
        raise errors.odata(
            f"An unknown function with name '{name.text}' was found. This may also be a "
            "function import or a key lookup on a navigation property, which is not allowed."
        )

    def positional_arguments(self) -> list[Node]:
        args: list[Node] = []
        if self.peek().kind is Tok.CLOSE:
            self.take()
            return args
        while True:
            args.append(self.parse_or())
            token = self.take()
            if token.kind is Tok.CLOSE:
                return args
            if token.kind is not Tok.COMMA:
                raise self.fail("')' or ',' expected", token)

    def named_arguments(self) -> dict[str, functions.Argument]:
        args: dict[str, functions.Argument] = {}
        if self.peek().kind is Tok.CLOSE:
            self.take()
            return args
        while True:
            name = self.take()
            if name.kind is not Tok.NAME or self.peek().kind is not Tok.EQUALS:
                raise self.fail("Syntax error", name)
            self.take()
            args[name.text] = self.argument_value(self.take())
            token = self.take()
            if token.kind is Tok.CLOSE:
                return args
            if token.kind is not Tok.COMMA:
                raise self.fail("')' or ',' expected", token)

    def argument_value(self, token: Token) -> functions.Argument:
        if token.kind is Tok.ALIAS:
            text = self.alias_text(token)
            if text is None:
                return functions.Argument(None, NULL, token.text)
            tokens = tokenize(text)
            if len(tokens) != 2 or tokens[0].kind not in (Tok.LITERAL, Tok.ARRAY):
                raise errors.odata(
                    f"The parameter alias '{token.text}' must hold a literal or an array."
                )
            token = tokens[0]
        if token.kind is Tok.ARRAY:
            return functions.Argument(functions.parse_array(token.text), "array", token.text)
        if token.kind is Tok.LITERAL:
            return functions.Argument(token.value, token.edm_type, token.text)
        if token.kind is Tok.NAME and token.text in ("true", "false", "null"):
            value = None if token.text == "null" else token.text == "true"
            return functions.Argument(value, NULL if value is None else BOOLEAN, token.text)
        raise self.fail("Expression expected", token)


def parse_filter(text: str, table: QueryTable, aliases: Mapping[str, str] | None = None) -> Node:
    """Parse and bind a ``$filter`` expression; raises :class:`~.errors.QueryError`.

    ``aliases`` are the request's parameter aliases (``{"@p1": "'x'"}``); ``None`` means
    aliases are not allowed here (inside ``$expand``).
    """
    if not text.strip():
        raise errors.odata("The $filter expression must evaluate to a single boolean value.")
    return FilterParser(text, table, aliases).parse_filter()
