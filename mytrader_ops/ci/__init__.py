"""Where pipelines run the gate: GitHub Actions and GitLab CI.

    runner   -> what `validate` itself writes on a GitHub runner (GITHUB_STEP_SUMMARY,
                GITHUB_OUTPUT); no network
    comment  -> the pull-request comment's text (pure): decision, failing checks, the diff
                against the last GO run, and the hidden marker that makes it one per environment
    rest     -> the only HTTP client here (bounded, no redirects, no proxy from the environment)
    github   -> GitHub REST: the self-updating comment, commit and deployment statuses
    gitlab   -> GitLab REST: the self-updating merge-request note, commit status
    action   -> the script of `action.yml` (python -m mytrader_ops.ci.action)

Nothing below (validate, monitor, rollback, probes, report) imports this package.
"""
