"""A read-only view of a subnet for operators: metagraph, weights, Proof-of-Loss evidence, loss.

`snapshot` gathers everything from the chain and the hub into one pydantic `ExplorerSnapshot`,
`page` renders it as one self-contained HTML page (no scripts or assets from elsewhere), and
`server` serves both on localhost. It reads the same ports every role uses, so the local net and
a real netuid look the same.
"""
