"""A small, safe expression language for measurement models: y = f(x_1, ..., x_N).

A metrologist writes a model as text ("ls + d - ls*(da*theta + as_*dtheta)"). The text is read
with `ast.parse(..., mode="eval")` and converted into the node tree of this module; it is never
handed to eval/exec/compile, so a model file can only compute, never run code. Only numbers,
names, unary minus/plus, + - * / ** and calls of the functions in FUNCTIONS are accepted;
anything else is a `ConfigError` naming the offending text and the field it came from.

Why our own tree rather than Python closures or sympy:
- one tree serves the GUM (value and *analytic* sensitivity coefficients, JCGM 100 5.1.3, from
  `derivative`), the Monte Carlo method (`evaluate` works unchanged on numpy arrays of trials,
  JCGM 101 7.6) and dimensional analysis (`evaluate_with_units` on pint quantities);
- derivatives are exact, so c_i does not depend on a finite-difference step, and
- the dependency (sympy) and its start-up cost stay out of the uncertainty core.
"""

from __future__ import annotations

import ast
import difflib
import math
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pint

from daq.errors import ConfigError

Value = Any
"""A float, a numpy array (one element per Monte Carlo trial) or a pint quantity."""

CONSTANTS: dict[str, float] = {"pi": math.pi}
"""Names that mean a number unless the model defines an input or output of that name."""

MAX_TEXT_LENGTH = 10_000
MAX_DEPTH = 200
"""Deeper trees are refused: evaluation and differentiation recurse once per level."""


class UnitMismatch(ValueError):
    """The units of two terms of a model do not agree; the message names both terms."""


# --------------------------------------------------------------------------------------------
# Nodes


class Expression(ABC):
    """A node of a parsed model; immutable, so sub-trees are shared freely (e.g. by derivatives)."""

    precedence: int = 5
    """Binding strength for printing: + - 1, * / 2, unary - 3, ** 4, atoms 5."""

    @abstractmethod
    def evaluate(self, env: Mapping[str, Value]) -> Value:
        """The value for the given input values: floats, numpy arrays (vectorised) or pint quantities.

        numpy arrays are evaluated element-wise, so one call evaluates all Monte Carlo trials.
        """

    @abstractmethod
    def derivative(self, name: str) -> Expression:
        """The symbolic partial derivative with respect to `name`, trivially simplified."""

    @abstractmethod
    def free_names(self) -> frozenset[str]:
        """Every name the expression reads (inputs and, before substitution, other outputs)."""

    @abstractmethod
    def substitute(self, mapping: Mapping[str, Expression]) -> Expression:
        """Replace names by expressions (how an output that uses another output is inlined)."""

    @abstractmethod
    def depth(self) -> int:
        """Height of the tree: leaves are 1."""

    @abstractmethod
    def _evaluate_units(self, env: Mapping[str, Value]) -> Value: ...

    def __str__(self) -> str:
        return self.text()

    @abstractmethod
    def text(self) -> str:
        """The expression as text with only the parentheses it needs."""


@dataclass(frozen=True, eq=True)
class Number(Expression):
    value: float
    label: str | None = None
    """Printed instead of the digits (e.g. "pi")."""

    @property
    def precedence(self) -> int:  # type: ignore[override]
        return 3 if self.value < 0 and self.label is None else 5

    def evaluate(self, env: Mapping[str, Value]) -> Value:
        return np.float64(self.value)

    def derivative(self, name: str) -> Expression:
        return ZERO

    def free_names(self) -> frozenset[str]:
        return frozenset()

    def substitute(self, mapping: Mapping[str, Expression]) -> Expression:
        return self

    def depth(self) -> int:
        return 1

    def _evaluate_units(self, env: Mapping[str, Value]) -> Value:
        return self.value

    def text(self) -> str:
        if self.label is not None:
            return self.label
        if self.value.is_integer() and abs(self.value) < 1e15:
            return str(int(self.value))
        return repr(self.value)


ZERO = Number(0.0)
ONE = Number(1.0)


@dataclass(frozen=True, eq=True)
class Name(Expression):
    name: str

    def evaluate(self, env: Mapping[str, Value]) -> Value:
        try:
            return env[self.name]
        except KeyError:
            raise KeyError(f"no value given for {self.name!r}") from None

    def derivative(self, name: str) -> Expression:
        return ONE if name == self.name else ZERO

    def free_names(self) -> frozenset[str]:
        return frozenset((self.name,))

    def substitute(self, mapping: Mapping[str, Expression]) -> Expression:
        return mapping.get(self.name, self)

    def depth(self) -> int:
        return 1

    def _evaluate_units(self, env: Mapping[str, Value]) -> Value:
        return self.evaluate(env)

    def text(self) -> str:
        return self.name


