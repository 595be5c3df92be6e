"""BlockZero: expert-parallel training of a Mixture-of-Experts model on a Bittensor subnet."""

__version__ = "0.1.0"
