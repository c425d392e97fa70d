"""The folded solutions of notebooks 05 and 06 work when pasted into the exercise cell: they define the names
the cell's check is called with, and the cheap ones pass their check in the notebook's namespace (its imports,
nothing it trained)."""

import ast
import re
from pathlib import Path

import jupytext
import pytest

ROOT = Path(__file__).resolve().parents[1]
SOLUTION = re.compile(r"<details><summary>Solution</summary>.*?```python\n(.*?)```", re.S)
NOTEBOOKS = ("05", "06")
#: checks whose published solution runs in seconds without anything the notebook trained
RUNNABLE = {"check_backward_message", "check_invariant_features"}


def exercises(prefix: str):
    """(code cells before the exercise, solution code, exercise cell) for every folded code solution."""
    src = next((ROOT / "notebooks" / "src").glob(f"{prefix}_*.py"))
    cells = jupytext.read(src, fmt="py:percent").cells
    for i, cell in enumerate(cells):
        m = SOLUTION.search(cell.source) if cell.cell_type == "markdown" else None
        if m:
            j = next(j for j in range(i + 1, len(cells)) if cells[j].cell_type == "code")
            yield [c.source for c in cells[:i] if c.cell_type == "code"], m.group(1), cells[j].source


def defined(code: str) -> set[str]:
    out = set()
    for node in ast.parse(code).body:
        if isinstance(node, (ast.FunctionDef, ast.ClassDef)):
            out.add(node.name)
        for t in node.targets if isinstance(node, ast.Assign) else []:
            out |= {n.id for n in ast.walk(t) if isinstance(n, ast.Name)}
    return out


def check_call(cell: str) -> ast.Call:
    last = ast.parse(cell).body[-1]
    assert isinstance(last, ast.Expr) and isinstance(last.value, ast.Call), "the exercise cell ends with its check"
    return last.value


@pytest.mark.parametrize("prefix", NOTEBOOKS)
def test_solutions_define_what_the_check_is_called_with(prefix):
    found = list(exercises(prefix))
    assert found
    for _, solution, cell in found:
        call = check_call(cell)
        wanted = {a.id for a in call.args if isinstance(a, ast.Name)}
        assert wanted <= defined(solution), f"{ast.unparse(call)}: the solution defines {sorted(defined(solution))}"


def test_the_name_check_catches_a_renamed_solution():
    call = check_call("def my_features(ws):\n    raise NotImplementedError\n\n\ncheck(my_features)\n")
    assert {a.id for a in call.args} - defined("def features(ws):\n    return ws\n") == {"my_features"}


def imports_of(cells: list[str]) -> str:
    """The notebook's top-level import statements up to the exercise, as one block of code."""
    return "\n".join(ast.unparse(n) for c in cells for n in ast.parse(c).body if isinstance(n, (ast.Import,
                                                                                               ast.ImportFrom)))


@pytest.mark.parametrize("prefix", NOTEBOOKS)
def test_cheap_solutions_pass_their_check_when_pasted(prefix):
    ran = 0
    for before, solution, cell in exercises(prefix):
        call = check_call(cell)
        if ast.unparse(call.func) not in RUNNABLE:
            continue
        namespace: dict = {}
        exec(imports_of(before + [cell]), namespace)  # what the notebook has imported by then
        exec(solution, namespace)
        feedback = eval(ast.unparse(call), namespace)
        assert feedback, f"{ast.unparse(call)}: {feedback}"
        ran += 1
    assert ran == 1, "each of 05 and 06 has one cheap solution to run"
