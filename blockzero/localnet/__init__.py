"""`blockzero localnet`: a whole subnet on one machine (docs/localnet.md).

`config` what a run is, `setup` the work dir, `processes` the nodes as OS processes, `monitor`
the live view, `evaluate` the loss curve, `report` the files left at the end, `run` all of it.
"""
