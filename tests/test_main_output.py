"""main.py's output directory: it never destroys what it did not write, survives kill -9 and
concurrent synths, stays private, and every bad input or path is one line and exit code 2.

Crash tests run `python main.py` for real and kill it for real: the environment variable
output.STOP_AT makes the synth stop itself (SIGSTOP) at a named step, the test sends SIGKILL (or
SIGTERM, SIGINT). Between two steps there is a single rename or write, atomic by
itself, so a kill at every step covers a kill at any moment, without the flakiness and the
minutes of killing at random times. The processes of one test run side by side.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import pytest
import yaml

import main
from flask_backend import output
from tests.pod import bwrap_available
from tests.support import FAKE_SECRETS, ROOT, clean_env, secret_values

DEADLINE = 120  # seconds any one child may take on a loaded machine before the test fails


# --- helpers -------------------------------------------------------------------------------


def start(project: Path, *argv: str, stop_at: str | None = None, **env: str) -> subprocess.Popen:
    """`python main.py ARGV` in project, as a user runs it; stderr goes to project/stderr."""
    extra = {output.STOP_AT: stop_at} if stop_at else {}
    with (project / "stderr").open("wb") as stderr:
        return subprocess.Popen(
            [sys.executable, str(ROOT / "main.py"), *argv],
            cwd=project,
            env=clean_env(**FAKE_SECRETS, **extra, **env),
            stdout=subprocess.DEVNULL,
            stderr=stderr,
        )


def run(
    project: Path, *argv: str, wrap: Sequence[str] = (), **env: str
) -> subprocess.CompletedProcess:
    return subprocess.run(
        [*wrap, sys.executable, str(ROOT / "main.py"), *argv],
        cwd=project,
        env=clean_env(**FAKE_SECRETS, **env),
        capture_output=True,
        text=True,
        timeout=DEADLINE,
        check=False,
    )


def wait_stopped(process: subprocess.Popen) -> None:
    deadline = time.monotonic() + DEADLINE
    while time.monotonic() < deadline:
        pid, status = os.waitpid(process.pid, os.WUNTRACED | os.WNOHANG)
        if pid and os.WIFSTOPPED(status):
            return
        if pid:
            process.returncode = os.waitstatus_to_exitcode(status)
            pytest.fail(f"main.py exited ({process.returncode}) before its stop")
        time.sleep(0.02)
    pytest.fail("main.py did not reach its stop in time")


def reap(process: subprocess.Popen) -> int:
    process.wait(timeout=DEADLINE)
    return process.returncode


@pytest.fixture
def processes() -> Iterator[list[subprocess.Popen]]:
    """Children a test starts; whatever happens, none outlives it."""
    started: list[subprocess.Popen] = []
    yield started
    for process in started:
        if process.returncode is None:
            process.kill()
            process.wait()


def synth_in_process(outdir: Path, *argv: str) -> bytes:
    """What `python main.py ARGV` writes (with FAKE_SECRETS), synthesized in this process."""
    main.synthesize(main.resolve(main.parse_args(list(argv)), FAKE_SECRETS), outdir)
    return (outdir / "backend.k8s.yaml").read_bytes()


@pytest.fixture(scope="module")
def outputs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path | bytes]:
    """An old dist/ (--replicas 3, as main.py leaves it) and the bytes of a new one (defaults)."""
    base = tmp_path_factory.mktemp("outputs")
    return {
        "old_dist": base / "old",
        "old": synth_in_process(base / "old", "--replicas", "3"),
        "new": synth_in_process(base / "new"),
    }


def project_with_old_dist(path: Path, outputs: dict) -> Path:
    path.mkdir(parents=True)
    shutil.copytree(outputs["old_dist"], path / "dist", symlinks=True)
    return path


def snapshot(path: Path) -> dict[str, tuple[int, bytes]]:
    """Every entry under path: mode and content (a symlink's target), to prove nothing changed."""
    entries = {}
    for entry in sorted(path.rglob("*")):
        status = entry.lstat()
        content = (
            os.readlink(entry).encode()
            if entry.is_symlink()
            else entry.read_bytes()
            if entry.is_file()
            else b""
        )
        entries[str(entry.relative_to(path))] = (status.st_mode, content)
    return entries


def one_error_line(stderr: str, starts: str) -> None:
    assert stderr.startswith(f"main.py: error: {starts}"), stderr
    assert stderr.count("\n") == 1, stderr
    assert "Traceback" not in stderr


@pytest.fixture
def run_main(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> Callable[..., tuple[int, str, str]]:
    """main.main() in-process in directory `cwd` with a clean environment: (code, out, err)."""

    def run_in(cwd: Path, *argv: str, **env: str) -> tuple[int, str, str]:
        monkeypatch.chdir(cwd)
        for name in clean_env().keys() ^ os.environ.keys():
            monkeypatch.delenv(name)
        for name, value in env.items():
            monkeypatch.setenv(name, value)
        try:
            code = main.main(list(argv))
        except SystemExit as exit:  # argparse
            code = exit.code
        out, err = capsys.readouterr()
        return code, out, err

    return run_in


needs_bwrap = pytest.mark.skipif(
    bool(bwrap_available()), reason=f"{bwrap_available()} (mount points, read-only paths)"
)


# --- never destroys what it did not write --------------------------------------------------


def fake_checkout(path: Path) -> Path:
    (path / ".git").mkdir(parents=True)
    (path / ".git" / "HEAD").write_text("ref: refs/heads/main\n")
    (path / ".env").write_text("SECRET_KEY=precious\n")
    (path / "app.py").write_text("print('hello')\n")
    return path


def test_outdir_dot_in_a_checkout_is_refused_and_nothing_is_touched(tmp_path):
    project = fake_checkout(tmp_path / "project")
    before = snapshot(project)

    result = run(project, CDK8S_OUTDIR=".")

    assert result.returncode == 2
    one_error_line(result.stderr, "refusing to write into '.': it is the working directory")
    assert result.stdout == ""
    assert snapshot(project) == before


@pytest.mark.parametrize(
    ("outdir", "why"),
    [
        ("..", "a parent of the working directory"),
        ("../../..", "a parent of the working directory"),
        ("sub/..", "the working directory"),
        ("link-to-here", "the working directory"),  # a symlink is followed, then judged
        ("HOME", "the home directory"),
    ],
)
def test_working_directory_its_parents_and_home_are_refused(run_main, tmp_path, outdir, why):
    home = fake_checkout(tmp_path / "home")
    project = fake_checkout(home / "work" / "project")
    (project / "sub").mkdir()
    (project / "link-to-here").symlink_to(project)
    before = snapshot(tmp_path)

    code, _, err = run_main(
        project, HOME=str(home), CDK8S_OUTDIR=str(home) if outdir == "HOME" else outdir
    )

    assert code == 2
    one_error_line(err, "refusing to write into")
    assert why in err
    assert snapshot(tmp_path) == before


@needs_bwrap
def test_root_is_refused(tmp_path):
    # Under a read-only view of the machine but tmp_path: a regression cannot delete anything.
    sandbox = ["bwrap", "--ro-bind", "/", "/", "--dev", "/dev", "--bind", tmp_path, tmp_path]
    # jsii (cdk8s loads with flask_backend, which checks the path) caches nothing in the
    # read-only home.
    no_cache = {"JSII_RUNTIME_PACKAGE_CACHE": "disabled"}
    result = run(tmp_path, wrap=sandbox, CDK8S_OUTDIR="/", TMPDIR=str(tmp_path), **no_cache)

    assert result.returncode == 2
    one_error_line(result.stderr, "refusing to write into '/': it is the root directory")


@pytest.mark.parametrize(
    "foreign",
    [
        "notes.txt",  # a file of the user's
        "backend.k8s.yaml",  # the same name main.py writes, but not written by it
        "keep/",  # a folder
        ".synth-staging/",  # main.py's staging name, in a directory main.py never wrote to
        ".synth.sha256",  # a forged record in an otherwise foreign directory
    ],
)
def test_directory_holding_anything_main_py_did_not_write_is_refused(run_main, tmp_path, foreign):
    dist = tmp_path / "dist"
    dist.mkdir()
    if foreign.endswith("/"):
        (dist / foreign).mkdir()
        (dist / foreign / "inside").write_text("mine\n")
    else:
        (dist / foreign).write_text("mine\n")
    before = snapshot(tmp_path)

    code, out, err = run_main(tmp_path)

    assert code == 2
    one_error_line(err, "output directory 'dist' holds files no synth wrote")
    assert repr(foreign.rstrip("/")) in err
    assert out == ""
    assert snapshot(tmp_path) == before


def test_a_file_changed_since_main_py_wrote_it_is_refused(run_main, tmp_path, outputs):
    project = project_with_old_dist(tmp_path / "project", outputs)
    (project / "dist" / "backend.k8s.yaml").write_text("# edited by hand\n")
    before = snapshot(project)

    code, _, err = run_main(project)

    assert code == 2
    one_error_line(err, "output directory 'dist' holds files no synth wrote")
    assert snapshot(project) == before


@pytest.mark.parametrize("name", ["backend.k8s.yaml", output.STAGING])
def test_a_symlink_in_place_of_what_main_py_wrote_is_refused_and_its_target_kept(
    run_main, tmp_path, outputs, name
):
    project = project_with_old_dist(tmp_path / "project", outputs)
    victim = tmp_path / "victim"
    if name == output.STAGING:  # the staging a kill leaves behind is removed by the next synth
        victim.mkdir()
        (victim / "precious").write_text("mine\n")
    else:
        victim.write_bytes(outputs["old"])  # same bytes: the hash alone would pass
        (project / "dist" / name).unlink()
    (project / "dist" / name).symlink_to(victim)
    before = snapshot(tmp_path)

    code, _, err = run_main(project)

    assert code == 2
    one_error_line(err, "output directory 'dist' holds files no synth wrote")
    assert snapshot(tmp_path) == before


@pytest.mark.parametrize("listed", ["../victim.yaml", "/etc/hostname", "sub/x.yaml", ".."])
def test_a_forged_record_cannot_point_outside_the_directory(run_main, tmp_path, outputs, listed):
    project = project_with_old_dist(tmp_path / "project", outputs)
    (project / "victim.yaml").write_text("precious\n")
    record = project / "dist" / output.RECORD
    record.write_text(record.read_text() + f"{'0' * 64}  {listed}\n")
    before = snapshot(project)

    code, _, err = run_main(project)

    assert code == 2
    one_error_line(err, "output directory 'dist' holds files no synth wrote")
    assert snapshot(project) == before


def test_a_symlinked_dist_stays_a_symlink_and_its_target_is_written(run_main, tmp_path):
    (tmp_path / "elsewhere").mkdir()
    (tmp_path / "dist").symlink_to(tmp_path / "elsewhere")

    code, _, err = run_main(tmp_path, **FAKE_SECRETS)

    assert code == 0, err
    assert (tmp_path / "dist").is_symlink()
    assert (tmp_path / "elsewhere" / "backend.k8s.yaml").is_file()


def test_output_path_that_is_a_file_is_one_line_and_untouched(run_main, tmp_path):
    (tmp_path / "dist").write_text("a file\n")

    code, _, err = run_main(tmp_path, **FAKE_SECRETS)

    assert code == 2
    one_error_line(err, "output directory 'dist' is not a directory")
    assert (tmp_path / "dist").read_text() == "a file\n"


def test_an_empty_directory_is_used_and_only_main_py_files_are_replaced(
    run_main, tmp_path, outputs
):
    (tmp_path / "dist").mkdir()

    code, _, err = run_main(tmp_path, **FAKE_SECRETS)

    assert code == 0, err
    assert sorted(p.name for p in (tmp_path / "dist").iterdir()) == [
        output.RECORD,
        "backend.k8s.yaml",
    ]
    assert (tmp_path / "dist" / "backend.k8s.yaml").read_bytes() == outputs["new"]


# --- crash-safe, interruptible, serialized -------------------------------------------------

# The step each kill lands after, and which dist/ it must leave.
KILL_STEPS = {
    "synthesized": "old",
    "recorded": "old",
    "replaced": "new",
    "written": "new",
}


def test_kill_9_at_every_step_leaves_the_old_or_the_new_dist_and_the_next_synth_runs(
    tmp_path, outputs, processes
):
    projects = {step: project_with_old_dist(tmp_path / step, outputs) for step in KILL_STEPS}
    subprocess.run(["git", "init", "-q", str(projects["synthesized"])], check=True)
    for step, project in projects.items():
        processes.append(start(project, stop_at=step))

    for process in processes:
        wait_stopped(process)
        process.send_signal(signal.SIGKILL)
        assert reap(process) == -signal.SIGKILL

    for step, project in projects.items():
        assert (project / "dist" / "backend.k8s.yaml").read_bytes() == outputs[KILL_STEPS[step]]
    # The staging left by the kill holds a Secret: private, and out of `git status`.
    staging = projects["synthesized"] / "dist" / output.STAGING
    assert (staging / "backend.k8s.yaml").is_file()
    assert staging.stat().st_mode & 0o777 == 0o700
    status = subprocess.run(
        ["git", "status", "--porcelain", "--untracked-files=all"],
        cwd=projects["synthesized"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert "dist/backend.k8s.yaml" in status
    assert output.STAGING not in status
    for project in projects.values():  # and the next synth accepts what the kill left
        assert synth_in_process(project / "dist") == outputs["new"]
        assert sorted(p.name for p in (project / "dist").iterdir()) == [
            output.RECORD,
            "backend.k8s.yaml",
        ]


# How each signal ends a synth: by an exception, so the staging is removed on the way out.
# (SIGHUP takes SIGTERM's path.)
SIGNAL_EXIT_CODES = {signal.SIGTERM: 128 + 15, signal.SIGINT: 130}


def test_sigterm_and_sigint_remove_the_staging_and_keep_the_old_dist(tmp_path, outputs, processes):
    projects = {
        signum: project_with_old_dist(tmp_path / signum.name, outputs)
        for signum in SIGNAL_EXIT_CODES
    }
    for project in projects.values():
        processes.append(start(project, stop_at="synthesized"))

    for (signum, project), process in zip(projects.items(), processes, strict=True):
        wait_stopped(process)
        assert (project / "dist" / output.STAGING / "backend.k8s.yaml").is_file()
        process.send_signal(signum)
        process.send_signal(signal.SIGCONT)

    for (signum, project), process in zip(projects.items(), processes, strict=True):
        assert reap(process) == SIGNAL_EXIT_CODES[signum], signum.name
        assert "Traceback" not in (project / "stderr").read_text()
        assert not (project / "dist" / output.STAGING).exists()
        assert (project / "dist" / "backend.k8s.yaml").read_bytes() == outputs["old"]


def test_five_concurrent_synths_all_succeed_and_dist_is_never_missing_or_partial(
    tmp_path, outputs, processes
):
    project = project_with_old_dist(tmp_path / "project", outputs)
    for _ in range(5):
        processes.append(start(project))

    seen = set()
    deadline = time.monotonic() + DEADLINE
    while any(p.poll() is None for p in processes) and time.monotonic() < deadline:
        try:
            seen.add((project / "dist" / "backend.k8s.yaml").read_bytes())
        except FileNotFoundError:
            seen.add(b"missing")
        time.sleep(0.01)

    assert [reap(p) for p in processes] == [0] * 5, (project / "stderr").read_text()
    assert seen <= {outputs["old"], outputs["new"]}
    assert (project / "dist" / "backend.k8s.yaml").read_bytes() == outputs["new"]
    assert sorted(p.name for p in (project / "dist").iterdir()) == [
        output.RECORD,
        "backend.k8s.yaml",
    ]


@needs_bwrap
def test_a_dist_that_is_a_mount_point_is_replaced(tmp_path, outputs):
    project = project_with_old_dist(tmp_path / "project", outputs)
    dist = str(project / "dist")

    result = run(project, wrap=["bwrap", "--dev-bind", "/", "/", "--bind", dist, dist])

    assert result.returncode == 0, result.stderr
    assert (project / "dist" / "backend.k8s.yaml").read_bytes() == outputs["new"]
    assert not (project / "dist" / output.STAGING).exists()


# --- private whatever the umask ------------------------------------------------------------


def test_files_are_0600_and_folders_0700_under_umask_000(tmp_path):
    result = subprocess.run(
        [sys.executable, str(ROOT / "main.py")],
        cwd=tmp_path,
        env=clean_env(CDK8S_OUTDIR="out/nested/dist", **FAKE_SECRETS),
        capture_output=True,
        text=True,
        timeout=DEADLINE,
        check=False,
        preexec_fn=lambda: os.umask(0),
    )

    assert result.returncode == 0, result.stderr
    modes = {
        str(path.relative_to(tmp_path)): path.stat().st_mode & 0o777
        for path in [tmp_path / "out", *(tmp_path / "out").rglob("*")]
    }
    assert modes == {
        "out": 0o700,
        "out/nested": 0o700,
        "out/nested/dist": 0o700,
        f"out/nested/dist/{output.RECORD}": 0o600,
        "out/nested/dist/backend.k8s.yaml": 0o600,
    }


# --- one line and exit code 2, never a traceback -------------------------------------------


@needs_bwrap
@pytest.mark.parametrize("read_only", ["dist", "."])
def test_read_only_output_is_one_line_and_nothing_changes(tmp_path, outputs, read_only):
    project = project_with_old_dist(tmp_path / "project", outputs)
    if read_only == ".":
        shutil.rmtree(project / "dist")
    before = snapshot(project)
    path = str(project / read_only)

    result = run(project, wrap=["bwrap", "--dev-bind", "/", "/", "--ro-bind", path, path])

    assert result.returncode == 2
    one_error_line(result.stderr, "cannot write 'dist': Read-only file system")
    assert snapshot(project) == before


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"ENVIRONMENT": "prod\tuction"}, "environment must not contain control characters"),
        ({"LOG_LEVEL": "info\n"}, "log-level must not contain control characters"),
        ({"ENVIRONMENT": "prod\u2028"}, "environment must not contain control characters"),
        ({"ENVIRONMENT": "prod\x7f"}, "environment must not contain control characters"),
        ({"SECRET_KEY": "k\x1bey-value"}, "SECRET_KEY must not contain control characters"),
    ],
)
def test_a_setting_with_a_control_character_is_one_line_and_writes_nothing(
    run_main, tmp_path, env, message
):
    code, out, err = run_main(tmp_path, **{**FAKE_SECRETS, **env})

    assert code == 2
    one_error_line(err, message)
    assert out == ""
    assert not (tmp_path / "dist").exists()
    assert "ey-value" not in err


