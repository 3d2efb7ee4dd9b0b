"""HTTP routers. Thin: parse, call the service, shape the response."""
