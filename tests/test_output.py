"""flask_backend.output as a chart author's script uses it: the mistakes a careless chart makes
end in one line on stderr and exit status 2 (write_app_or_exit), never a traceback, and nothing
is written. Each chart is a real script run by a real interpreter in a folder of its own.
(main.py's own output directory, kills and concurrency: tests/test_main_output.py.)"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.support import FAKE_SECRETS, clean_env

HEAD = """\
from cdk8s import App, Chart
from flask_backend import FlaskBackend, secret_key, write_app_or_exit

IMAGE = "registry.example.com/me/api:2.0"
"""

# make_app as the README writes it, one line changed by each case below.
GOOD = """
def make_app(outdir: str) -> App:
    app = App(outdir=outdir)
    chart = Chart(app, "shop", namespace="shop", disable_resource_name_hashes=True)
    FlaskBackend(chart, "api", image=IMAGE, secrets={"SECRET_KEY": secret_key()})
    return app


write_app_or_exit(make_app)
"""


def run_chart(folder: Path, body: str, **env: str) -> subprocess.CompletedProcess[str]:
    (folder / "chart.py").write_text(HEAD + body, encoding="utf-8")
    return subprocess.run(
        [sys.executable, "chart.py"],
        cwd=folder,
        env=clean_env(**({"SECRET_KEY": FAKE_SECRETS["SECRET_KEY"]} | env)),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_the_good_chart_writes_dist(tmp_path: Path) -> None:
    result = run_chart(tmp_path, GOOD)

    assert (result.returncode, result.stderr) == (0, "")
    assert sorted(p.name for p in (tmp_path / "dist").iterdir()) == [
        ".synth.sha256",
        "shop.k8s.yaml",
    ]


@pytest.mark.parametrize(
    ("old", "new", "message"),
    [
        # Forgetting `return app` was an AttributeError traceback from inside write_app.
        (
            "    return app\n",
            "",
            "chart.py: error: make_app must return the cdk8s.App it builds, got None",
        ),
        # `App()` as in the README's shorter snippets: cdk8s wrote straight into dist/, past the
        # staging folder and the record, and the next synth refused its own file.
        (
            "App(outdir=outdir)",
            "App()",
            "chart.py: error: make_app must build its App with the folder it is given "
            "(App(outdir=outdir)), got an App writing to 'dist'",
        ),
        # Two charts of one id: cdk8s's own error, which was a jsii traceback.
        (
            '    chart = Chart(app, "shop", namespace="shop", disable_resource_name_hashes=True)\n',
            '    Chart(app, "shop", namespace="other")\n'
            '    chart = Chart(app, "shop", namespace="shop", disable_resource_name_hashes=True)\n',
            "chart.py: error: There is already a Construct with name 'shop' in App",
        ),
    ],
    ids=["no-return", "app-without-outdir", "two-charts-one-id"],
)
def test_a_careless_make_app_is_one_line_exit_2_and_writes_nothing(
    tmp_path: Path, old: str, new: str, message: str
) -> None:
    assert old in GOOD
    result = run_chart(tmp_path, GOOD.replace(old, new))

    assert (result.returncode, result.stderr) == (2, message + "\n")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["chart.py"]


def test_an_output_folder_under_a_file_says_so(tmp_path: Path) -> None:
    (tmp_path / "notes").write_text("a file, not a folder\n")

    result = run_chart(tmp_path, GOOD, CDK8S_OUTDIR="notes/dist")

    # It said "Permission denied", which sent one looking at modes.
    assert (result.returncode, result.stderr) == (
        2,
        f"chart.py: error: cannot create output directory 'notes/dist': "
        f"'{tmp_path.resolve() / 'notes'}' is not a directory\n",
    )


def test_a_dotenv_that_is_not_a_file_names_what_a_chart_can_do(tmp_path: Path) -> None:
    (tmp_path / ".env").mkdir()

    result = run_chart(tmp_path, GOOD, SECRET_KEY="")

    # It said "name it with --env-file", a flag of main.py that a chart does not have.
    assert (result.returncode, result.stderr) == (
        2,
        "chart.py: error: refusing to read '.env': it is not a regular file; set SECRET_KEY "
        "instead, or move it away\n",
    )


@pytest.mark.parametrize("ignored", [False, True])
def test_a_secret_git_would_commit_is_warned_in_one_line(tmp_path: Path, ignored: bool) -> None:
    # main.py warns so (tests/test_main.py); a chart's dist/ holds the same Secret.
    subprocess.run(["git", "init", "-q", str(tmp_path)], check=True)
    if ignored:
        (tmp_path / ".gitignore").write_text("dist/\n")

    result = run_chart(tmp_path, GOOD)

    assert result.returncode == 0
    warning = (
        "chart.py: warning: dist/shop.k8s.yaml holds a Secret, and git would commit it: it is in "
        "a git work tree and not ignored. Add its folder to .gitignore, or use existing_secret.\n"
    )
    assert result.stderr == ("" if ignored else warning)
