"""Worker and thread counts from the CPU limit (backend_api.serving)."""

import pytest
from hypothesis import given
from hypothesis import strategies as st

from backend_api.serving import Concurrency, concurrency, concurrency_from_env


@pytest.mark.parametrize(
    ("millicores", "workers"),
    [(100, 1), (500, 1), (1000, 1), (1001, 2), (1500, 2), (2000, 2), (4000, 4)],
)
def test_one_worker_per_started_core_each_running_8_requests_at_once(
    millicores: int, workers: int
) -> None:
    assert concurrency(millicores) == Concurrency(workers=workers, threads=8)


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
    assert concurrency_from_env({}) == Concurrency(workers=1, threads=8)


def test_cpu_limit_from_the_downward_api_sets_the_workers() -> None:
    assert concurrency_from_env({"CPU_LIMIT_MILLICORES": "3000"}) == Concurrency(3, 8)


def test_web_concurrency_and_gunicorn_threads_override_the_formula() -> None:
    environ = {"CPU_LIMIT_MILLICORES": "3000", "WEB_CONCURRENCY": "5", "GUNICORN_THREADS": "12"}
    assert concurrency_from_env(environ) == Concurrency(workers=5, threads=12)


def test_empty_values_count_as_unset() -> None:
    environ = {"CPU_LIMIT_MILLICORES": "", "WEB_CONCURRENCY": " ", "GUNICORN_THREADS": ""}
    assert concurrency_from_env(environ | {"DB_POOL_SIZE": ""}) == Concurrency(1, 8)


def test_a_worker_runs_no_more_requests_at_once_than_its_database_connections() -> None:
    # DB_POOL_SIZE caps the connections per worker (a database that allows fewer): the
    # requests beyond wait in the worker's queue, in order, not in the pool's
    environ = {"GUNICORN_THREADS": "32", "DB_POOL_SIZE": "4"}
    assert concurrency_from_env(environ) == Concurrency(workers=1, threads=4)
    # ...and a pool larger than the requests at once would never be used
    assert concurrency_from_env({"DB_POOL_SIZE": "50"}) == Concurrency(workers=1, threads=8)


def test_hundreds_of_requests_at_once_need_as_many_connections_said_explicitly() -> None:
    # GUNICORN_THREADS=500 alone does not open 500 connections per worker
    assert concurrency_from_env({"GUNICORN_THREADS": "500"}).threads == 32
    both = {"GUNICORN_THREADS": "500", "DB_POOL_SIZE": "500"}
    assert concurrency_from_env(both).threads == 500


@pytest.mark.parametrize(
    ("environ", "message"),
    [
        (
            {"CPU_LIMIT_MILLICORES": "1.5"},
            r"^CPU_LIMIT_MILLICORES must be a positive integer, got '1.5'$",
        ),
        ({"WEB_CONCURRENCY": "0"}, r"^WEB_CONCURRENCY must be a positive integer, got 0$"),
        ({"GUNICORN_THREADS": "-2"}, r"^GUNICORN_THREADS must be a positive integer, got -2$"),
        ({"DB_POOL_SIZE": "x"}, r"^DB_POOL_SIZE must be a positive integer, got 'x'$"),
    ],
    ids=["fraction", "zero-workers", "negative-threads", "pool-not-a-number"],
)
def test_invalid_values_are_rejected_with_their_name(environ: dict[str, str], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        concurrency_from_env(environ)
