"""Authentication: argon2id password hashes and short-lived JWT bearer tokens."""
