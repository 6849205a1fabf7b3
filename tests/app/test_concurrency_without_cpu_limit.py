"""Workers of a pod without a CPU limit (FlaskBackend(resources=Resources(
cpu_limit_millicores=None)) passes CPU_REQUEST_MILLICORES instead of CPU_LIMIT_MILLICORES)."""

import pytest

from backend_api.serving import concurrency, concurrency_from_env


def test_the_cpu_request_sizes_the_workers_without_a_limit() -> None:
    assert concurrency_from_env({"CPU_REQUEST_MILLICORES": "2500"}).workers == 3


def test_a_limit_wins_over_the_request() -> None:
    environ = {"CPU_LIMIT_MILLICORES": "1000", "CPU_REQUEST_MILLICORES": "2500"}

    assert concurrency_from_env(environ).workers == 1


def test_threads_do_not_depend_on_which_cpu_figure_is_given() -> None:
    by_request = concurrency_from_env({"CPU_REQUEST_MILLICORES": "2000"})

    assert by_request == concurrency(2000)


def test_a_bad_request_is_refused() -> None:
    with pytest.raises(ValueError, match=r"^CPU_REQUEST_MILLICORES must be a positive integer"):
        concurrency_from_env({"CPU_REQUEST_MILLICORES": "0.5"})
