import numpy as np
import pytest

from structdiff.analysis import analyze
from structdiff.analysis.chords import QUALITIES, segment_bounds
from structdiff.data.io import read_song
from structdiff.data.plan_tensor import (
    CONDITION_NAMES,
    MAX_LABELS,
    MAX_SLOTS,
    N_FEATURES,
    PLAN_LAYOUT,
    SLOT_FEATURES,
    SLOT_OFFSET,
    PlanGrid,
    decode_plan,
    encode_plan,
    encode_song_plan,
    group_index,
    group_slices,
    one_hot,
    plan_condition,
    uniform_grid,
)
from structdiff.data.song import Chord, Key, Plan, Section, Song, TimeSignature, bar_grid

_SONGS: dict[str, tuple[Song, Plan]] = {}


def analyzed(ref: str) -> tuple[Song, Plan]:
    """Each corpus song is read and analyzed once per test session."""
    if ref not in _SONGS:
        song = read_song(ref)
        _SONGS[ref] = (song, analyze(song))
    return _SONGS[ref]


def assert_one_hot(x: np.ndarray) -> None:
    assert x.dtype == np.float32 and x.shape[1] == N_FEATURES
    assert set(np.unique(x).tolist()) <= {0.0, 1.0}
    for g in PLAN_LAYOUT:
        assert np.all(x[:, g.slice].sum(axis=1) == 1), g.name


def test_layout_is_contiguous_and_sized_as_documented():
    sizes = {g.name: g.size for g in PLAN_LAYOUT}
    assert sizes["label"] == MAX_LABELS + 2 and sizes["section_start"] == sizes["phrase_end"] == 2
    for s in range(MAX_SLOTS):
        assert (sizes[f"root{s}"], sizes[f"quality{s}"], sizes[f"bass{s}"]) == (12, 11, 12)
    assert len(PLAN_LAYOUT) == 3 + 3 * MAX_SLOTS
    assert N_FEATURES == MAX_LABELS + 2 + 2 + 2 + MAX_SLOTS * 35 == 312
    ends = [g.offset + g.size for g in PLAN_LAYOUT]
    assert [g.offset for g in PLAN_LAYOUT] == [0] + ends[:-1] and ends[-1] == N_FEATURES
    slices = group_slices()
    assert list(slices) == [g.name for g in PLAN_LAYOUT] and slices["quality0"] == slice(44, 55)
    gi = group_index()
    assert gi.shape == (N_FEATURES,) and gi[slices["bass7"]].tolist() == [len(PLAN_LAYOUT) - 1] * 12


@pytest.mark.parametrize(
    "ref",
    [
        "music21:bach/bwv66.6",  # 4/4 with a one-beat pickup
        "music21:bach/bwv10.7",
        "music21:haydn/opus74no1/movement3",  # 3/4, 20 section labels
        "music21:monteverdi/madrigal.3.1",
        "music21:beethoven/opus18no1",  # 313 bars
    ],
)
def test_analyzed_plans_of_real_songs_come_back_exactly(ref):
    song, plan = analyzed(ref)
    grid = PlanGrid.from_song(song)
    # the slots are the beats chord analysis chose its chords on
    assert np.array_equal(grid.flat_slots()[2], segment_bounds(song)[0])
    tensor = encode_song_plan(song, plan)
    assert tensor.x.shape == (song.n_bars, N_FEATURES)
    assert_one_hot(tensor.x)
    decoded = decode_plan(tensor.x, tensor.grid, tensor.key)
    assert decoded.chords == plan.chords
    assert decoded.sections == plan.sections
    assert decoded.phrase_ends == plan.phrase_ends
    assert decoded.key == plan.key


def test_pickup_bar_uses_the_beats_counted_from_its_end():
    song, plan = analyzed("music21:bach/bwv66.6")
    grid = PlanGrid.from_song(song)
    assert grid.bar_ends[0] - grid.bars[0] == 4  # one beat of 4/4
    assert grid.n_beats[:3].tolist() == [1, 4, 4]
    cond = plan_condition(grid)
    assert cond.shape == (song.n_bars, len(CONDITION_NAMES)) and cond.dtype == np.float32
    partial = cond[:, CONDITION_NAMES.index("partial")]
    assert partial[0] == 1 and partial[1] == 0
    # the hypermeter starts on the first full bar
    assert cond[1, CONDITION_NAMES.index("hyper4_sin")] == 0
    assert cond[1, CONDITION_NAMES.index("hyper4_cos")] == 1


