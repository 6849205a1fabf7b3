"""Configuration: defaults < FLASK_* environment < SECRETS_DIR files < test_config, and the
settings create_app() refuses to start with."""

import json
import re
from pathlib import Path

import pytest

from backend_api import config as app_config
from backend_api import create_app
from backend_api.config import ConfigError, database_address, read_secrets_dir

DB_PASSWORD = "hunter2-db-password"


def write_secrets(directory: Path, **secrets: str) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    for key, value in secrets.items():
        (directory / key).write_text(value)
    return directory


def test_defaults_apply_when_nothing_overrides_them() -> None:
    # Given no FLASK_* variables and no secrets dir
    # When the app is built
    app = create_app({"TESTING": True})
    # Then every known key has its default
    assert app.config["APP_NAME"] == "flask-backend"
    assert app.config["ENVIRONMENT"] == "production"
    assert app.config["LOG_LEVEL"] == "info"
    assert app.config["DATABASE_URL"] is None
    assert app.config["SECRET_KEY"] is None


def test_flask_env_overrides_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    # Given ConfigMap values arriving as FLASK_* variables
    monkeypatch.setenv("FLASK_APP_NAME", "orders")
    monkeypatch.setenv("FLASK_LOG_LEVEL", "debug")
    # When the app is built
    app = create_app({"TESTING": True})
    # Then they replace the defaults, and the log level applies to the app's logger
    assert app.config["APP_NAME"] == "orders"
    assert app.config["LOG_LEVEL"] == "debug"
    assert app.logger.level == 10  # logging.DEBUG


def test_known_keys_keep_env_text_that_json_would_convert(monkeypatch: pytest.MonkeyPatch) -> None:
    # Given values that json.loads would turn into a number and a bool
    monkeypatch.setenv("FLASK_APP_NAME", "123")
    monkeypatch.setenv("FLASK_SECRET_KEY", "true")
    # and a Flask setting, which should still be parsed
    monkeypatch.setenv("FLASK_TESTING", "true")
    # When the app is built
    app = create_app()
    # Then the known keys keep their text, and Flask's own settings are parsed as JSON
    assert app.config["APP_NAME"] == "123"
    assert app.config["SECRET_KEY"] == "true"
    assert app.testing is True


def test_secrets_dir_overrides_flask_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    # Given the same key in the environment and in the secrets dir
    monkeypatch.setenv("FLASK_SECRET_KEY", "from-env")
    monkeypatch.setenv("SECRETS_DIR", str(write_secrets(tmp_path / "s", SECRET_KEY="from-file")))
    # When the app is built
    app = create_app()
    # Then the file wins
    assert app.config["SECRET_KEY"] == "from-file"


