"""Rollback: pure plans (`plan`), step runners (`execute`), the audit log and the lock.

Modules: `template` and `model` (the plan file), `plan` (pure resolution and dry-run text),
`execute` (runs steps with process-group timeouts), `audit` (append-only fsynced JSON
lines), `lock` (one rollback per environment), `verify` (re-run validate), `service`
(the whole rollback as the CLI runs it), `errors`.
"""
