"""The planner's progression lean (`plan.progression_bias`, a bundle's
`sampling.styles.STYLE.progression_lean`): nats for a chord slot's root given its neighbours'
roots, with known answers, and its effect on the plans the shipped planner writes."""

import copy

import numpy as np
import pytest
import torch

from structdiff.data.plan_tensor import (
    MAX_SLOTS,
    N_FEATURES,
    N_QUALITIES,
    SLOT_FEATURES,
    SLOT_OFFSET,
    PlanGrid,
    encode_plan,
)
from structdiff.pipeline.plan import (
    generate_plan,
    load_planner,
    progression_bias,
    progression_table,
)

pytestmark = pytest.mark.usefixtures("one_thread")


def root_logits(roots_by_slot: dict[tuple[int, int], int], n_bars: int = 2) -> torch.Tensor:
    x = torch.zeros(1, n_bars, N_FEATURES)
    for (bar, slot), root in roots_by_slot.items():
        x[0, bar, SLOT_OFFSET + slot * SLOT_FEATURES + root] = 5.0
    return x


def test_each_used_slot_leans_on_its_neighbours_roots():
    table = torch.arange(144, dtype=torch.float32).reshape(12, 12) / 100
    # used slots in time order: (0, 0) on C (0), (0, 2) on G (7), (1, 0) on C
    order = torch.tensor([0 * MAX_SLOTS + 0, 0 * MAX_SLOTS + 2, 1 * MAX_SLOTS + 0])
    logits = root_logits({(0, 0): 0, (0, 2): 7, (1, 0): 0})
    bias = progression_bias(logits, order, table)
    roots = bias[0, :, SLOT_OFFSET:].reshape(2, MAX_SLOTS, SLOT_FEATURES)[..., :12]
    assert torch.allclose(roots[0, 0], table[:, 7])  # first: leaving to G only
    assert torch.allclose(roots[0, 2], table[0] + table[:, 0])  # entering from C, leaving to C
    assert torch.allclose(roots[1, 0], table[7])  # last: entering from G only
    assert torch.count_nonzero(roots[0, 1]) == 0  # an unused slot
    slots = bias[0, :, SLOT_OFFSET:].reshape(2, MAX_SLOTS, SLOT_FEATURES)
    assert torch.count_nonzero(slots[..., 12:]) == 0  # qualities and basses untouched
    assert torch.count_nonzero(bias[0, :, :SLOT_OFFSET]) == 0  # form groups untouched


def test_each_used_slot_leans_on_the_qualities_of_its_own_root():
    qualities = torch.arange(12 * N_QUALITIES, dtype=torch.float32).reshape(12, N_QUALITIES)
    order = torch.tensor([0, 2])
    logits = root_logits({(0, 0): 5, (0, 2): 7}, n_bars=1)
    bias = progression_bias(logits, order, None, qualities)
    slots = bias[0, :, SLOT_OFFSET:].reshape(1, MAX_SLOTS, SLOT_FEATURES)
    assert torch.equal(slots[0, 0, 12 : 12 + N_QUALITIES], qualities[5])
    assert torch.equal(slots[0, 2, 12 : 12 + N_QUALITIES], qualities[7])
    assert torch.count_nonzero(slots[..., :12]) == 0  # no root table: roots untouched
    assert torch.count_nonzero(slots[0, 1]) == 0


def test_the_table_is_scaled_checked_or_absent():
    lean = np.eye(12).tolist()
    assert progression_table(None) is None and progression_table(lean, 0.0) is None
    assert torch.equal(progression_table(lean, 2.0), 2 * torch.eye(12))
    assert torch.equal(progression_table(lean), torch.eye(12))
    with pytest.raises(ValueError, match="12 x 12"):
        progression_table([[0.0] * 12] * 11)
    with pytest.raises(ValueError, match="0..4"):
        progression_table(lean, 5.0)
    assert progression_table([[0.0] * N_QUALITIES] * 12, 1.0, (12, N_QUALITIES)).shape == (
        12, N_QUALITIES)


def test_a_lean_by_mode_gives_each_mode_its_table():
    lean = {"major": np.eye(12).tolist(), "minor": (2 * np.eye(12)).tolist()}
    assert torch.equal(progression_table(lean, mode="minor"), 2 * torch.eye(12))
    assert torch.equal(progression_table(lean, 0.5, mode="major"), 0.5 * torch.eye(12))
    assert progression_table({"major": np.eye(12).tolist()}, mode="minor") is None


def slot_roots(plan, song):
    grid = PlanGrid.from_song(song)
    x = encode_plan(plan, grid).x
    bar_idx, slot_idx, _ = grid.flat_slots()
    slots = x[:, SLOT_OFFSET:].reshape(len(x), MAX_SLOTS, SLOT_FEATURES)[bar_idx, slot_idx]
    return slots[:, :12].argmax(1)


def test_a_lean_on_holding_the_root_makes_the_planner_change_chords_less():
    planner = load_planner()
    held = copy.deepcopy(planner)
    held.meta.setdefault("sampling", {}).setdefault("styles", {}).setdefault("chorale", {})[
        "progression_lean"] = (3 * np.eye(12) - 1).tolist()
    changes = {}
    for name, bundle in (("none", planner), ("held", held)):
        roots = [slot_roots(*generate_plan(bundle, 8, style="chorale", seed=s,
                                           progression_scale=0 if name == "none" else None))
                 for s in range(3)]
        changes[name] = np.mean([np.mean(r[1:] != r[:-1]) for r in roots])
    assert changes["held"] < changes["none"] - 0.15
    # scale 0 is the planner alone, whatever lean its bundle has
    a, _ = generate_plan(planner, 8, style="chorale", seed=4, progression_scale=0)
    b, _ = generate_plan(held, 8, style="chorale", seed=4, progression_scale=0)
    assert a == b