@dataclass(frozen=True, eq=True)
class Negate(Expression):
    operand: Expression
    precedence = 3

    def evaluate(self, env: Mapping[str, Value]) -> Value:
        return -self.operand.evaluate(env)

    def derivative(self, name: str) -> Expression:
        return negate(self.operand.derivative(name))

    def free_names(self) -> frozenset[str]:
        return self.operand.free_names()

    def substitute(self, mapping: Mapping[str, Expression]) -> Expression:
        return Negate(self.operand.substitute(mapping))

    def depth(self) -> int:
        return 1 + self.operand.depth()

    def _evaluate_units(self, env: Mapping[str, Value]) -> Value:
        return -self.operand._evaluate_units(env)

    def text(self) -> str:
        inner = self.operand.text()
        if self.operand.precedence < 2:  # -a*b is (-a)*b == -(a*b); -(a + b) needs them
            inner = f"({inner})"
        return f"-{inner}"


_PRECEDENCE = {"+": 1, "-": 1, "*": 2, "/": 2, "**": 4}
# numpy ufuncs, not Python operators: 1/0 on plain floats gives inf (as on arrays) instead of
# ZeroDivisionError, and int**-1 is a float. The caller decides what a non-finite value means.
_NUMERIC: dict[str, Callable[[Value, Value], Value]] = {
    "+": np.add,
    "-": np.subtract,
    "*": np.multiply,
    "/": np.divide,
    "**": np.float_power,
}
# Operators for pint quantities, whose dimensional checks live in the operator methods.
_OPERATORS: dict[str, Callable[[Value, Value], Value]] = {
    "+": lambda a, b: a + b,
    "-": lambda a, b: a - b,
    "*": lambda a, b: a * b,
    "/": lambda a, b: a / b,
    "**": lambda a, b: a**b,
}


def _unit_text(value: Value) -> str:
    units = getattr(value, "units", None)
    if units is None:
        return "dimensionless"
    return f"{units:~P}" or "dimensionless"


@dataclass(frozen=True, eq=True)
class BinaryOp(Expression):
    op: str
    left: Expression
    right: Expression

    @property
    def precedence(self) -> int:  # type: ignore[override]
        return _PRECEDENCE[self.op]

    def evaluate(self, env: Mapping[str, Value]) -> Value:
        return _NUMERIC[self.op](self.left.evaluate(env), self.right.evaluate(env))

    def derivative(self, name: str) -> Expression:
        a, b = self.left, self.right
        da, db = a.derivative(name), b.derivative(name)
        if self.op == "+":
            return add(da, db)
        if self.op == "-":
            return subtract(da, db)
        if self.op == "*":
            return add(multiply(da, b), multiply(a, db))
        if self.op == "/":
            # (a/b)' = a'/b - a b'/b^2, written so a constant numerator or denominator stays short.
            return subtract(divide(da, b), divide(multiply(a, db), power(b, Number(2.0))))
        # a**b
        if db == ZERO:
            return multiply(multiply(b, power(a, subtract(b, ONE))), da)
        if da == ZERO:
            return multiply(multiply(self, Call("log", a)), db)
        return multiply(self, add(multiply(db, Call("log", a)), divide(multiply(b, da), a)))

    def free_names(self) -> frozenset[str]:
        return self.left.free_names() | self.right.free_names()

    def substitute(self, mapping: Mapping[str, Expression]) -> Expression:
        return BinaryOp(self.op, self.left.substitute(mapping), self.right.substitute(mapping))

    def depth(self) -> int:
        return 1 + max(self.left.depth(), self.right.depth())

    def _evaluate_units(self, env: Mapping[str, Value]) -> Value:
        a = self.left._evaluate_units(env)
        b = self.right._evaluate_units(env)
        try:
            return _OPERATORS[self.op](a, b)
        except pint.errors.DimensionalityError as exc:
            if self.op in "+-":
                verb = "add" if self.op == "+" else "subtract"
                raise UnitMismatch(
                    f"cannot {verb} '{self.left}' ({_unit_text(a)}) and '{self.right}' ({_unit_text(b)}): "
                    "the units differ in dimension"
                ) from exc
            raise UnitMismatch(
                f"in '{self}' the exponent '{self.right}' ({_unit_text(b)}) must be dimensionless "
                f"and, when '{self.left}' has a unit ({_unit_text(a)}), a plain number"
            ) from exc

    def text(self) -> str:
        p = self.precedence
        left, right = self.left.text(), self.right.text()
        if self.op == "**":
            # Right-associative: parenthesise a left operand that is itself a power or weaker.
            if self.left.precedence <= p:
                left = f"({left})"
            if self.right.precedence < 4:  # x**(-a*b): a bare "x**-a*b" would bind as (x**-a)*b
                right = f"({right})"
            return f"{left}**{right}"
        if self.left.precedence < p:
            left = f"({left})"
        if self.right.precedence < p or (self.right.precedence == p and self.op in "-/"):
            right = f"({right})"
        elif self.op in "+-*/" and self.right.precedence == 3:
            right = f"({right})"  # "a - -b" reads badly; "a - (-b)" does not
        return f"{left} {self.op} {right}"


