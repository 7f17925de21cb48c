"""No float anywhere on the path from meter to MQTT payload.

The ESP32's floats are 32-bit (7 significant digits) and format differently
from CPython's, so the portable code must never make one: no float literal,
no true division, no float() call.
"""
import ast
from pathlib import Path

import pytest

LIB = Path(__file__).resolve().parent.parent / "lib" / "hanport"
FILES = sorted(LIB.glob("*.py"))


def float_makers(tree):
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and isinstance(node.value, float):
            yield node.lineno, "float literal %r" % node.value
        elif isinstance(node, (ast.BinOp, ast.AugAssign)) and isinstance(node.op, ast.Div):
            yield node.lineno, "true division (use //)"
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "float":
            yield node.lineno, "float() call"


def test_the_check_finds_what_it_looks_for():
    found = list(float_makers(ast.parse("a = 1.5\nb = c / 2\nd /= 3\ne = float(f)\n")))
    assert sorted(line for line, _ in found) == [1, 2, 3, 4]


@pytest.mark.parametrize("path", FILES, ids=[p.name for p in FILES])
def test_portable_code_makes_no_float(path):
    assert len(FILES) > 10
    assert list(float_makers(ast.parse(path.read_text()))) == []
