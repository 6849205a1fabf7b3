"""gunicorn's request limits follow MAX_REQUEST_BYTES (FlaskBackend's max_request_bytes): no
part of a request may be larger than what the app and the ingress controller accept."""

import runpy
from pathlib import Path
from typing import Any

import pytest

APP_DIR = Path(__file__).resolve().parents[2] / "app"


def settings() -> dict[str, Any]:
    return runpy.run_path(str(APP_DIR / "gunicorn.conf.py"))


def test_gunicorns_own_defaults_stay_under_the_default_1_mib() -> None:
    config = settings()

    assert (config["limit_request_line"], config["limit_request_field_size"]) == (4094, 8190)


def test_a_smaller_limit_caps_the_request_line_and_each_header(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("MAX_REQUEST_BYTES", "2048")

    config = settings()

    assert (config["limit_request_line"], config["limit_request_field_size"]) == (2048, 2048)