def _d_sqrt(a: Expression) -> Expression:
    return divide(ONE, multiply(Number(2.0), Call("sqrt", a)))


def _d_log10(a: Expression) -> Expression:
    return divide(ONE, multiply(a, Number(math.log(10.0), "log(10)")))


def _d_asin(a: Expression) -> Expression:
    return divide(ONE, Call("sqrt", subtract(ONE, power(a, Number(2.0)))))


@dataclass(frozen=True)
class Function:
    """A function a model may call: its numpy implementation and d f(a) / d a as an expression."""

    name: str
    numpy: Callable[[Value], Value]
    derivative: Callable[[Expression], Expression]
    needs_dimensionless: bool


FUNCTIONS: dict[str, Function] = {
    f.name: f
    for f in (
        Function("sqrt", np.sqrt, _d_sqrt, False),
        Function("exp", np.exp, lambda a: Call("exp", a), True),
        Function("log", np.log, lambda a: divide(ONE, a), True),
        Function("log10", np.log10, _d_log10, True),
        Function("sin", np.sin, lambda a: Call("cos", a), True),
        Function("cos", np.cos, lambda a: negate(Call("sin", a)), True),
        Function("tan", np.tan, lambda a: divide(ONE, power(Call("cos", a), Number(2.0))), True),
        Function("asin", np.arcsin, _d_asin, True),
        Function("acos", np.arccos, lambda a: negate(_d_asin(a)), True),
        Function("atan", np.arctan, lambda a: divide(ONE, add(ONE, power(a, Number(2.0)))), True),
        Function("abs", np.abs, lambda a: Call("sign", a), False),
        # sign is d|a|/da; callable too, so every derivative prints as text the parser accepts.
        Function("sign", np.sign, lambda a: ZERO, False),
    )
}
"""sin/cos/tan take radians (an angle input in degrees is converted by the model's units)."""


@dataclass(frozen=True, eq=True)
class Call(Expression):
    function: str
    argument: Expression

    def evaluate(self, env: Mapping[str, Value]) -> Value:
        return FUNCTIONS[self.function].numpy(self.argument.evaluate(env))

    def derivative(self, name: str) -> Expression:
        inner = self.argument.derivative(name)
        if inner == ZERO:
            return ZERO
        return multiply(FUNCTIONS[self.function].derivative(self.argument), inner)

    def free_names(self) -> frozenset[str]:
        return self.argument.free_names()

    def substitute(self, mapping: Mapping[str, Expression]) -> Expression:
        return Call(self.function, self.argument.substitute(mapping))

    def depth(self) -> int:
        return 1 + self.argument.depth()

    def _evaluate_units(self, env: Mapping[str, Value]) -> Value:
        a = self.argument._evaluate_units(env)
        try:
            return FUNCTIONS[self.function].numpy(a)
        except pint.errors.DimensionalityError as exc:
            raise UnitMismatch(
                f"{self.function}() needs a dimensionless argument (radians for angles), "
                f"but '{self.argument}' is in {_unit_text(a)}"
            ) from exc

    def text(self) -> str:
        return f"{self.function}({self.argument.text()})"


# --------------------------------------------------------------------------------------------
# Simplifying constructors: used by `derivative` so c_i reads "ls" rather than "1*ls + 0*d".


def _number(expression: Expression) -> float | None:
    if isinstance(expression, Number):
        return expression.value
    return None


def add(a: Expression, b: Expression) -> Expression:
    x, y = _number(a), _number(b)
    if x == 0.0:
        return b
    if y == 0.0:
        return a
    if x is not None and y is not None:
        return Number(x + y)
    if isinstance(b, Negate):
        return subtract(a, b.operand)
    if isinstance(b, Number) and b.label is None and b.value < 0:
        return subtract(a, Number(-b.value))
    return BinaryOp("+", a, b)


