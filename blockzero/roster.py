"""Who mines in a cycle and in which group (docs/cycle.md): one computation that miners,
validators and the explorer all call, so they cannot round stake or pick miners differently.

The chain port gives only the current metagraph, so a neuron registered or restaked during the
cycle can shift the assignment relative to the one miners saw at the cycle's first block; a
`metagraph(at_block)` on the port would close that gap.
"""

from blockzero.chain.port import Chain, Neuron
from blockzero.protocol.assignment import (
    RAO_PER_ALPHA,
    MinerRule,
    NeuronInfo,
    assign_groups,
    select_miners,
)
from blockzero.protocol.cycle import CycleSchedule
from blockzero.protocol.seeds import SeedPurpose, assignment_block, derive_seed


def neuron_info(n: Neuron) -> NeuronInfo:
    """The assignment's view of a metagraph row: stake in rao, rounded the same everywhere."""
    return NeuronInfo(
        uid=n.uid,
        hotkey=n.hotkey,
        validator_permit=n.validator_permit,
        stake_rao=round(n.stake * RAO_PER_ALPHA),
    )


def assignment(
    chain: Chain, schedule: CycleSchedule, rule: MinerRule, group_ids: list[int], cycle: int
) -> tuple[dict[str, int], dict[str, int]]:
    """Each miner's group, and each hotkey's uid."""
    neurons = chain.metagraph().neurons
    infos = [neuron_info(n) for n in neurons]
    block_hash = chain.block_hash(assignment_block(schedule, cycle))
    seed = derive_seed(block_hash, SeedPurpose.ASSIGNMENT)
    groups = assign_groups(select_miners(infos, rule), group_ids, seed)
    return groups, {n.hotkey: n.uid for n in neurons}
