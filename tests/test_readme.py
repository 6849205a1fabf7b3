"""README.md and the documents it links to: their code runs, the reference matches the code, and
what they name (make targets, files, sections) exists."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

import main
from scripts import gen_reference
from tests.support import (
    FAKE_SECRETS,
    ROOT,
    clean_env,
    load_dir,
    validate_strict,
)
from tests.test_main import npm_registry_reachable

# The README is the guide; docs/ holds the reference and the guides; app/README.md the demo app.
DOCUMENTS = {
    path.relative_to(ROOT).as_posix(): path.read_text(encoding="utf-8")
    for path in [
        ROOT / "README.md",
        *sorted((ROOT / "docs").glob("*.md")),
        ROOT / "app" / "README.md",
    ]
}
README = DOCUMENTS["README.md"]
FENCED = re.compile(r"^```(\w*)\n(.*?)^```", flags=re.DOTALL | re.MULTILINE)


def python_blocks(text: str) -> list[tuple[int, str]]:
    """(line number, code) of every ```python block."""
    return [
        (text.count("\n", 0, match.start()) + 1, match.group(2))
        for match in FENCED.finditer(text)
        if match.group(1) == "python"
    ]


PYTHON_BLOCKS = python_blocks(README)
# Every ```python block of every document, as (document, line, code).
ALL_PYTHON_BLOCKS = [
    (name, line, block) for name, text in DOCUMENTS.items() for line, block in python_blocks(text)
]

# Each block runs in a process of its own: a fresh namespace, and a fresh jsii Node process that
# sees CDK8S_OUTDIR (Node reads its environment once, when cdk8s is first imported). Nothing is
# imported before the block; jsii's Node is the venv's (tests/conftest.py puts it on PATH).
RUNNER = """
import sys
exec(compile(sys.stdin.read(), sys.argv[1], "exec"), {"__name__": "__main__"})
"""


def test_the_readme_has_python_examples():
    assert len(PYTHON_BLOCKS) >= 2


def run_block(
    line: int, block: str, cwd: Path, outdir: Path, document: str = "README.md"
) -> subprocess.CompletedProcess[str]:
    """One block of a document, in a fresh process in cwd, writing to outdir."""
    return subprocess.run(
        [sys.executable, "-c", RUNNER, str(ROOT), f"{document} block at line {line}"],
        input=block,
        text=True,
        cwd=cwd,
        env=clean_env(CDK8S_OUTDIR=str(outdir), **FAKE_SECRETS),
        capture_output=True,
        timeout=120,
    )


@pytest.mark.parametrize(
    ("document", "line", "block"),
    ALL_PYTHON_BLOCKS,
    ids=[f"{document}:{line}" for document, line, _ in ALL_PYTHON_BLOCKS],
)
def test_python_block_runs_and_writes_valid_kubernetes(
    document: str, line: int, block: str, tmp_path: Path
):
    outdir = tmp_path / "dist"

    result = run_block(line, block, tmp_path, outdir, document)

    assert result.returncode == 0, result.stderr
    assert "Warning" not in result.stderr
    assert "end-of-life" not in result.stderr  # jsii's banner for an unsupported Node.js
    documents = [d for _, docs in load_dir(outdir) for d in docs]
    assert documents
    validate_strict(documents)


# The chart of "Use it in your own chart", as a file of its own (its errors name the script).
OWN_CHART = re.search(
    r"^## Use it in your own chart\n.*?^```python\n(.*?)^```", README, flags=re.DOTALL | re.M
).group(1)  # type: ignore[union-attr]


