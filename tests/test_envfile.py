"""flask_backend.envfile: SECRET_KEY from the environment or a .env file, kept safely, as
main.py and any chart use it (flask_backend.secret_key). Each test runs in its own folder."""

from __future__ import annotations

import os
import secrets
import stat
import threading
from pathlib import Path

import pytest

from flask_backend import SettingError, secret_key
from flask_backend.envfile import keep_secret_key


@pytest.fixture(autouse=True)
def in_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)


def test_secret_key_from_the_environment_writes_nothing(tmp_path: Path) -> None:
    assert secret_key(environ={"SECRET_KEY": "k" * 48}) == "k" * 48
    assert list(tmp_path.iterdir()) == []


def test_without_one_the_first_call_keeps_a_new_key_in_a_private_dotenv_and_says_so(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    first = secret_key(environ={}, program="chart.py")
    second = secret_key(environ={})

    assert first == second
    assert len(first) >= 48
    assert (tmp_path / ".env").read_text() == f"SECRET_KEY={first}\n"
    assert stat.S_IMODE(os.stat(tmp_path / ".env").st_mode) == 0o600
    (line,) = capsys.readouterr().err.splitlines()
    assert line.startswith("chart.py: created .env with a new SECRET_KEY (mode 0600)")
    assert first not in line


@pytest.mark.parametrize(("mode", "who"), [(0o666, "anyone"), (0o660, "its group")])
def test_a_dotenv_others_may_write_is_refused_naming_it(
    tmp_path: Path, mode: int, who: str
) -> None:
    # Its IMAGE= line would choose what runs with the app's secrets.
    (tmp_path / ".env").write_text("SECRET_KEY=planted-by-someone-else-not-a-real-key\n")
    os.chmod(tmp_path / ".env", mode)

    with pytest.raises(SettingError) as raised:
        secret_key(environ={})

    assert str(raised.value) == (
        f"refusing to read env-file '.env': {who} may write to it (mode {mode:04o}), and its "
        "settings choose what runs with the secrets; chmod go-w .env"
    )
    assert "planted" not in str(raised.value)


def test_a_key_in_dotenv_is_reused(tmp_path: Path) -> None:
    (tmp_path / ".env").write_text("OTHER=1\nSECRET_KEY=kept-key-for-tests-not-a-real-one-000\n")
    os.chmod(tmp_path / ".env", 0o600)

    assert secret_key(environ={}) == "kept-key-for-tests-not-a-real-one-000"


def test_first_synths_running_at_once_agree_on_one_key(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    start = threading.Barrier(8)
    keys: list[str] = []

    def first_synth() -> None:
        start.wait()
        key, one_off = keep_secret_key(".env", secrets.token_urlsafe(48))
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


def test_two_backends_keep_a_key_each_under_their_own_names(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # One key for two apps would let a session one signs be accepted by the other.
    public = secret_key(environ={}, program="chart.py")
    admin = secret_key(environ={}, program="chart.py", name="ADMIN_SECRET_KEY")

    assert public != admin
    assert (tmp_path / ".env").read_text() == f"SECRET_KEY={public}\nADMIN_SECRET_KEY={admin}\n"
    assert capsys.readouterr().err.splitlines()[1] == (
        "chart.py: added a new ADMIN_SECRET_KEY to .env; later synths reuse it (rotate it: "
        "README, Secrets). Keep .env out of version control."
    )
    assert secret_key(environ={}, name="ADMIN_SECRET_KEY") == admin
    assert secret_key(environ={"ADMIN_SECRET_KEY": "a" * 48}, name="ADMIN_SECRET_KEY") == "a" * 48


def test_a_key_name_that_is_no_variable_name_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"^name must be an environment variable name"):
        secret_key(environ={}, name="admin-key")
    assert list(tmp_path.iterdir()) == []


def test_a_dotenv_it_may_not_add_to_names_what_a_chart_can_do(tmp_path: Path) -> None:
    (tmp_path / ".env").write_text("OTHER=1\n")
    os.chmod(tmp_path / ".env", 0o644)

    with pytest.raises(SettingError) as raised:
        secret_key(environ={}, program="chart.py")

    # It said "--existing-secret NAME", a flag of main.py that a chart does not have.
    assert str(raised.value) == (
        "SECRET_KEY is not set and chart.py does not add it to .env: others may read it (mode "
        "0644; chmod 600 .env to let chart.py add it). Add SECRET_KEY=<48+ random characters> "
        "yourself, or pass existing_secret"
    )
