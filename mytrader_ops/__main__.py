"""`python -m mytrader_ops` runs the CLI."""

from mytrader_ops.cli import main

main()
