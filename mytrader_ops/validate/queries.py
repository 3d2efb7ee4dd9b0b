"""`config check FILE --env NAME`: ask the environment's Prometheus to parse every
`kind: prometheus` query, so a query it rejects is a configuration error before any run."""

from __future__ import annotations

from mytrader_ops.config import Config, PrometheusCheck
from mytrader_ops.probes import prometheus
from mytrader_ops.probes.context import open_context
from mytrader_ops.redaction import Redactor


async def rejected_queries(config: Config, env_name: str) -> list[tuple[int, str]]:
    """(index of the check, why) for every query the environment's Prometheus rejects.

    Raises LookupError when the environment or its Prometheus is not there to ask.
    """
    env = config.environments.get(env_name)
    if env is None:
        raise LookupError(f"no environment {env_name!r} in the file")
    checks = [(i, c) for i, c in enumerate(config.checks) if isinstance(c, PrometheusCheck)]
    if not checks:
        return []
    if env.prometheus is None:
        raise LookupError(f"environment {env_name!r} names no prometheus: to ask")
    out = []
    async with open_context(
        backend=env.backend, frontend=None, username=None, password=None, redactor=Redactor()
    ) as ctx:
        for i, check in checks:
            why = await prometheus.parse_check(ctx, env.prometheus, check.query)
            if why is not None:
                out.append((i, why))
    return out
