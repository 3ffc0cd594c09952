"""Publishing: the DVC remote round trip, the Makefile targets the workflows run, and a book
that reads fully offline (no CDN for MathJax, require.js, fonts or anything else)."""
from __future__ import annotations

import base64
import filecmp
import functools
import http.server
import io as _io
import json
import os
import re
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import yaml

from compass import book, paths
from tests.cluster_project import POOL_SCRIPT

ROOT = paths.ROOT
BIN = Path(sys.prefix) / "bin"          # the environment running the tests (make's VENV)
DVC = BIN / "dvc"


def _env(repo: Path) -> dict:
    """The environment of a command run in ``repo``: its own compass, the real data root."""
    env = {k: v for k, v in os.environ.items() if k not in ("COMPASS_DATA_DIR", "PYTHONPATH")}
    env["PATH"] = f"{BIN}{os.pathsep}{env.get('PATH', '')}"
    env["PYTHONPATH"] = str(repo)
    for key in ("GIT_AUTHOR_NAME", "GIT_COMMITTER_NAME"):
        env.setdefault(key, "compass tests")
    for key in ("GIT_AUTHOR_EMAIL", "GIT_COMMITTER_EMAIL"):
        env.setdefault(key, "tests@compass.invalid")
    return env


def _run(args, cwd: Path, timeout=900) -> str:
    done = subprocess.run([str(a) for a in args], cwd=cwd, env=_env(cwd), capture_output=True,
                          text=True, timeout=timeout)
    out = done.stdout + done.stderr
    assert done.returncode == 0, f"{' '.join(map(str, args))} failed in {cwd}:\n{out[-6000:]}"
    return out


def _make(target: str, cwd: Path, *variables: str) -> str:
    """A Makefile target as the workflow runs it, with this environment as the venv (`-o install`:
    the environment is already installed)."""
    return _run(["make", "--no-print-directory", "-o", "install", target, f"VENV={sys.prefix}",
                 *variables], cwd)


# --- the DVC remote --------------------------------------------------------------------------

def _default_remote(repo: Path) -> tuple[str, str]:
    """(name, url) of the repository's default DVC remote; a relative folder comes back resolved."""
    from dvc.repo import Repo

    with Repo(str(repo)) as dvc_repo:
        config = dvc_repo.config
        name = config["core"].get("remote")
        assert name, f"no default DVC remote in {repo / '.dvc' / 'config'}"
        return name, str(config["remote"][name]["url"])


def test_dvc_config_has_a_local_default_remote_and_no_analytics():
    assert _run([DVC, "config", "core.analytics"], ROOT).strip() == "false"
    name, url = _default_remote(ROOT)
    assert "://" not in url, f"the committed default remote should be a local folder, not {url}"
    folder = Path(url).resolve()
    assert folder == (ROOT.parent / "compass-dvc-remote").resolve()
    assert not folder.is_relative_to(ROOT.resolve())


def _stage_outputs(repo: Path, stage: str) -> list[str]:
    spec = yaml.safe_load((repo / "dvc.yaml").read_text())["stages"][stage]
    entries = spec.get("outs", []) + spec.get("metrics", []) + spec.get("plots", [])
    return [e if isinstance(e, str) else next(iter(e)) for e in entries]


def _same_tree(a: Path, b: Path) -> bool:
    if a.is_file():
        return b.is_file() and filecmp.cmp(a, b, shallow=False)
    files = sorted(p.relative_to(a) for p in a.rglob("*") if p.is_file())
    return files == sorted(p.relative_to(b) for p in b.rglob("*") if p.is_file()) and all(
        filecmp.cmp(a / f, b / f, shallow=False) for f in files)


@pytest.mark.slow
def test_pushed_pool_stage_pulls_into_a_fresh_clone_without_recompute(tmp_path):
    """The README's promise on this repository's own pipeline: run a stage, `make push`, and a
    fresh clone gets the results with `make pull`, `dvc status` clean and `dvc repro` a no-op.

    Clones HEAD (commit first). Both clones sit in tmp_path, so the committed default remote
    (<repo>/../compass-dvc-remote) is tmp_path/compass-dvc-remote. The pool stage's outputs come
    from the pool code on a small pool (tests/cluster_project.py) and are recorded with `dvc
    commit`: the round trip is the same, without embedding the whole pool (minutes on 2 cores).
    """
    pushed, pulled = tmp_path / "pushed", tmp_path / "pulled"
    timings = {}
    _run(["git", "clone", "--quiet", ROOT, pushed], tmp_path)
    name, url = _default_remote(pushed)
    assert Path(url).resolve() == (tmp_path / "compass-dvc-remote").resolve(), url
    start = time.perf_counter()
    _run([sys.executable, "-c", POOL_SCRIPT], pushed)
    _run([DVC, "commit", "--force", "pool"], pushed)
    timings["small pool"] = time.perf_counter() - start
    _run(["git", "commit", "--quiet", "--allow-empty", "-am", "pool reproduced"], pushed)
    start = time.perf_counter()
    _make("push", pushed, "STAGES=pool")
    timings["make push"] = time.perf_counter() - start
    assert any(p.is_file() for p in (tmp_path / "compass-dvc-remote").rglob("*"))

    _run(["git", "clone", "--quiet", pushed, pulled], tmp_path)
    outputs = _stage_outputs(pulled, "pool")
    assert not any((pulled / out).exists() for out in outputs)
    start = time.perf_counter()
    _make("pull", pulled, "STAGES=pool")
    timings["make pull"] = time.perf_counter() - start

    status = _run([DVC, "status", "--json", "pool"], pulled)
    assert json.loads(status.strip().splitlines()[-1]) == {}, (
        f"a pulled workspace should be `dvc status` clean; outputs with `cache: false` in "
        f"dvc.yaml are never pushed, so a pull cannot restore them:\n{status}")
    start = time.perf_counter()
    repro = _run([DVC, "repro", "pool"], pulled)
    timings["no-op repro"] = time.perf_counter() - start
    assert "Running stage" not in repro and "didn't change" in repro, repro
    for out in outputs:
        assert _same_tree(pushed / out, pulled / out), f"{out} differs after the round trip"
    print("round trip timings (s): " + json.dumps({k: round(v, 1) for k, v in timings.items()}))


