"""`mytrader-ops serve`: the gate as a small HTTP service for rollout controllers.

settings -> the service's own config file (suites, token, concurrency, deadline, store)
gate     -> one gate request: environment and suite looked up in that config only, a
            validate run in its own thread and event loop, bounded by a semaphore, a
            queue limit and a deadline; the JSON answer and its status code
app      -> HTTP (Starlette on uvicorn): POST /gate (Flagger webhooks), GET /gate (Argo
            Rollouts' web metric provider), GET /healthz; bearer token; body limit
command  -> the CLI command (thin)
"""