def test_a_stdout_closed_early_ends_quietly_with_dist_written(tmp_path):
    # `python main.py | head -1` once head has gone: every write to the pipe fails (EPIPE).
    read_end, write_end = os.pipe()
    os.close(read_end)
    try:
        result = subprocess.run(
            [sys.executable, str(ROOT / "main.py")],
            cwd=tmp_path,
            env=clean_env(**FAKE_SECRETS),
            stdout=write_end,
            stderr=subprocess.PIPE,
            text=True,
            timeout=DEADLINE,
            check=False,
        )
    finally:
        os.close(write_end)

    assert result.returncode == 0
    assert "Error" not in result.stderr
    assert (tmp_path / "dist" / "backend.k8s.yaml").is_file()


# --- env files and secrets ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda p: p.write_bytes(b"#" * (2 << 20)), "env-file 'tier.env' is larger than 1 MiB"),
        # /dev/zero is world-writable (0666): refused before the bounded read reaches it.
        (
            lambda p: p.symlink_to("/dev/zero"),
            "refusing to read env-file 'tier.env': anyone may write to it (mode 0666)",
        ),
        (lambda p: p.mkdir(), "env-file 'tier.env' cannot be read: Is a directory"),
        (lambda p: p.write_bytes(b"SECRET_KEY=\xff\n"), "env-file 'tier.env' cannot be read"),
        (
            lambda p: p.write_text("SECRET_KEY=fine\nnot a setting hunter2\n"),
            "env-file 'tier.env' line 2 is not KEY=VALUE",
        ),
    ],
    ids=["2-MiB", "dev-zero", "directory", "not-utf-8", "malformed-line"],
)
def test_a_huge_unreadable_or_malformed_env_file_is_one_line(run_main, tmp_path, make, message):
    make(tmp_path / "tier.env")

    code, _, err = run_main(tmp_path, "--env-file", "tier.env")

    assert code == 2
    one_error_line(err, message)
    assert "hunter2" not in err
    assert not (tmp_path / "dist").exists()


