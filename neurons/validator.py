"""BlockZero validator neuron (Bittensor convention): `python neurons/validator.py --netuid N ...`.

The same as `blockzero validator`; see docs/validator.md."""

from blockzero.cli.validator import app

if __name__ == "__main__":
    app()
