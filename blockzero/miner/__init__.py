"""The miner: each cycle, train the assigned expert group of the global model and submit its
pseudo-gradient through commit-reveal. `Miner` (loop.py) is the entry; docs/miner.md the guide."""
