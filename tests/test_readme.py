"""The README's library examples run as written (in order, sharing one namespace, as a reader would paste them)."""

import re
from pathlib import Path

README = Path(__file__).resolve().parents[1] / "README.md"


def _library_blocks() -> list[str]:
    text = README.read_text()
    section = text[text.index("## The library in a few lines"):]
    section = section[: section.index("\n## ", 5)]
    return re.findall(r"```python\n(.*?)```", section, flags=re.S)


def test_readme_library_section_has_every_task():
    code = "\n".join(_library_blocks())
    for name in ("GaugeElement", "WeightSpace.from_modules", "make_model", "AmortizedOperator", "WeightAutoencoder",
                 "weight_matching"):
        assert name in code, f"the README's library section lost its {name} example"


def test_readme_library_examples_run(capsys):
    namespace: dict = {}
    for block in _library_blocks():
        exec(compile(block, str(README), "exec"), namespace)
    assert "better" in namespace and type(namespace["better"]).__name__ == "Sequential"
    assert tuple(namespace["z"].shape) == (2, 8)
    assert namespace["midpoint"].batch_size == 3
