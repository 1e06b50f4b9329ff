"""The README's delivery-execution section run as written: its Python block executed."""

from __future__ import annotations

import re
from pathlib import Path

README = Path(__file__).resolve().parents[1] / "README.md"


def test_readme_delivery_example_runs_as_written() -> None:
    section = (
        README.read_text().split("## Delivery execution and proof of delivery", 1)[1].split("\n## ", 1)[0]
    )
    (block,) = re.findall(r"```python\n(.*?)```", section, re.S)
    exec(compile(block, "README.md#delivery-execution", "exec"), {})
