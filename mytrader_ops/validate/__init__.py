"""`mytrader-ops validate`: plan, execution, judgement and the go/no-go decision.

    plan      configuration + CLI options -> a frozen RunPlan
    runner    executes a plan: functional probes, then the SLA phase (`sla`)
    sla       the sampled criteria: HTTP and hub latency, error rate, connection success
    evaluate  pure judges: an observation or sampled evidence -> a Verdict
    decision  pure rules: scope, known issues, the overall decision

What the three commands share lies beside this package: `probes/` (all network I/O, the
open-model sampler included), `report/`, `config` (the checks' vocabulary), `stats`,
`verdict`, `redaction`. The import contracts in pyproject.toml ([tool.importlinter]) keep
the arrows pointing down.
"""
