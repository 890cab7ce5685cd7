"""The architecture contracts (pyproject.toml, [tool.importlinter]) hold, every one of them."""

import subprocess
import sys
import tomllib
from pathlib import Path

from support.processes import PROJECT_DIR


def test_every_import_contract_is_kept():
    contracts = tomllib.loads((PROJECT_DIR / "pyproject.toml").read_text())["tool"]["importlinter"][
        "contracts"
    ]
    lint_imports = Path(sys.executable).parent / "lint-imports"
    result = subprocess.run(
        [str(lint_imports)], cwd=PROJECT_DIR, capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"{len(contracts)} kept, 0 broken" in result.stdout  # none skipped
