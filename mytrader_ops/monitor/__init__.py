"""`mytrader-ops monitor`: watch a fresh deployment window by window; fire typed triggers.

Layout (pure modules touch no network, no disk):

    settings   -> durations, trigger/sink/rollback settings (strict YAML, frozen)   [pure]
    windows    -> WindowSummary, trend and leak detection, stream gaps              [pure]
    rules      -> trigger readings and states (ok/pending/firing/no-data), checks    [pure]
    promvalues -> numeric values out of a Prometheus exposition                      [pure]
    collect    -> one window of I/O: open-model sampler + probes + /metrics scrape
    stream     -> the persistent market-data hub session whose gaps are timed
    store      -> SQLite checkpoint per window; --resume continues the same watch
    loop       -> the watch: windows on a fixed schedule, evaluation, sinks, checkpoint
    verdicts   -> the final report in validate's model (md/json/junit/html)
    dashboard  -> rich live view; plain lines without a terminal
    sinks      -> webhook (Slack-compatible JSON) and command (argv) alerts
    pages      -> paging rules: one page per trigger per watch, resolve, update     [pure]
    pagers     -> each paging service's documented payload (Alertmanager, PagerDuty,
                  Opsgenie, Slack Block Kit)                                          [pure]
    delivery   -> background delivery per sink: ordered, bounded, retried with backoff
    paging     -> the watch's pager (an observer), the audit records, the report check
    exporter   -> optional Prometheus endpoint for the monitor's own figures

Exceptions: usage and configuration problems are `mytrader_ops.errors.OpsError` (exit 2);
an unhealthy target is never an exception, it is a reading.
"""
