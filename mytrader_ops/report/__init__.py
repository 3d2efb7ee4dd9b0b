"""Report model and renderers (terminal, markdown, json, junit, html)."""