def written_secret(tmp_path: Path) -> dict[str, str]:
    documents = yaml.safe_load_all((tmp_path / "dist" / "backend.k8s.yaml").read_text())
    (secret,) = (d for d in documents if d and d["kind"] == "Secret")
    return secret_values(secret)


def test_env_file_values_are_literal(run_main, tmp_path):
    key = "abc${HOME}def-a-fake-key-of-32-characters"
    (tmp_path / ".env").write_text(f"SECRET_KEY={key}\nENVIRONMENT=${{USER:-x}}\n")

    code, _, err = run_main(tmp_path, "--env-file", ".env", HOME="/home/someone")

    assert code == 0, err
    assert written_secret(tmp_path)["SECRET_KEY"] == key
    text = (tmp_path / "dist" / "backend.k8s.yaml").read_text()
    assert "ENVIRONMENT: ${USER:-x}" in text


def test_the_shell_environment_beats_the_env_file_for_secrets_too(run_main, tmp_path):
    pad = "-a-fake-key-of-32-characters"
    (tmp_path / ".env").write_text(
        f"SECRET_KEY=from-the-file{pad}\nDATABASE_URL=postgresql://file\n"
    )

    code, _, err = run_main(tmp_path, "--env-file", ".env", SECRET_KEY=f"from-the-shell{pad}")

    assert code == 0, err
    assert written_secret(tmp_path) == {
        "SECRET_KEY": f"from-the-shell{pad}",
        "DATABASE_URL": "postgresql://file",
    }
    assert (
        "warning: the environment overrides SECRET_KEY from env-file '.env' (the environment "
        "wins over --env-file; a flag wins over both)."
    ) in err.splitlines()
    assert "from-the" not in err


