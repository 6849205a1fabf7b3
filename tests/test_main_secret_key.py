"""main.py without SECRET_KEY: the first synth generates one and keeps it in .env, later synths
reuse it, so dist/ (Secret, checksum, migration Job name) is the same on every synth; and .env is
never read or written where that would be unsafe."""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
import threading
from collections.abc import Callable
from pathlib import Path

import pytest

import main
from tests.pod import bwrap_available
from tests.support import ROOT, clean_env, load_dir, secret_values

CREATED = (
    "main.py: created .env with a new SECRET_KEY (mode 0600); later synths reuse it (rotate it: "
    "README, Secrets). Keep .env out of version control."
)


@pytest.fixture
def run_main(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> Callable[..., tuple[int, str, str]]:
    """main.main() in-process in tmp_path, no setting in the environment: (code, out, err)."""

    def run(*argv: str, **env: str) -> tuple[int, str, str]:
        monkeypatch.chdir(tmp_path)
        for name in clean_env().keys() ^ os.environ.keys():
            monkeypatch.delenv(name)
        for name, value in env.items():
            monkeypatch.setenv(name, value)
        code = main.main(list(argv))
        out, err = capsys.readouterr()
        return code, out, err

    return run


def dist(tmp_path: Path) -> bytes:
    return (tmp_path / "dist" / "backend.k8s.yaml").read_bytes()


def synthesized_key(tmp_path: Path) -> str:
    ((_, documents),) = load_dir(tmp_path / "dist")
    (secret,) = (d for d in documents if d["kind"] == "Secret")
    return secret_values(secret)["SECRET_KEY"]


def test_first_synth_keeps_a_new_key_in_dotenv_and_the_next_synth_is_byte_identical(
    run_main, tmp_path
):
    code, out, err = run_main()
    first = dist(tmp_path)
    key = synthesized_key(tmp_path)

    assert code == 0
    assert [line for line in err.splitlines() if "SECRET_KEY" in line] == [CREATED]
    assert (tmp_path / ".env").read_text() == f"SECRET_KEY={key}\n"
    assert (tmp_path / ".env").stat().st_mode & 0o777 == 0o600
    assert len(key) >= 48
    assert key not in out + err

    code, _, err = run_main()

    assert code == 0
    assert "SECRET_KEY" not in err
    assert dist(tmp_path) == first  # Secret, checksum/config and the migration Job's name


def test_a_dotenv_with_other_lines_gets_the_key_added_and_keeps_them(run_main, tmp_path):
    lines = "# the tier's settings\nREPLICAS=3\nexport LOG_LEVEL='debug'"  # no final newline
    (tmp_path / ".env").write_text(lines)
    (tmp_path / ".env").chmod(0o600)

    code, _, err = run_main()

    assert code == 0
    assert "main.py: added a new SECRET_KEY to .env; later synths reuse it" in err
    key = synthesized_key(tmp_path)
    assert (tmp_path / ".env").read_text() == f"{lines}\nSECRET_KEY={key}\n"
    assert (tmp_path / ".env").stat().st_mode & 0o777 == 0o600
    assert b"replicas: 3" in dist(tmp_path)  # and .env was read as the env file
    assert list(tmp_path.glob(".env.*")) == []  # nothing left aside


def test_an_environment_key_wins_and_dotenv_is_not_touched(run_main, tmp_path):
    code, _, err = run_main(SECRET_KEY="fake-secret-key-from-the-environment-not-real")

    assert code == 0
    assert not (tmp_path / ".env").exists()
    assert synthesized_key(tmp_path) == "fake-secret-key-from-the-environment-not-real"
    assert "SECRET_KEY" not in err


def test_a_named_env_file_without_the_key_is_not_written_and_the_key_is_one_off(run_main, tmp_path):
    (tmp_path / "prod.env").write_text("REPLICAS=3\n")

    code, _, err = run_main("--env-file", "prod.env")

    assert code == 0
    assert (tmp_path / "prod.env").read_text() == "REPLICAS=3\n"
    assert not (tmp_path / ".env").exists()
    assert err.splitlines()[0] == (
        "warning: SECRET_KEY is not set (nor in env-file 'prod.env'); generated a random one for "
        "this synth (sessions reset and pods roll on every synth). Pin it with SECRET_KEY=... in "
        "the environment or the env file, or use --existing-secret NAME."
    )


@pytest.mark.parametrize(
    ("make", "problem"),
    [
        ("symlink", "it is a symlink"),
        ("readable", "others may read it (mode 0644; chmod 600 .env to let main.py add it)"),
    ],
)
def test_no_key_is_written_through_a_symlink_or_into_a_readable_dotenv(
    run_main, tmp_path, make, problem
):
    target = tmp_path / "shared.env"
    target.write_text("REPLICAS=3\n")
    if make == "symlink":
        target.chmod(0o600)
        (tmp_path / ".env").symlink_to(target)
    else:
        target.rename(tmp_path / ".env")
        target = tmp_path / ".env"
        target.chmod(0o644)

    code, out, err = run_main()

    assert (code, out) == (2, "")
    assert err == (
        f"main.py: error: SECRET_KEY is not set and main.py does not add it to .env: {problem}. "
        "Add SECRET_KEY=<48+ random characters> yourself, or use --existing-secret NAME\n"
    )
    assert target.read_text() == "REPLICAS=3\n"
    assert not (tmp_path / "dist").exists()


def test_a_symlinked_dotenv_holding_the_key_is_read(run_main, tmp_path):
    (tmp_path / "shared.env").write_text("SECRET_KEY=fake-secret-key-in-a-shared-file-not-real\n")
    (tmp_path / ".env").symlink_to(tmp_path / "shared.env")

    code, _, _ = run_main()

    assert code == 0
    assert synthesized_key(tmp_path) == "fake-secret-key-in-a-shared-file-not-real"


@pytest.mark.skipif(os.geteuid() != 0, reason="giving a file to another user needs root")
def test_a_dotenv_of_another_user_is_not_read_unless_named(run_main, tmp_path):
    planted = "SECRET_KEY=fake-key-planted-by-another-user-not-real\n"
    (tmp_path / ".env").write_text(planted)
    os.chown(tmp_path / ".env", 65534, 65534)

    code, _, err = run_main()

    assert code == 2
    assert err == (
        "main.py: error: refusing to read '.env': it belongs to another user (uid 65534); "
        "name it with --env-file .env if you trust it\n"
    )
    assert not (tmp_path / "dist").exists()

    code, _, _ = run_main("--env-file", ".env")

    assert code == 0
    assert synthesized_key(tmp_path) == "fake-key-planted-by-another-user-not-real"


def test_a_bad_setting_writes_no_dotenv(run_main, tmp_path):
    # --replicas is checked by the construct (FlaskBackend), after main.py's own checks.
    code, _, _ = run_main("--replicas", "-1")

    assert code == 2
    assert list(tmp_path.iterdir()) == []


def test_first_synths_running_at_once_agree_on_one_key(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    start = threading.Barrier(8)
    keys: list[str] = []

    def first_synth() -> None:
        start.wait()
        key, one_off = main.keep_secret_key(".env", secrets.token_urlsafe(48))
        assert one_off is None
        keys.append(key)

    threads = [threading.Thread(target=first_synth) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert len(keys) == 8
    assert len(set(keys)) == 1
    assert (tmp_path / ".env").read_text() == f"SECRET_KEY={keys[0]}\n"
    assert capsys.readouterr().err.count("created .env") == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == [".env"]


@pytest.mark.skipif(
    bool(bwrap_available()), reason=f"{bwrap_available()} (a read-only working directory)"
)
def test_a_read_only_working_directory_gives_a_one_off_key_and_says_why(tmp_path):
    project, out = tmp_path / "project", tmp_path / "out"
    project.mkdir()
    out.mkdir()
    sandbox = ["bwrap", "--dev-bind", "/", "/", "--ro-bind", project, project]

    result = subprocess.run(
        [*sandbox, sys.executable, str(ROOT / "main.py")],
        cwd=project,
        env=clean_env(CDK8S_OUTDIR=str(out / "dist")),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )

    assert result.returncode == 0, result.stderr
    assert result.stderr.splitlines()[0] == (
        "warning: SECRET_KEY is not set and cannot be kept in .env (Read-only file system); "
        "generated a random one for this synth (sessions reset and pods roll on every synth). "
        "Pin it with SECRET_KEY=... in the environment or the env file, or use "
        "--existing-secret NAME."
    )
    assert list(project.iterdir()) == []


def test_a_synth_that_finds_a_key_kept_meanwhile_writes_with_that_key(tmp_path, monkeypatch):
    # Given a synth that resolved its settings with no .env (so with a new key) ...
    monkeypatch.chdir(tmp_path)
    tier = main.resolve(main.parse_args([]), {}, default_env_file=".env")
    # ... when another first synth keeps its key before this one builds and writes
    (tmp_path / ".env").write_text("SECRET_KEY=fake-key-kept-by-the-other-synth-not-a-real-one\n")
    (tmp_path / ".env").chmod(0o600)

    _, _, written = main.synthesize(tier, tmp_path / "dist")

    # Then both synths write the same Secret: the key kept first
    assert synthesized_key(tmp_path) == "fake-key-kept-by-the-other-synth-not-a-real-one"
    assert written.one_off_secret_key is None