# --- the workflow and its make targets ---------------------------------------------------------

def _workflow_make_targets() -> list[tuple[str, str]]:
    """(workflow file, make target) for every `make <target>` a workflow step runs."""
    found = []
    for flow in sorted((ROOT / ".github" / "workflows").glob("*.yml")):
        for job in yaml.safe_load(flow.read_text())["jobs"].values():
            for step in job.get("steps", []):
                for line in step.get("run", "").splitlines():
                    found += [(flow.name, t) for t in re.findall(r"^\s*make\s+([\w-]+)", line)]
    return found


def test_workflows_run_make_targets_that_exist():
    """Each `make <target>` of a GitHub workflow is a target make can plan (`make -n`), so a
    renamed or deleted target fails here rather than on GitHub."""
    targets = _workflow_make_targets()
    assert ("book.yml", "book") in targets  # the workflows are read at all
    for flow, target in targets:
        done = subprocess.run(["make", "--no-print-directory", "-n", "-o", "install", target,
                               f"VENV={sys.prefix}"], cwd=ROOT, env=_env(ROOT),
                              capture_output=True, text=True, timeout=60)
        assert done.returncode == 0, f"{flow} runs `make {target}`: {done.stderr[-1000:]}"


@pytest.mark.parametrize("target, command", [
    ("push", "dvc push"), ("pull", "dvc pull"), ("book", "dvc repro book"), ("repro", "dvc repro")])
def test_make_targets_run_dvc(target, command):
    out = _run(["make", "--no-print-directory", "-n", "-o", "install", target, f"VENV={sys.prefix}"],
               ROOT)
    assert out.strip().splitlines()[-1].strip() == f"{BIN}/{command}"


# --- a book that reads offline -------------------------------------------------------------------

def _png() -> bytes:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(3, 2))
    ax.plot([0, 1, 2], [0, 1, 4])
    buf = _io.BytesIO()
    fig.savefig(buf, format="png")
    plt.close(fig)
    return buf.getvalue()


def _sample_notebook() -> dict:
    """What an executed notebook of the pipeline holds: a figure, a DataFrame, LaTeX, a widget."""
    import nbformat

    v4 = nbformat.v4
    png = base64.b64encode(_png()).decode()
    nb = v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nb.metadata["widgets"] = {"application/vnd.jupyter.widget-state+json": {
        "state": {"bar": {"model_name": "IntProgressModel", "model_module": "@jupyter-widgets/controls",
                          "model_module_version": "2.0.0", "state": {"value": 3, "max": 10}}},
        "version_major": 2, "version_minor": 0}}
    out = v4.new_output
    nb.cells = [
        v4.new_markdown_cell("# Sample notebook\n\nA gain $\\Delta = a - b$ in a notebook."),
        v4.new_code_cell("figure", execution_count=1, outputs=[out(
            "display_data", data={"image/png": png, "text/plain": "<Figure>"})]),
        v4.new_code_cell("frame", execution_count=2, outputs=[out(
            "execute_result", execution_count=2, data={
                "text/html": "<table class='dataframe'><tr><th>method</th><th>acc</th></tr>"
                             "<tr><td>compass</td><td>0.61</td></tr></table>",
                "text/plain": "method acc"})]),
        v4.new_code_cell("latex", execution_count=3, outputs=[out(
            "execute_result", execution_count=3, data={"text/latex": "$\\alpha = 0.05$",
                                                       "text/plain": "alpha"})]),
        v4.new_code_cell("progress", execution_count=4, outputs=[out("display_data", data={
            "application/vnd.jupyter.widget-view+json": {"model_id": "bar", "version_major": 2,
                                                         "version_minor": 0},
            "text/plain": "selecting (uk): 30%|###       | 3/10"})]),
    ]
    return nb