@pytest.mark.parametrize(
    "argv",
    [
        ["--secret-key", "hunter2"],
        ["--database-url=postgresql://u:hunter2@db/x"],
        ["--SECRET_KEY", "hunter2"],
        ["--env=hunter2"],  # an abbreviation argparse would echo
        ["hunter2"],
        ["--replicas", "2", "--secret", "hunter2"],
    ],
)
def test_a_secret_passed_as_a_flag_is_not_echoed(run_main, tmp_path, argv):
    code, out, err = run_main(tmp_path, *argv)

    assert code == 2
    one_error_line(err, "")
    assert "hunter2" not in out + err
    assert not (tmp_path / "dist").exists()


def test_tier_repr_shows_no_secret_value():
    tier = main.resolve(
        main.parse_args([]),
        {"SECRET_KEY": "hunter2-key", "DATABASE_URL": "postgresql://u:hunter2-pw@db/x"},
    )

    assert "hunter2" not in repr(tier)
    assert "hunter2" not in str(tier)


@pytest.mark.parametrize("name", [".env", ".env.production", ".env.local"])
def test_env_files_are_git_ignored(name):
    result = subprocess.run(
        ["git", "check-ignore", "--no-index", "-q", name], cwd=ROOT, check=False
    )

    assert result.returncode == 0, f"{name} is not git-ignored"
