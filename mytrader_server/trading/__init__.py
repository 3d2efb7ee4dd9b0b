"""Paper trading: the order state machine, order placement and fills, the account and positions."""