def subtract(a: Expression, b: Expression) -> Expression:
    x, y = _number(a), _number(b)
    if y == 0.0:
        return a
    if x == 0.0:
        return negate(b)
    if x is not None and y is not None:
        return Number(x - y)
    if isinstance(b, Negate):
        return add(a, b.operand)
    if isinstance(b, Number) and b.label is None and b.value < 0:
        return add(a, Number(-b.value))
    return BinaryOp("-", a, b)


def negate(a: Expression) -> Expression:
    if isinstance(a, Number) and a.label is None:
        return Number(-a.value)
    if isinstance(a, Negate):
        return a.operand
    return Negate(a)


def multiply(a: Expression, b: Expression) -> Expression:
    x, y = _number(a), _number(b)
    if x == 0.0 or y == 0.0:
        return ZERO
    if x == 1.0:
        return b
    if y == 1.0:
        return a
    if x == -1.0:
        return negate(b)
    if y == -1.0:
        return negate(a)
    if x is not None and y is not None and isinstance(a, Number) and isinstance(b, Number):
        if a.label is None and b.label is None:
            return Number(x * y)
    if isinstance(a, Negate) and isinstance(b, Negate):
        return multiply(a.operand, b.operand)
    if isinstance(a, Negate):
        return negate(multiply(a.operand, b))
    if isinstance(b, Negate):
        return negate(multiply(a, b.operand))
    if y is not None and x is None:
        return BinaryOp("*", b, a)  # constants first: "2*x", not "x*2"
    return BinaryOp("*", a, b)


def divide(a: Expression, b: Expression) -> Expression:
    x, y = _number(a), _number(b)
    if x == 0.0:
        return ZERO
    if y == 1.0:
        return a
    if isinstance(a, Negate):
        return negate(divide(a.operand, b))
    if isinstance(b, Negate):
        return negate(divide(a, b.operand))
    return BinaryOp("/", a, b)


def power(a: Expression, b: Expression) -> Expression:
    y = _number(b)
    if y == 0.0:
        return ONE
    if y == 1.0:
        return a
    return BinaryOp("**", a, b)


# --------------------------------------------------------------------------------------------
# Parsing

ALLOWED = (
    "numbers, input names, + - * / ** and "
    + ", ".join(f"{name}()" for name in FUNCTIONS if name != "sign")
)

_NOT_ALLOWED = {
    ast.Attribute: "attribute access",
    ast.Subscript: "indexing",
    ast.Lambda: "a lambda",
    ast.Compare: "a comparison",
    ast.BoolOp: "and/or",
    ast.IfExp: "a conditional expression",
    ast.List: "a list",
    ast.Tuple: "a tuple",
    ast.Set: "a set",
    ast.Dict: "a dict",
    ast.ListComp: "a comprehension",
    ast.SetComp: "a comprehension",
    ast.DictComp: "a comprehension",
    ast.GeneratorExp: "a generator",
    ast.Starred: "unpacking",
    ast.JoinedStr: "a string",
    ast.NamedExpr: "an assignment",
    ast.Await: "await",
    ast.Yield: "yield",
    ast.YieldFrom: "yield",
    ast.Slice: "a slice",
}

_BINARY = {ast.Add: "+", ast.Sub: "-", ast.Mult: "*", ast.Div: "/", ast.Pow: "**"}
_BINARY_HINTS = {
    ast.BitXor: "'^' is not a power here: use ** (x**2)",
    ast.FloorDiv: "integer division // is not allowed: use /",
    ast.Mod: "% is not allowed",
    ast.MatMult: "@ is not allowed",
    ast.BitAnd: "& is not allowed",
    ast.BitOr: "| is not allowed",
    ast.LShift: "<< is not allowed",
    ast.RShift: ">> is not allowed",
}


