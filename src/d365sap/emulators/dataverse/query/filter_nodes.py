"""The bound ``$filter`` tree.

Every node carries its EDM type, so the parser can refuse a type clash while parsing and the
evaluator never guesses. Boolean nodes evaluate to ``True``, ``False`` or ``None`` (SQL's
unknown): a row is returned only when its filter is ``True``.
"""

from __future__ import annotations

from dataclasses import dataclass

from d365sap.emulators.dataverse.query.types import BOOLEAN, QueryTable


@dataclass(frozen=True, slots=True, eq=False)
class Literal:
    """A constant (``edm_type`` is ``"null"`` for ``null``)."""

    value: object
    edm_type: str


@dataclass(frozen=True, slots=True, eq=False)
class Member:
    """A column, reached from the filtered row or a lambda variable.

    ``steps`` are the single-valued navigation properties followed first, each with the
    table it is declared on (``primarycontactid/createdby/fullname`` has two steps);
    ``variable`` is the lambda variable the path starts from (``None``: the row itself).
    """

    name: str
    edm_type: str
    table: QueryTable
    steps: tuple[tuple[QueryTable, str], ...] = ()
    variable: str | None = None

    @property
    def path(self) -> str:
        """The path as written, without the lambda variable."""
        return "/".join([*(nav for _, nav in self.steps), self.name])


@dataclass(frozen=True, slots=True, eq=False)
class Compare:
    """``left op right`` with ``op`` one of eq ne gt ge lt le."""

    op: str
    left: Node
    right: Node
    edm_type: str = BOOLEAN


@dataclass(frozen=True, slots=True, eq=False)
class Logical:
    """``left and right`` / ``left or right``."""

    op: str
    left: Node
    right: Node
    edm_type: str = BOOLEAN


@dataclass(frozen=True, slots=True, eq=False)
class Not:
    """``not operand``."""

    operand: Node
    edm_type: str = BOOLEAN


@dataclass(frozen=True, slots=True, eq=False)
class StringCall:
    """``contains``/``startswith``/``endswith(subject, pattern)`` (SQL ``LIKE`` semantics)."""

    name: str
    subject: Node
    pattern: Node
    edm_type: str = BOOLEAN


@dataclass(frozen=True, slots=True, eq=False)
class QueryFunction:
    """A ``Microsoft.Dynamics.CRM.*`` condition on one column with typed argument values."""

    name: str
    column: Member
    values: tuple[object, ...]
    edm_type: str = BOOLEAN


@dataclass(frozen=True, slots=True, eq=False)
class Lambda:
    """``collection/any(v: predicate)`` or ``collection/all(v: predicate)``.

    ``steps`` lead to the collection-valued navigation property ``navigation`` declared on
    ``table``; ``predicate`` is ``None`` for ``any()`` without argument.
    """

    op: str
    table: QueryTable
    navigation: str
    steps: tuple[tuple[QueryTable, str], ...]
    variable: str | None
    lambda_variable: str
    predicate: Node | None
    edm_type: str = BOOLEAN


Node = Literal | Member | Compare | Logical | Not | StringCall | QueryFunction | Lambda
