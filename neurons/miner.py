"""BlockZero miner neuron (Bittensor convention): `python neurons/miner.py --netuid N ...`.

The same as `blockzero miner`; see docs/miner.md."""

from blockzero.cli.miner import app

if __name__ == "__main__":
    app()