def test_without_secrets_dir_the_secrets_come_from_where_the_pod_mounts_them(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    # Given no SECRETS_DIR (the construct sets none) and the mounted Secret's files
    mounted = write_secrets(tmp_path / "run-secrets", SECRET_KEY="from-mount")
    monkeypatch.setattr(app_config, "DEFAULT_SECRETS_DIR", mounted)
    # When the app is built
    app = create_app()
    # Then it has read them
    assert app.config["SECRET_KEY"] == "from-mount"


def test_without_secrets_dir_or_a_mounted_secret_no_file_is_read(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    # Given neither (secrets as variables, or none)
    monkeypatch.setattr(app_config, "DEFAULT_SECRETS_DIR", tmp_path / "absent")
    monkeypatch.setenv("FLASK_SECRET_KEY", "from-env")
    # When the app is built, it does not fail, and the variable counts
    assert create_app().config["SECRET_KEY"] == "from-env"


def test_test_config_overrides_secrets_dir(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    # Given a key in the secrets dir
    monkeypatch.setenv("SECRETS_DIR", str(write_secrets(tmp_path / "s", APP_NAME="from-file")))
    # When the app is built with a test override of it
    app = create_app({"TESTING": True, "APP_NAME": "from-test"})
    # Then the test override wins
    assert app.config["APP_NAME"] == "from-test"


def test_secret_file_loses_exactly_one_trailing_newline(tmp_path: Path) -> None:
    # Given secret files written with a trailing newline, one of them with two
    directory = write_secrets(tmp_path / "s", SECRET_KEY="s3cret\n", APP_NAME="two\n\n")
    # When the directory is read
    secrets = read_secrets_dir(directory)
    # Then only the last newline is dropped
    assert secrets == {"APP_NAME": "two\n", "SECRET_KEY": "s3cret"}


def test_secrets_dir_reads_a_kubernetes_volume_layout(tmp_path: Path) -> None:
    # Given the layout of a mounted Secret: key symlinks into a hidden, timestamped directory
    directory = tmp_path / "s"
    write_secrets(directory / "..2026_01_31_10_00_00.1", SECRET_KEY="linked\n", **{"tls.crt": "x"})
    (directory / "..data").symlink_to("..2026_01_31_10_00_00.1")
    (directory / "SECRET_KEY").symlink_to("..data/SECRET_KEY")
    (directory / "tls.crt").symlink_to("..data/tls.crt")
    # When the directory is read
    secrets = read_secrets_dir(directory)
    # Then the key file is followed; hidden entries and names that are no config key are skipped
    assert secrets == {"SECRET_KEY": "linked"}


def test_missing_secrets_dir_is_refused(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    # Given SECRETS_DIR naming a directory that is not there (a failed mount)
    missing = tmp_path / "absent"
    monkeypatch.setenv("SECRETS_DIR", str(missing))
    # When the app is built, then it refuses rather than run without its secrets
    message = f"SECRETS_DIR must be a directory, got '{missing}'"
    with pytest.raises(ConfigError, match=f"^{re.escape(message)}$"):
        create_app({"TESTING": True})


def test_production_refuses_to_start_without_secret_key(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given a production configuration with a database password but no SECRET_KEY
    url = f"postgresql://app:{DB_PASSWORD}@db:5432/app"
    monkeypatch.setenv("SECRETS_DIR", str(write_secrets(tmp_path / "s", DATABASE_URL=url)))
    # When the app is built, then it refuses to start with an error naming the key
    with pytest.raises(RuntimeError, match=r"^SECRET_KEY is not set: a production app needs it"):
        create_app()
    # And it logged exactly one JSON line saying why
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 1
    entry = json.loads(lines[0])
    assert entry["level"] == "critical"
    assert entry["logger"] == "backend_api"
    assert entry["message"] == (
        "refusing to start: SECRET_KEY is not set: a production app needs it to sign sessions. "
        "Provide it as the file SECRET_KEY in SECRETS_DIR, or as FLASK_SECRET_KEY."
    )
    # And no secret value appears in the log
    assert DB_PASSWORD not in lines[0]


def test_production_starts_with_secret_key_from_secrets_dir(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    # Given a production configuration whose SECRET_KEY comes from the secrets dir
    monkeypatch.setenv("SECRETS_DIR", str(write_secrets(tmp_path / "s", SECRET_KEY="k\n")))
    # When the app is built, then it starts and signs with that key
    assert create_app().secret_key == "k"


def test_debug_app_starts_without_secret_key() -> None:
    # Given a debug (development) app without SECRET_KEY, when it is built, then it starts
    assert create_app({"DEBUG": True}).debug is True


def test_database_url_without_host_is_refused_without_echoing_it(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given a DATABASE_URL that readiness could not check: no host
    monkeypatch.setenv("FLASK_DATABASE_URL", f"postgresql://app:{DB_PASSWORD}@/app")
    # When the app is built, then it refuses with a message that names the key
    with pytest.raises(ConfigError, match=r"^DATABASE_URL must name a host") as error:
        create_app({"TESTING": True})
    # And neither the message nor the log shows the password
    assert DB_PASSWORD not in str(error.value)
    assert DB_PASSWORD not in capsys.readouterr().out


def test_unknown_log_level_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    # Given a log level logging does not know
    monkeypatch.setenv("FLASK_LOG_LEVEL", "verbose")
    # When the app is built, then the error lists the allowed levels
    with pytest.raises(
        ConfigError,
        match=r"^LOG_LEVEL must be one of debug, info, warning, error, critical, got 'verbose'$",
    ):
        create_app({"TESTING": True})


@pytest.mark.parametrize(
    ("url", "address"),
    [
        ("postgresql://app:pw@db.database.svc:5432/app", ("db.database.svc", 5432)),
        ("postgres://db/app", ("db", 5432)),
        ("postgresql+psycopg://app@db:6543/app", ("db", 6543)),
    ],
)
def test_database_address_is_host_and_port_with_postgres_default(
    url: str, address: tuple[str, int]
) -> None:
    assert database_address(url) == address


@pytest.mark.parametrize(
    ("url", "message"),
    [
        (
            "mysql://app@10.0.0.5:3306/app",
            r"^DATABASE_URL must start with postgresql://, postgres://, postgresql\+psycopg://, "
            r"got 'mysql'://$",
        ),
        ("postgresql://app:pw@db:port/app", r"^DATABASE_URL has an invalid port$"),
        ("db:5432", r"^DATABASE_URL must name a host"),
    ],
)
def test_database_address_rejects_urls_it_cannot_check(url: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        database_address(url)
