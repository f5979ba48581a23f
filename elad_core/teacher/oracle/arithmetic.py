"""GSM8K arithmetic checks used by the oracle teacher's judgments (docs/design.md §2.4).

A step is checked by evaluating every `a op b = c` in it: GSM8K's `<<expr=value>>`
annotations and plain-text equations (unit words, `x`, `×`, `÷`, thousands commas allowed).
Pure functions; no I/O.
"""

from __future__ import annotations

import ast
import operator
import re

from elad_core.explanations.steps import gsm8k_calculations

_NUM = r"-?(?:\d+(?:\.\d+)?|\.\d+)"
_OP = r"(?:[-+*/×÷–−]|(?<=\s)x(?=\s))"  # a plain-text "x" counts only between spaces
_UNIT = r"(?:\s+(?!x\b)[A-Za-z’']+)*"  # words after a number: "3 green hats + 16 pink hats"
_SIDE = rf"\(*\s*{_NUM}{_UNIT}(?:\s*\)*\s*{_OP}\s*\(*\s*{_NUM}{_UNIT})*\s*\)*"
_PLAIN_CALC_RE = re.compile(rf"{_SIDE}(?:\s*=\s*{_SIDE})+")
_ANNOTATION_RE = re.compile(r"<<[^<>]*>>")
_AST_OPS = {ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul,
            ast.Div: operator.truediv, ast.FloorDiv: operator.floordiv}
_SYMBOLS = str.maketrans({"×": "*", "÷": "/", "–": "-", "−": "-", ",": "", "$": "", "€": "",
                          "£": ""})
TOLERANCE = 1e-6  # relative (absolute below 1)


def to_float(text: str) -> float | None:
    try:
        return float(text.replace(",", "").replace("$", "").strip())
    except ValueError:
        return None


def close(a: float, b: float) -> bool:
    return abs(a - b) <= TOLERANCE * max(1.0, abs(b))


def _evaluate(expr: str) -> float | None:
    """Value of an arithmetic expression (+ - * / // x × ÷, parentheses, unit words ignored).

    None when it is not plain arithmetic (never evaluates anything else: parsed with `ast`).
    """
    expr = re.sub(r"(?<=\s)x(?=\s)", "*", expr.translate(_SYMBOLS))
    expr = re.sub(r"[A-Za-z’']+", " ", expr)  # unit words ("3 hats + 16 hats")

    def ev(node: ast.AST) -> float:
        if isinstance(node, ast.Constant) and isinstance(node.value, (int, float)):
            return float(node.value)
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.UAdd)):
            return -ev(node.operand) if isinstance(node.op, ast.USub) else ev(node.operand)
        if isinstance(node, ast.BinOp) and type(node.op) in _AST_OPS:
            return _AST_OPS[type(node.op)](ev(node.left), ev(node.right))
        raise ValueError("not arithmetic")

    for candidate in (expr, expr.replace("(", "").replace(")", "")):
        try:
            return ev(ast.parse(candidate.strip(), mode="eval").body)
        except (SyntaxError, ValueError, ZeroDivisionError, RecursionError):
            continue
    return None


def _has_op(side: str) -> bool:
    return re.search(_OP, side[1:]) is not None  # [1:]: a leading "-" is a sign


def check_step(step: str) -> tuple[int, bool, float | None]:
    """(number of calculations, all arithmetically true, result of the last one).

    Calculations: GSM8K `<<expr=value>>` annotations and plain `a op b = c` text (annotations
    removed first). The result is the last annotation's value, else the last plain one's.
    """
    checks, annotated, plain_results = [], [], []
    for expr, value in gsm8k_calculations(step):
        got, shown = _evaluate(expr), to_float(value)
        checks.append(got is not None and shown is not None and close(got, shown))
        annotated.append(shown)
    plain = re.sub(r"[$€£]|(?<=\d),(?=\d{3})", "", _ANNOTATION_RE.sub("", step))
    for m in _PLAIN_CALC_RE.finditer(plain):
        if m.group(0).rstrip()[-1].isdigit() and re.match(r"\s*\d", plain[m.end():]):
            continue  # result side cut short ("= 1 1/2"): not checkable
        sides = [s.strip() for s in m.group(0).split("=")]
        cut = re.search(r"(?:[-+*/×÷–−(.\d]|\sx)$", plain[: m.start()].rstrip())
        if cut or not _has_op(sides[0]):
            sides = sides[1:]  # "40 marbles - 3 - 5 = 32", "Week 4 = 48 + 48 = 96"
        if len(sides) < 2 or not any(_has_op(s) for s in sides):
            continue  # "48 = 48": no operation, not a calculation
        vals = [_evaluate(s) for s in sides]
        checks.append(None not in vals and all(close(v, vals[-1]) for v in vals[:-1]))
        plain_results.append(vals[-1])
    results = annotated or plain_results
    return len(checks), all(checks), results[-1] if results else None