@pytest.fixture(scope="module")
def sample_book(tmp_path_factory) -> Path:
    """book/_config.yml (the real one) over a page with math, a table and a figure, and a notebook
    with the outputs the executed notebooks have; built like compass.book.build builds."""
    import nbformat

    src = tmp_path_factory.mktemp("book-src")
    shutil.copy2(paths.BOOK / "_config.yml", src / "_config.yml")
    (src / "_toc.yml").write_text("format: jb-book\nroot: intro\nchapters:\n  - file: sample\n")
    (src / "figure.png").write_bytes(_png())
    (src / "intro.md").write_text(
        "# Sample\n\nInline math {math}`p < 0.05` and a display equation:\n\n"
        "```{math}\n\\mathrm{gain}_{pp} = 100\\,(\\mathrm{acc} - \\mathrm{acc}_0)\n```\n\n"
        "| method | acc |\n|---|---|\n| compass | 0.61 |\n\n"
        "```{figure} figure.png\nA figure.\n```\n")
    nbformat.write(nbformat.from_dict(_sample_notebook()), src / "sample.ipynb")
    out = tmp_path_factory.mktemp("book-out")
    done = subprocess.run([sys.executable, "-c", "from jupyter_book.cli.main import main; main()",
                           "build", str(src), "--path-output", str(out)],
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-4000:]
    return out / "_build" / "html"


def test_built_book_loads_nothing_from_the_network(sample_book):
    assert book.offline_problems(sample_book) == []
    for page in ("intro.html", "sample.html"):
        html = (sample_book / page).read_text()
        assert 'src="_static/mathjax/tex-chtml.js"' in html
        assert "require.js" not in html and "html-manager" not in html
    mathjax = sample_book / "_static" / "mathjax"
    assert (mathjax / "output" / "chtml" / "fonts" / "woff-v2" / "MathJax_Main-Regular.woff").exists()
    assert list((sample_book / "_images").glob("*.png")), "the figures are files of the book"


def test_widget_outputs_show_their_text(sample_book):
    html = (sample_book / "sample.html").read_text()
    assert "selecting (uk): 30%" in html and "<table" in html


def test_offline_problems_flags_remote_and_missing_assets(tmp_path):
    (tmp_path / "_static").mkdir()
    (tmp_path / "_static" / "ok.js").write_text("")
    (tmp_path / "_static" / "font.woff2").write_bytes(b"")
    (tmp_path / "_static" / "theme.css").write_text(
        "/* url(https://in.a.comment/x.css) */\n"
        "@font-face { src: url('font.woff2?v=1#x') format('woff2'); }\n"
        ".a { background: url(data:image/svg+xml;charset=utf-8,%3Csvg%3E); }\n"
        "@import url(\"https://fonts.example.org/css?family=Lato\");\n"
        ".b { background: url(missing.png); }\n")
    (tmp_path / "index.html").write_text(
        '<html><head><script src="_static/ok.js?v=1"></script>'
        '<script src="https://cdn.example.org/mathjax.js"></script>'
        '<link rel="stylesheet" href="//cdn.example.org/x.css">'
        '<link rel="stylesheet" href="_static/theme.css">'
        '<style>.c { background: url("http://example.org/bg.png") }</style></head><body>'
        '<a href="https://example.org/paper">a link is not an asset</a>'
        '<img src="_images/gone.png"><img src="data:image/png;base64,AAAA">'
        '<img srcset="_static/ok.js 1x, http://example.org/2x.png 2x"></body></html>')
    problems = book.offline_problems(tmp_path)
    flagged = sorted(re.search(r"'[^']*'", p).group(0) for p in problems)
    assert flagged == sorted(["'//cdn.example.org/x.css'", "'_images/gone.png'",
                              "'http://example.org/2x.png'", "'http://example.org/bg.png'",
                              "'https://cdn.example.org/mathjax.js'",
                              "'https://fonts.example.org/css?family=Lato'", "'missing.png'"]), problems


@pytest.fixture
def served(sample_book):
    """The built book over HTTP on the loopback interface, as GitHub Pages serves it."""
    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args):
            pass

    handler = functools.partial(Quiet, directory=str(sample_book))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_math_typesets_in_headless_chromium_with_the_network_cut(served, tmp_path):
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        pytest.skip("chromium is not installed (Debian package `chromium`)")
    # every host name but 127.0.0.1 fails to resolve: a CDN reference could not load
    common = [chromium, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
              "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
              f"--user-data-dir={tmp_path / 'profile'}", "--virtual-time-budget=15000"]
    dom = subprocess.run([*common, "--dump-dom", f"{served}/intro.html"], capture_output=True,
                         text=True, timeout=180).stdout
    containers = re.findall(r"<mjx-container[^>]*>", dom)
    assert len(containers) == 2, "MathJax did not typeset the inline and the display math"
    assert sum('display="true"' in c for c in containers) == 1 and "<mjx-merror" not in dom
    shot = tmp_path / "intro.png"
    subprocess.run([*common, "--window-size=1200,900", f"--screenshot={shot}",
                    f"{served}/intro.html"], capture_output=True, timeout=180)
    assert shot.exists() and shot.stat().st_size > 10_000
