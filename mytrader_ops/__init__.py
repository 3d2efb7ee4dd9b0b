"""mytrader-ops: an evidence-based go/no-go gate for MyTrader deployments.

Layout (pure modules touch no network; probes do all I/O):

    config/yamlsafe  -> strict, line-aware configuration
    probes/*         -> I/O; each returns an Observation, never raises for an unhealthy target
    sampler          -> open-model SLA sampler (raw asyncio HTTP/1.1)
    evaluate, stats, decision -> pure: observations -> verdicts -> overall decision
    report/*         -> terminal, markdown, json, junit, html renderers
    store            -> SQLite run history

Exceptions (operator mistakes and bugs only; an unhealthy target is a verdict):

    OpsError                  exit code 2
    +-- ConfigError           configuration file problems (file, line, key path)
    +-- StoreError            run store problems
"""

__version__ = "0.1.0"