class _Converter:
    """Turns Python's ast of the text into our nodes, refusing everything not in the language."""

    def __init__(self, text: str, source: str, field: str) -> None:
        self.text = text
        self.source = source
        self.field = field

    def fail(self, node: ast.AST, problem: str, fix: str = "") -> ConfigError:
        segment = ast.get_source_segment(self.text, node) or self.text
        return ConfigError(self.source, self.field, f"'{segment}' {problem}", fix or f"use {ALLOWED}")

    def convert(self, node: ast.AST) -> Expression:
        if isinstance(node, ast.Constant):
            value = node.value
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise self.fail(node, "is not a number")
            try:
                number = float(value)
            except OverflowError:
                raise self.fail(node, "is too large a number") from None
            if not math.isfinite(number):
                raise self.fail(node, "is not a finite number")
            return Number(number)
        if isinstance(node, ast.Name):
            return Name(node.id)
        if isinstance(node, ast.UnaryOp):
            if isinstance(node.op, ast.USub):
                return Negate(self.convert(node.operand))
            if isinstance(node.op, ast.UAdd):
                return self.convert(node.operand)
            raise self.fail(node, "uses an operator a model may not use (not, ~)")
        if isinstance(node, ast.BinOp):
            op_type = type(node.op)
            if op_type in _BINARY:
                return BinaryOp(_BINARY[op_type], self.convert(node.left), self.convert(node.right))
            raise self.fail(node, "is not allowed in a model expression", _BINARY_HINTS.get(op_type, ""))
        if isinstance(node, ast.Call):
            return self.call(node)
        for kind, what in _NOT_ALLOWED.items():
            if isinstance(node, kind):
                raise self.fail(node, f"is not allowed in a model expression ({what})")
        raise self.fail(node, "is not allowed in a model expression")

    def call(self, node: ast.Call) -> Expression:
        if not isinstance(node.func, ast.Name):
            raise self.fail(node.func, "is not a function a model may call")
        name = node.func.id
        if name not in FUNCTIONS:
            close = difflib.get_close_matches(name, FUNCTIONS, n=1)
            hint = f" (did you mean {close[0]}()?)" if close else ""
            raise self.fail(node.func, f"is not a known function{hint}", f"use {ALLOWED}")
        if node.keywords:
            raise self.fail(node, "passes a keyword argument", f"call {name}() with one plain argument")
        if len(node.args) != 1 or isinstance(node.args[0], ast.Starred):
            raise self.fail(node, f"must pass exactly one argument to {name}()")
        return Call(name, self.convert(node.args[0]))


def parse_expression(text: str, *, source: str = "<model>", field: str = "expression") -> Expression:
    """Parse model text into an `Expression`; every refusal is a ConfigError naming `source` and `field`.

    Names are not checked here (the model knows its inputs): see `check_names`.
    """
    if not isinstance(text, str):
        raise ConfigError(source, field, f"a model expression must be text, got {text!r}",
                          'write it as a string, e.g. "V/I"')
    if not text.strip():
        raise ConfigError(source, field, "the model expression is empty", 'write e.g. "V/I"')
    if len(text) > MAX_TEXT_LENGTH:
        raise ConfigError(source, field, f"the model expression is {len(text)} characters long",
                          f"keep it under {MAX_TEXT_LENGTH}; define intermediate outputs")
    try:
        tree = ast.parse(text.strip(), mode="eval")
    except SyntaxError as exc:
        where = f" at column {exc.offset}" if exc.offset else ""
        raise ConfigError(source, field, f"cannot parse '{text.strip()}': {exc.msg}{where}",
                          f"use {ALLOWED}") from None
    except ValueError as exc:
        raise ConfigError(source, field, f"cannot parse the model expression: {exc}", f"use {ALLOWED}") from None
    except (RecursionError, MemoryError):
        raise ConfigError(source, field, "the model expression is nested too deeply",
                          "define intermediate outputs") from None
    try:
        expression = _Converter(text.strip(), source, field).convert(tree.body)
        too_deep = expression.depth() > MAX_DEPTH
    except RecursionError:
        too_deep = True
    if too_deep:
        raise ConfigError(source, field, f"the model expression is nested deeper than {MAX_DEPTH} levels",
                          "define intermediate outputs")
    return expression


def check_names(
    expression: Expression, known: Iterable[str], *, source: str = "<model>", field: str = "expression"
) -> None:
    """Refuse a name that is neither known nor a constant, suggesting the closest known name."""
    known_set = set(known)
    for name in sorted(expression.free_names()):
        if name in known_set or name in CONSTANTS:
            continue
        close = difflib.get_close_matches(name, sorted(known_set), n=1)
        hint = f"; did you mean '{close[0]}'?" if close else ""
        raise ConfigError(source, field, f"unknown name '{name}'",
                          f'define it under "inputs" or correct the spelling{hint}')


def evaluate_with_units(expression: Expression, env: Mapping[str, Value]) -> Value:
    """Evaluate on pint quantities; a dimension clash raises `UnitMismatch` naming the two terms.

    Dimensional analysis of a model: a sum of a length and a temperature, or exp() of a length,
    is a modelling error a metrologist must see before any number is reported.
    """
    return expression._evaluate_units(env)
