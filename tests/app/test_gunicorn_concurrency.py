"""Worker and thread counts from the CPU limit (backend_api.serving)."""

import pytest
from hypothesis import given
from hypothesis import strategies as st

from backend_api.serving import Concurrency, concurrency, concurrency_from_env


@pytest.mark.parametrize(
    ("millicores", "workers"),
    [(100, 1), (500, 1), (1000, 1), (1001, 2), (1500, 2), (2000, 2), (4000, 4)],
)
def test_one_worker_per_started_core_each_running_32_requests_at_once(
    millicores: int, workers: int
) -> None:
    assert concurrency(millicores) == Concurrency(workers=workers, threads=32)


@given(st.integers(min_value=1, max_value=256_000))
def test_workers_use_the_whole_limit_and_no_more(millicores: int) -> None:
    workers = concurrency(millicores).workers
    # Enough workers to use every (partial) core of the limit...
    assert workers * 1000 >= millicores
    # ...and none beyond it: each worker has at least part of a core.
    assert (workers - 1) * 1000 < millicores


def test_zero_millicores_is_rejected() -> None:
    with pytest.raises(ValueError, match=r"^cpu_limit_millicores must be >= 1, got 0$"):
        concurrency(0)


def test_unset_cpu_limit_behaves_as_one_core() -> None:
    assert concurrency_from_env({}) == Concurrency(workers=1, threads=32)


def test_cpu_limit_from_the_downward_api_sets_the_workers() -> None:
    assert concurrency_from_env({"CPU_LIMIT_MILLICORES": "3000"}) == Concurrency(3, 32)


def test_web_concurrency_and_gunicorn_threads_override_the_formula() -> None:
    environ = {"CPU_LIMIT_MILLICORES": "3000", "WEB_CONCURRENCY": "5", "GUNICORN_THREADS": "8"}
    assert concurrency_from_env(environ) == Concurrency(workers=5, threads=8)


def test_empty_values_count_as_unset() -> None:
    environ = {"CPU_LIMIT_MILLICORES": "", "WEB_CONCURRENCY": " ", "GUNICORN_THREADS": ""}
    assert concurrency_from_env(environ) == Concurrency(workers=1, threads=32)


@pytest.mark.parametrize(
    ("environ", "message"),
    [
        (
            {"CPU_LIMIT_MILLICORES": "1.5"},
            r"^CPU_LIMIT_MILLICORES must be a positive integer, got '1.5'$",
        ),
        ({"WEB_CONCURRENCY": "0"}, r"^WEB_CONCURRENCY must be a positive integer, got 0$"),
        ({"GUNICORN_THREADS": "-2"}, r"^GUNICORN_THREADS must be a positive integer, got -2$"),
    ],
    ids=["fraction", "zero-workers", "negative-threads"],
)
def test_invalid_values_are_rejected_with_their_name(environ: dict[str, str], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        concurrency_from_env(environ)
