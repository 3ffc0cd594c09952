"""The README's command lines work as written, from the repository root, without activating
anything by hand first (the README's own `source .venv/bin/activate` lines do that). Long
commands run in a cheap form: make -n, dvc repro --dry, notebook_run --dry-run. Blocks marked
```sh instead of ```bash are templates for the reader's own services (cloud remotes): not run."""
import re
import subprocess

import pytest

from compass import paths

CHEAP = [  # (pattern of a README line, the cheap command that runs the same entry point)
    (r"^make (repro|test|lab|push|pull|book)\b.*", r"make -n \1"),
    (r"^dvc repro$", "dvc repro --dry && python -c 'import compass, pandas, papermill'"),
    (r"^(python -m compass\.notebook_run .*)$", r"\1 --dry-run"),
]


def readme_blocks() -> list[list[str]]:
    text = (paths.ROOT / "README.md").read_text(encoding="utf-8")
    blocks = re.findall(r"```bash\n(.*?)```", text, flags=re.S)
    out = []
    for block in blocks:
        lines = [line.split("  #")[0].split(" #")[0].strip() for line in block.splitlines()]
        out.append([line for line in lines if line and not line.startswith("#")])
    return out


def cheap(line: str) -> str:
    for pattern, replacement in CHEAP:
        if re.match(pattern, line):
            return re.sub(pattern, replacement, line)
    return line


def test_the_readme_has_the_commands_this_test_knows():
    lines = [line for block in readme_blocks() for line in block]
    assert "make repro" in lines and "make test" in lines and "source .venv/bin/activate" in lines
    assert not any(".venv/bin/dvc" in line for line in lines)  # it needs an activated env


@pytest.mark.slow
@pytest.mark.parametrize("block", range(len(readme_blocks())))
def test_readme_block_runs(block):
    script = "set -euo pipefail\n" + "\n".join(cheap(line) for line in readme_blocks()[block])
    import os

    env = {k: v for k, v in os.environ.items()
           if k not in ("VIRTUAL_ENV", "COMPASS_DATA_DIR", "COMPASS_TRACE_PARAMS")}
    # a new user's shell: the venv is not on PATH (make test puts it there for pytest)
    env["PATH"] = os.pathsep.join(p for p in env["PATH"].split(os.pathsep)
                                  if os.path.abspath(p) != str(paths.ROOT / ".venv" / "bin"))
    done = subprocess.run(["bash", "-c", script], cwd=paths.ROOT, capture_output=True, text=True,
                          env=env, timeout=300)
    assert done.returncode == 0, f"{script}\n--- stdout\n{done.stdout[-3000:]}\n--- stderr\n{done.stderr[-3000:]}"
