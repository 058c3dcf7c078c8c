"""Local stores: the side-effect ledger and large-payload storage."""