def synthetic_plan(grid: PlanGrid, key: Key, seed: int = 0) -> Plan:
    """A plan with a chord change on random beats, sections of 2-8 bars with repeated labels
    and i/o, and phrase ends."""
    rng = np.random.default_rng(seed)
    _, _, bounds = grid.flat_slots()
    chords: list[Chord] = []
    for k in range(len(bounds) - 1):
        if chords and rng.random() < 0.4:
            last = chords[-1]
            chords[-1] = Chord(last.onset, last.duration + int(bounds[k + 1] - bounds[k]),
                               last.root, last.quality, last.bass)
            continue
        while True:
            quality = str(rng.choice(QUALITIES))
            root = 0 if quality == "N" else int(rng.integers(12))
            bass = 0 if quality == "N" else int(rng.choice([root, rng.integers(12)]))
            if not chords or (chords[-1].root, chords[-1].quality, chords[-1].bass) != (
                root, quality, bass
            ):
                break
        chords.append(Chord(int(bounds[k]), int(bounds[k + 1] - bounds[k]), root, quality, bass))
    sections, start, letters = [Section(0, 4, "i")], 4, "ABCDEFGH"
    while start < grid.n_bars - 4:
        n = min(int(rng.integers(2, 9)), grid.n_bars - 4 - start)
        sections.append(Section(start, n, letters[min(len(sections) - 1, int(rng.integers(8)))]))
        start += n
    sections.append(Section(start, grid.n_bars - start, "o"))
    # first appearance order, as analysis and decoding name them
    order = {}
    for s in sections:
        if s.label not in ("i", "o") and s.label not in order:
            order[s.label] = "ABCDEFGH"[len(order)]
    sections = [Section(s.start_bar, s.n_bars, order.get(s.label, s.label)) for s in sections]
    phrase_ends = sorted(rng.choice(grid.n_bars, size=grid.n_bars // 4, replace=False).tolist())
    return Plan(key=key, chords=chords, sections=sections, phrase_ends=phrase_ends)


@pytest.mark.parametrize("meter", [(4, 4), (3, 4), (6, 8), (5, 4)])
def test_synthetic_256_bar_plans_come_back_exactly(meter):
    grid = uniform_grid(256, *meter)
    key = Key(3, "minor")
    plan = synthetic_plan(grid, key, seed=meter[0])
    assert any(s.label == "A" and s.start_bar > 4 for s in plan.sections[2:])  # a repeat
    tensor = encode_plan(plan, grid)
    assert_one_hot(tensor.x)
    assert tensor.key == key
    decoded = decode_plan(tensor.x, grid, key)
    assert decoded.chords == plan.chords
    assert decoded.sections == plan.sections
    assert decoded.phrase_ends == plan.phrase_ends


def test_chords_are_stored_relative_to_the_key():
    grid = uniform_grid(1, 2, 4)
    plan = Plan(chords=[Chord(0, 4, 7, "dom7", 11), Chord(4, 4, 0, "maj", 0)])
    x = encode_plan(plan, grid, Key(7, "major")).x
    s = group_slices()
    assert x[0, s["root0"]].argmax() == 0 and x[0, s["bass0"]].argmax() == 4
    assert x[0, s["root1"]].argmax() == 5 and QUALITIES[x[0, s["quality0"]].argmax()] == "dom7"
    # the same features in another key are the transposed chords
    moved = decode_plan(x, grid, Key(2, "major")).chords
    assert moved == [Chord(0, 4, 2, "dom7", 6), Chord(4, 4, 7, "maj", 7)]


@pytest.mark.parametrize("meter,beats", [((4, 4), 4), ((3, 4), 3), ((6, 8), 2), ((12, 8), 4)])
def test_unused_slots_are_n_with_root_and_bass_zero_and_marked(meter, beats):
    grid = uniform_grid(2, *meter)
    plan = Plan(chords=[Chord(0, grid.end, 4, "min", 4)], sections=[Section(0, 2, "A")])
    tensor = encode_plan(plan, grid, Key(0, "major"))
    assert tensor.slot_valid.shape == (2, MAX_SLOTS)
    assert tensor.slot_valid.sum(axis=1).tolist() == [beats, beats]
    s = group_slices()
    for slot in range(MAX_SLOTS):
        quality = QUALITIES[int(tensor.x[0, s[f"quality{slot}"]].argmax())]
        root, bass = tensor.x[0, s[f"root{slot}"]].argmax(), tensor.x[0, s[f"bass{slot}"]].argmax()
        assert (root, quality, bass) == ((4, "min", 4) if slot < beats else (0, "N", 0))
    # whatever a sampler writes into unused slots is ignored
    noisy = tensor.x.copy()
    for slot in range(beats, MAX_SLOTS):
        noisy[:, s[f"quality{slot}"]] = np.eye(11)[0]
        noisy[:, s[f"root{slot}"]] = np.eye(12)[5]
    assert decode_plan(noisy, grid, Key(0, "major")).chords == plan.chords


def test_a_bar_of_more_beats_than_slots_groups_them():
    grid = uniform_grid(1, 12, 4)
    assert grid.n_beats.tolist() == [MAX_SLOTS]
    assert grid.slot_starts[0].tolist() == [0, 4, 12, 16, 24, 28, 36, 40]


def test_off_grid_chord_snaps_to_the_slot_containing_its_onset():
    grid = uniform_grid(2)  # beats every 4 steps
    plan = Plan(chords=[Chord(0, 6, 0, "maj", 0), Chord(6, 4, 7, "maj", 7),
                        Chord(10, 1, 2, "min", 2), Chord(11, 13, 5, "maj", 5)])
    decoded = decode_plan(encode_plan(plan, grid).x, grid, None)
    # G begins in beat 2 and takes it; Dm and F begin in beat 3: the later one takes it
    assert decoded.chords == [Chord(0, 4, 0, "maj", 0), Chord(4, 4, 7, "maj", 7),
                              Chord(8, 16, 5, "maj", 5), Chord(24, 8, 0, "N", 0)]


def test_beats_no_chord_covers_are_n():
    grid = uniform_grid(1)
    plan = Plan(chords=[Chord(4, 4, 9, "min", 9)])
    assert decode_plan(encode_plan(plan, grid).x, grid, None).chords == [
        Chord(0, 4, 0, "N", 0), Chord(4, 4, 9, "min", 9), Chord(8, 8, 0, "N", 0)
    ]


def test_labels_are_numbered_by_first_appearance_and_i_o_are_kept():
    grid = uniform_grid(20)
    plan = Plan(sections=[Section(0, 2, "i"), Section(2, 4, "B"), Section(6, 4, "A"),
                          Section(10, 4, "B"), Section(14, 4, "B"), Section(18, 2, "o")])
    x = encode_plan(plan, grid).x
    labels = x[:, group_slices()["label"]].argmax(axis=1)
    assert labels[[0, 2, 6, 10, 18]].tolist() == [MAX_LABELS, 0, 1, 0, MAX_LABELS + 1]
    assert decode_plan(x, grid, None).form == "i2 A4 B4 A4 A4 o2"
    assert decode_plan(x, grid, None, label_names=["B", "A"]).form == "i2 B4 A4 B4 B4 o2"


def test_labels_beyond_max_labels_share_the_last_class_and_keep_their_starts():
    n = MAX_LABELS + 4
    grid = uniform_grid(2 * n)
    names = [f"{chr(65 + k % 26)}{'' if k < 26 else 'A'}" for k in range(n)]
    plan = Plan(sections=[Section(2 * k, 2, names[k]) for k in range(n)])
    decoded = decode_plan(encode_plan(plan, grid).x, grid, None).sections
    assert [s.start_bar for s in decoded] == [2 * k for k in range(n)]
    assert [s.label for s in decoded[:MAX_LABELS]] == names[:MAX_LABELS]
    assert {s.label for s in decoded[MAX_LABELS - 1:]} == {names[MAX_LABELS - 1]}


def test_decoding_logits_gives_a_plan_covering_the_song():
    grid = PlanGrid.from_song(
        Song([], bar_grid([TimeSignature(0, 3, 4), TimeSignature(24, 4, 4)], 88, 4, pickup=4),
             88, [TimeSignature(0, 3, 4), TimeSignature(24, 4, 4)])
    )
    assert grid.n_beats.tolist() == [1, 3, 2, 4, 4, 4, 4]  # pickup, 3/4, a cut bar, 4/4
    logits = np.random.default_rng(0).normal(size=(grid.n_bars, N_FEATURES))
    plan = decode_plan(logits, grid, Key(5, "major"))
    assert plan.chords[0].onset == 0
    assert all(a.onset + a.duration == b.onset for a, b in zip(plan.chords, plan.chords[1:]))
    assert plan.chords[-1].onset + plan.chords[-1].duration == grid.end == 88
    assert sum(s.n_bars for s in plan.sections) == grid.n_bars
    assert plan.sections[0].label in ("A", "i", "o")


def test_bad_arguments_are_named():
    grid = uniform_grid(4)
    with pytest.raises(ValueError, match=r"x must be \[L=4, N_FEATURES=312\], got \[3, 312\]"):
        decode_plan(np.zeros((3, N_FEATURES)), grid, None)
    with pytest.raises(ValueError, match="bars must be >= 1, got 0"):
        uniform_grid(0)
    with pytest.raises(ValueError, match="bad meter 4/3"):
        uniform_grid(4, 4, 3)
    with pytest.raises(ValueError, match="beats must start at the bar start"):
        PlanGrid.from_beats([0, 16], [16, 32], [[0, 4], [20]])
    with pytest.raises(ValueError, match="label must be letters"):
        encode_plan(Plan(sections=[Section(0, 4, "A1")]), grid)
    with pytest.raises(ValueError, match="has no plan"):
        encode_song_plan(Song([], np.array([0]), 16))
    with pytest.raises(ValueError, match=r"label: expected 4 classes in \[0, 28\)"):
        one_hot({"label": np.array([0, 1, 2, 28])}, 4)


def test_flickering_labels_inside_a_section_take_its_majority():
    from structdiff.data.plan_tensor import PLAN_LAYOUT, decode_plan, one_hot, uniform_grid

    grid = uniform_grid(6)
    labels = np.array([0, 1, 0, 0, 1, 1])  # a sampled plan: bar 1's label disagrees
    starts = np.array([1, 0, 0, 1, 0, 0])
    x = one_hot({"label": labels, "section_start": starts}, 6)
    for g in PLAN_LAYOUT[2:]:
        x[:, g.offset] = 1
    plan = decode_plan(x, grid, None)
    assert [(s.start_bar, s.n_bars, s.label) for s in plan.sections] == [(0, 3, "A"),
                                                                         (3, 3, "B")]


def _slot_values(root: dict, quality: dict, bass: dict) -> np.ndarray:
    """One slot's sampled values (2p - 1) from probabilities by class; the rest share what
    is left of each group."""
    out = []
    for probs, n in ((root, 12), (quality, len(QUALITIES)), (bass, 12)):
        p = np.full(n, (1 - sum(probs.values())) / max(n - len(probs), 1))
        for k, v in probs.items():
            p[k] = v
        out.append(2 * p - 1)
    return np.concatenate(out).astype(np.float32)


def test_a_sampled_slot_whose_bass_is_no_chord_tone_is_decoded_jointly():
    maj, mn = QUALITIES.index("maj"), QUALITIES.index("min")
    grid = uniform_grid(1, 4, 4)
    x = encode_plan(Plan(Key(0, "major"), [Chord(0, 16, 0, "maj", 0)], [Section(0, 1, "A")], []),
                    grid, Key(0, "major")).x * 2 - 1
    slots = x[:, SLOT_OFFSET:].reshape(1, MAX_SLOTS, SLOT_FEATURES)
    # beat 1: C major over D (argmax per group); D major over D is the likeliest chord with
    # a chord tone in the bass (0.4 * 0.6 * 0.7 against C over E's 0.5 * 0.6 * 0.2)
    slots[0, 0] = _slot_values({0: 0.5, 2: 0.4}, {maj: 0.6, mn: 0.4}, {2: 0.7, 4: 0.2})
    # beat 2: C major over D again, but C major over E is the likeliest chord with a chord tone
    slots[0, 1] = _slot_values({0: 0.9}, {maj: 0.9}, {2: 0.5, 4: 0.4})
    # beat 3: C major over G, already a chord tone
    slots[0, 2] = _slot_values({0: 0.9}, {maj: 0.9}, {7: 0.9})
    x[:, SLOT_OFFSET:] = slots.reshape(1, -1)
    chords = lambda plan: [(c.root, c.quality, c.bass) for c in plan.chords]  # noqa: E731
    free = np.ones((1, MAX_SLOTS), dtype=bool)
    jointly = decode_plan(x, grid, Key(0, "major"), bass_free=free)
    assert chords(jointly)[:3] == [(2, "maj", 2), (0, "maj", 4), (0, "maj", 7)]
    # per group, as analyzed plans are read back, and where a slot was given
    assert chords(decode_plan(x, grid, Key(0, "major")))[0] == (0, "maj", 2)
    free[0, 0] = False
    assert chords(decode_plan(x, grid, Key(0, "major"), bass_free=free))[0] == (0, "maj", 2)
