"""Profiles of the warmed-up tiny model, computed once for the owner tests."""

import pytest

from blockzero.model.loading import build_model
from blockzero.owner.profile import ExpertProfile, profile_domains

PROFILE_SEQUENCES = 48


@pytest.fixture(scope="session")
def profiles(tiny_config, warm_state, corpora) -> dict[str, ExpertProfile]:
    """Per-domain profiles plus `general` (their mixture) of the session's warm model."""
    model = build_model(tiny_config, seed=0)
    model.load_state_dict(warm_state)
    return profile_domains(model, corpora, num_sequences=PROFILE_SEQUENCES, batch_size=16)
