"""Property-based fuzzing of every route from the OpenAPI schema (schemathesis) against a real
server: whatever a client sends, the answer is never a 5xx and errors keep one shape (S2, S6, S7).
"""

from __future__ import annotations

import re
import urllib.request
from collections.abc import Iterator

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings

from tests.conftest import BACKENDS, backend_database, db_env
from tests.support.live import LiveServer, scaled, server_env, start_server

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module", params=BACKENDS)
def fuzz_server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LiveServer]:
    """A real server on each back end (PostgreSQL refuses text SQLite stores, e.g. NUL)."""
    tmp = tmp_path_factory.mktemp("fuzz")
    with backend_database(request.param) as url:
        env = server_env(
            tmp / "data",
            MYTRADER_LOGIN_RATE_PER_MINUTE="100000",
            MYTRADER_ORDER_RATE_PER_MINUTE="100000",
            MYTRADER_FAULTS_ENABLED="false",
            **db_env(url),
        )
        server = start_server(tmp, env)
        try:
            yield server
        finally:
            server.stop()


def test_no_server_errors(fuzz_server: LiveServer) -> None:
    """Every operation, ~25 generated requests each (valid and invalid), with a real token."""
    schema = schemathesis.openapi.from_url(fuzz_server.url + "/openapi.json")
    headers = {"Authorization": f"Bearer {fuzz_server.register('fuzzer')}"}
    paths: set[str] = set()
    for result in schema.get_all_operations():
        operation = result.ok()
        paths.add(operation.path)

        @settings(
            max_examples=25,
            deadline=None,
            database=None,
            suppress_health_check=list(HealthCheck),
        )
        @given(case=operation.as_strategy())
        def call(case: schemathesis.Case) -> None:
            response = case.call(base_url=fuzz_server.url, headers=headers, timeout=scaled(10))
            assert response.status_code < 500, (case.method, case.path, response.text)
            content_type = "".join(response.headers.get("content-type") or [])
            if response.status_code >= 400 and content_type.startswith("application/json"):
                assert set(response.json()) == {"code", "message"}, response.text

        call()
    assert len(paths) >= 15  # the schema still describes the API (it is what was fuzzed)
    with urllib.request.urlopen(fuzz_server.url + "/metrics", timeout=scaled(10)) as resp:
        metrics = resp.read().decode()
    routes = set(re.findall(r'mytrader_http_requests_total\{method="\w+",route="([^"]+)"', metrics))
    # the requests really reached the routes: every path of the schema was served at least once
    assert paths <= routes, sorted(paths - routes)
    assert "unhandled error" not in fuzz_server.log()