def run_own_chart(folder: Path, **env: str) -> subprocess.CompletedProcess[str]:
    (folder / "chart.py").write_text(OWN_CHART, encoding="utf-8")
    return subprocess.run(
        [sys.executable, "chart.py"],
        cwd=folder,
        env={k: v for k, v in clean_env(**env).items() if k != "SECRET_KEY"} | env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_own_chart_without_secret_key_keeps_one_in_dotenv_and_says_so_in_one_line(tmp_path):
    result = run_own_chart(tmp_path)

    assert result.returncode == 0, result.stderr
    assert result.stderr.splitlines() == [
        "chart.py: created .env with a new SECRET_KEY (mode 0600); later synths reuse it "
        "(rotate it: README, Secrets). Keep .env out of version control."
    ]
    assert (tmp_path / "dist" / "backend.k8s.yaml").exists()


def test_own_chart_refused_output_folder_is_one_line_and_exit_2(tmp_path):
    (tmp_path / "dist").mkdir()
    (tmp_path / "dist" / "notes.txt").write_text("not ours")

    result = run_own_chart(tmp_path, SECRET_KEY=FAKE_SECRETS["SECRET_KEY"])

    assert result.returncode == 2
    (line,) = result.stderr.splitlines()
    assert line.startswith("chart.py: error: ")
    assert (tmp_path / "dist" / "notes.txt").read_text() == "not ours"


def test_reference_section_matches_the_generator():
    # Refresh with: python scripts/gen_reference.py --write (in the activated venv)
    assert gen_reference.section(DOCUMENTS["docs/reference.md"]) == gen_reference.generate()


def test_every_make_target_named_exists():
    makefile = (ROOT / "Makefile").read_text(encoding="utf-8")
    targets = set(re.findall(r"^([\w-]+):", makefile, flags=re.MULTILINE))
    text = "\n".join(DOCUMENTS.values())
    named = set(re.findall(r"`make ([\w-]+)", text)) | set(
        re.findall(r"^make ([\w-]+)", text, flags=re.MULTILINE)
    )

    assert named
    assert named <= targets, f"not in the Makefile: {sorted(named - targets)}"


def test_every_main_setting_is_documented():
    documented = set(re.findall(r"^\| `--([\w-]+)` \(`([A-Z_]+)`\)", README, flags=re.MULTILINE))

    assert documented == {(s.flag, s.env) for s in main.SETTINGS}


def anchors(text: str) -> set[str]:
    """The anchors GitHub gives a document's headings (outside code blocks)."""
    headings = re.findall(r"^#+ (.+)$", FENCED.sub("", text), flags=re.MULTILINE)
    return {re.sub(r"[^\w\- ]", "", h.strip().lower()).replace(" ", "-") for h in headings}


def links(text: str) -> list[str]:
    """Every link target outside code blocks, except to the web."""
    return re.findall(r"\]\(((?!https?://)[^)\s]+)\)", FENCED.sub("", text))


def test_relative_links_point_to_files_and_sections_that_exist():
    broken = []
    for name, text in DOCUMENTS.items():
        for link in links(text):
            path, _, anchor = link.partition("#")
            target = ((ROOT / name).parent / path).resolve() if path else ROOT / name
            if not target.exists():
                broken.append(f"{name}: {link}")
            elif anchor and anchor not in anchors(target.read_text(encoding="utf-8")):
                broken.append(f"{name}: {link} (no such section)")

    assert sum(len(links(text)) for text in DOCUMENTS.values()) > 0
    assert broken == []


def test_every_guide_is_linked_from_the_readme():
    linked = {link.partition("#")[0] for link in links(README)}

    assert {name for name in DOCUMENTS if name != "README.md"} - linked == set()


# The cdk8s.yaml of "Use it in your own chart", beside the chart and the chart's own .venv.
OWN_CDK8S_YAML = re.search(
    r"^## Use it in your own chart\n.*?put a `cdk8s.yaml` beside it.*?^```yaml\n(.*?)^```",
    README,
    flags=re.DOTALL | re.M,
).group(1)  # type: ignore[union-attr]


def test_own_chart_with_its_cdk8s_yaml_runs_under_cdk8s_synth_without_an_activated_venv(tmp_path):
    venv_bin = Path(sys.executable).parent
    if not npm_registry_reachable(str(venv_bin / "npm")):
        pytest.skip("cdk8s-cli comes from the npm registry, which cannot be reached from here")
    (tmp_path / "chart.py").write_text(OWN_CHART, encoding="utf-8")
    (tmp_path / "cdk8s.yaml").write_text(OWN_CDK8S_YAML, encoding="utf-8")
    (tmp_path / ".venv").symlink_to(venv_bin.parent)
    # A new shell: no SECRET_KEY, the venv not activated (its bin off PATH: `python` there is
    # another interpreter, whose `import cdk8s` would fail). The README's switch for the CLI's
    # upgrade check, which cannot reach registry.npmjs.org over plain HTTP from here.
    path = os.pathsep.join(p for p in os.environ["PATH"].split(os.pathsep) if p != str(venv_bin))
    env = clean_env(PATH=path, CDK8S_CHECK_UPGRADE="false")
    env.pop("SECRET_KEY", None)

    cli = subprocess.run(
        [str(venv_bin / "npx"), "--yes", "cdk8s-cli@2", "synth"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )

    assert cli.returncode == 0, cli.stdout + cli.stderr
    assert "Error" not in cli.stderr, cli.stderr
    assert "end-of-life" not in cli.stderr  # jsii ran on the venv's Node.js
    cli_dist = (tmp_path / "dist" / "backend.k8s.yaml").read_bytes()
    validate_strict(list(yaml.safe_load_all(cli_dist)))
    # The key the CLI's synth kept in .env gives `python chart.py` the same bytes.
    assert (tmp_path / ".env").read_text().startswith("SECRET_KEY=")
    again = run_own_chart(tmp_path)
    assert (again.returncode, again.stderr) == (0, "")
    assert (tmp_path / "dist" / "backend.k8s.yaml").read_bytes() == cli_dist
