"""The form model: moves of a form, fitting, exact-length sampling, files, and plans drawn
under a sampled form."""

import json
from collections import Counter

import numpy as np
import pytest

from structdiff.cli import main
from structdiff.data.plan_constraints import parse_form
from structdiff.metrics.plan_metrics import total_variation
from structdiff.metrics.structure import form_statistics
from structdiff.pipeline.forms import FORMS_FILE, FormModel, StyleForms, form_text, moves_of


def test_moves_of_a_verse_chorus_form():
    form = parse_form("i4 A8 B8 A8 A4 B8 x2 C4 B8 o4")
    assert moves_of(form) == [("i", 4), ("new", 8), ("new", 8), ("back1", 8), ("same", 4),
                              ("back1", 8), ("x", 2), ("new", 4), ("back1", 8), ("o", 4)]
    # lower case spans are interludes; an `i` inside the song is one too
    assert [m for m, _ in moves_of(parse_form("A4 b4 i2 A4"))] == ["new", "x", "x", "same"]


def _model(forms: dict[str, list[str]]) -> FormModel:
    model = FormModel()
    for style, texts in forms.items():
        for text in texts:
            model.add(style, parse_form(text))
    return model


POP = ["i4 A8 B8 A8 B8 o4", "i4 A8 A8 B8 A8 B8 B8 o2", "i2 A4 A4 B8 x2 A4 A4 B8 o4"] * 5
HYMN = ["A2 B2 C2 D2", "A2 B2 A2 C2 D2", "A4 B4 C4"] * 5


@pytest.mark.parametrize("n_bars", [1, 3, 7, 16, 37, 64, 200])
def test_a_sampled_form_has_exactly_the_bars_asked_for(n_bars):
    model = _model({"pop": POP, "hymn": HYMN})
    rng = np.random.default_rng(0)
    for style in ("pop", "hymn", None, "unknown"):
        for _ in range(5):
            form = model.sample(n_bars, style, rng)
            assert sum(s.n_bars for s in form) == n_bars
            assert all(s.n_bars >= 1 for s in form)
            assert [s.start_bar for s in form] == list(
                np.cumsum([0] + [s.n_bars for s in form[:-1]]))


def test_sampled_forms_follow_their_style():
    model = _model({"pop": POP, "hymn": HYMN})
    rng = np.random.default_rng(1)
    pop = [model.sample(44, "pop", rng) for _ in range(300)]
    hymn = [model.sample(10, "hymn", rng) for _ in range(300)]
    assert all(f[0].label == "i" and f[-1].label == "o" for f in pop)
    assert not any(s.label in ("i", "o") for f in hymn for s in f)
    ps, hs = form_statistics(pop), form_statistics(hymn)
    real_pop = form_statistics([parse_form(t) for t in POP])
    assert total_variation(ps["lengths"], real_pop["lengths"]) < 0.1
    assert ps["repeated"] > 0.4 and hs["repeated"] < 0.2
    # labels are letters in first-appearance order, intro and outro aside
    for form in pop[:20]:
        letters = [s.label for s in form if s.label not in ("i", "o", "x")]
        assert letters[0] == "A"
        assert all(ord(b) <= ord(max(letters[:k + 1])) + 1 for k, b in enumerate(letters[1:]))


def test_the_same_generator_gives_the_same_form():
    model = _model({"pop": POP})
    one = [form_text(model.sample(32, "pop", np.random.default_rng(7))) for _ in range(3)]
    assert len(set(one)) == 1
    other = Counter(form_text(model.sample(32, "pop", np.random.default_rng(s)))
                    for s in range(20))
    assert len(other) > 1


def test_a_style_without_forms_draws_from_all_pooled():
    model = _model({"pop": POP})
    rng = np.random.default_rng(0)
    forms = [model.sample(44, "rock", rng) for _ in range(50)]
    assert all(f[0].label == "i" for f in forms)


def test_save_and_load_give_the_same_model(tmp_path):
    model = _model({"pop": POP, "hymn": HYMN})
    path = model.save(tmp_path / FORMS_FILE)
    again = FormModel.load(path)
    assert again.to_dict() == model.to_dict()
    a = [form_text(model.sample(40, "pop", np.random.default_rng(3))) for _ in range(2)]
    b = [form_text(again.sample(40, "pop", np.random.default_rng(3))) for _ in range(2)]
    assert a == b
    (tmp_path / "bad.json").write_text(json.dumps({"kind": "planner"}))
    with pytest.raises(ValueError, match="cannot read the form model"):
        FormModel.load(tmp_path / "bad.json")


def test_train_forms_writes_the_model_of_a_prepared_corpus(tmp_path, capsys):
    from tests.debug_models import tiny_corpus

    prepared = tiny_corpus(tmp_path)
    assert main(["train", "forms", str(prepared), "--out", str(tmp_path / "model")]) == 0
    model = FormModel.load(tmp_path / "model" / FORMS_FILE)
    assert sum(f.songs for f in model.styles.values()) >= 1
    assert "wrote" in capsys.readouterr().out
    assert main(["train", "forms", str(tmp_path / "nothing"), "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("structdiff: error: no prepared corpus") and "\n" not in err
    with pytest.raises(SystemExit) as stop:
        main(["train", "forms", "--out", str(tmp_path)])
    assert stop.value.code == 2
    err = capsys.readouterr().err.strip()
    assert "required: prepared" in err and "\n" not in err


def test_a_planner_with_a_form_model_writes_plans_under_a_drawn_form(tmp_path):
    import shutil

    from structdiff.pipeline.plan import generate_plan, load_planner
    from tests.debug_models import tiny_corpus, train_debug

    folder = train_debug("planner", tiny_corpus(tmp_path), tmp_path)
    without = load_planner(folder)
    assert without.forms is None
    copy = tmp_path / "with_forms"
    shutil.copytree(folder, copy)
    _model({"pop": POP}).save(copy / FORMS_FILE)
    bundle = load_planner(copy)
    style = bundle.styles[0]
    for seed in range(4):
        plan, _ = generate_plan(bundle, n_bars=24, style=style, seed=seed, steps=4)
        drawn = bundle.forms.sample(24, style, np.random.default_rng([seed, 1]))
        assert form_text(plan.sections) == form_text(drawn)
        assert plan.sections[0].label == "i" and plan.sections[-1].label == "o"
    again, _ = generate_plan(bundle, n_bars=24, style=style, seed=2, steps=4)
    first, _ = generate_plan(bundle, n_bars=24, style=style, seed=2, steps=4)
    assert form_text(again.sections) == form_text(first.sections)
    assert again.chords == first.chords
    # a form given by the user is kept as it is
    given, _ = generate_plan(bundle, form="A8 B8 A8", style=style, seed=0, steps=4)
    assert form_text(given.sections) == "A8 B8 A8"
    (copy / FORMS_FILE).write_text("{")
    with pytest.raises(ValueError, match="cannot read the form model"):
        load_planner(copy)


def test_a_form_never_has_more_labels_than_the_planner_holds():
    # a through-composed style: every section new
    model = _model({"mass": ["A4 B4 C4 D4 E4 F4 G4 H4 I4 J4"] * 3})
    rng = np.random.default_rng(0)
    for _ in range(10):
        form = model.sample(200, "mass", rng, max_labels=5)
        assert len({s.label for s in form}) <= 5
        assert sum(s.n_bars for s in form) == 200
    assert len({s.label for s in model.sample(400, "mass", rng)}) <= 26


def test_a_form_continues_from_where_it_stands():
    model = _model({"pop": POP})
    so_far = parse_form("i4 A8 B8 A8 B8")
    rng = np.random.default_rng(0)
    seen_old = seen_new = 0
    for _ in range(30):
        more = model.continue_form(so_far, 24, "pop", rng)
        assert more[0].start_bar == 36 and sum(s.n_bars for s in more) == 24
        assert [s.start_bar for s in more] == list(36 + np.cumsum([0] + [s.n_bars
                                                                       for s in more[:-1]]))
        assert not any(s.label in ("i", "o") for s in more)
        seen_old += sum(s.label in ("A", "B") for s in more)
        seen_new += sum(s.label not in ("A", "B", "x") for s in more)
    assert seen_old > seen_new > 0  # mostly back to the verse and chorus, some new material
    # new labels are the next letters the song does not use yet
    firsts = []
    for seed in range(10):
        more = model.continue_form(parse_form("A4 B4 A4"), 40, "pop",
                                   np.random.default_rng(seed))
        fresh = [s.label for s in more if s.label not in ("A", "B", "x")]
        if fresh:
            firsts.append(fresh[0])
    assert firsts and set(firsts) == {"C"}


def test_section_lengths_follow_the_size_of_the_song():
    # short songs of 4-bar sections and long ones of 32-bar sections, in one style
    model = FormModel()
    for _ in range(30):
        model.add("quartet", parse_form("A4 B4 A4 C4 B4 A4 D4 A4"))
        model.add("quartet", parse_form("A32 B32 C32 A32 D32 B32 E32 A32"))
    rng = np.random.default_rng(0)
    short = [s.n_bars for _ in range(20) for s in model.sample(32, "quartet", rng)]
    long = [s.n_bars for _ in range(20) for s in model.sample(256, "quartet", rng)]
    assert Counter(short).most_common(1)[0][0] == 4 and max(short) <= 8
    assert Counter(long).most_common(1)[0][0] == 32 and np.mean(long) > 24
    # a model file written before sizes were counted still loads and samples
    d = model.to_dict()
    for forms in d["styles"].values():
        del forms["sized"]
    from structdiff.pipeline.forms import StyleForms

    old = FormModel({s: StyleForms.from_dict(f) for s, f in d["styles"].items()})
    assert sum(s.n_bars for s in old.sample(64, "quartet", rng)) == 64


def test_phrase_end_patterns_are_counted_per_section_length_and_drawn_from_them(tmp_path):
    model = FormModel()
    # hymns whose two-bar sections end a phrase on their last bar, four-bar ones on bars 2, 4
    for _ in range(10):
        form = parse_form("A2 B2 C4 A2")
        model.add("hymn", form, phrase_ends=[1, 3, 5, 7, 9])
    model.add("hymn", parse_form("A2 B2"), phrase_ends=[])  # no phrase ends: counts none
    hymn = model.styles["hymn"]
    assert hymn.phrases[2] == Counter({"01": 30}) and hymn.phrases[4] == Counter({"0101": 10})
    rng = np.random.default_rng(0)
    ends = model.phrase_ends(parse_form("A2 B4 A2 C3"), "hymn", rng)
    # no three-bar sections were counted: bars 8-10 are left to the planner
    assert ends == {0: False, 1: True, 2: False, 3: True, 4: False, 5: True, 6: False, 7: True}
    # read back from its file it holds the same patterns
    again = FormModel.load(model.save(tmp_path / FORMS_FILE))
    assert again.to_dict() == model.to_dict() and again.styles["hymn"].phrases == hymn.phrases


def test_a_repeated_section_takes_the_phrase_ends_of_its_first_occurrence():
    model = FormModel()
    model.add("hymn", parse_form("A4 B4"), phrase_ends=[3, 5, 7])  # 0001, 0101
    model.add("hymn", parse_form("A4 B4"), phrase_ends=[1, 3, 7])  # 0101, 0001
    for seed in range(10):
        ends = model.phrase_ends(parse_form("A4 B4 A4 B4"), "hymn", np.random.default_rng(seed))
        pattern = [ends[b] for b in range(16)]
        assert pattern[0:4] == pattern[8:12] and pattern[4:8] == pattern[12:16]


def test_a_form_model_fit_before_phrase_patterns_gives_none():
    model = _model({"pop": POP})
    d = model.to_dict()
    for style in d["styles"].values():
        style.pop("phrases")
    old = FormModel({s: StyleForms.from_dict(f) for s, f in d["styles"].items()})
    assert old.phrase_ends(parse_form("A8 B8"), "pop", np.random.default_rng(0)) == {}


def test_a_planner_writes_its_plan_around_the_phrase_ends_drawn_with_its_form(tmp_path):
    import shutil

    from structdiff.pipeline.plan import extend_plan, generate_plan, load_planner
    from tests.debug_models import tiny_corpus, train_debug

    folder = train_debug("planner", tiny_corpus(tmp_path), tmp_path)
    copy = tmp_path / "with_phrases"
    shutil.copytree(folder, copy)
    model = FormModel()
    for _ in range(5):  # eight-bar sections ending a phrase on bars 4 and 8 (or 8 only)
        model.add("pop", parse_form("A8 B8 A8"), phrase_ends=[3, 7, 15, 19, 23])
    model.save(copy / FORMS_FILE)
    bundle = load_planner(copy)
    style = bundle.styles[0]
    for seed in range(3):
        plan, song = generate_plan(bundle, form="A8 B8 A8", style=style, seed=seed, steps=4)
        drawn = bundle.forms.phrase_ends(plan.sections, style, np.random.default_rng([seed, 2]))
        assert plan.phrase_ends == [b for b, end in sorted(drawn.items()) if end]
        assert set(plan.phrase_ends) >= {7, 15, 23}
    # a continuation's new sections get theirs too, the song's own stay
    longer, _ = extend_plan(bundle, song, plan, 16, style=style, seed=1, steps=4)
    assert [b for b in longer.phrase_ends if b < 24] == plan.phrase_ends
    new = [s for s in longer.sections if s.start_bar >= 24]
    assert all(s.start_bar + s.n_bars - 1 in longer.phrase_ends for s in new if s.n_bars == 8)


def test_final_chords_are_counted_per_mode_and_drawn_as_often_as_songs_end_on_them(tmp_path):
    model = FormModel()
    for k in range(20):  # minor hymns end on a major tonic (a Picardy third) or the dominant
        model.add("hymn", parse_form("A4"), final=("minor", 0, "maj", 0) if k % 4
                  else ("minor", 7, "maj", 7))
    model.add("hymn", parse_form("A4"), final=("major", 12, "maj", 16))  # read modulo 12
    assert model.styles["hymn"].finals["major"] == Counter({"0 maj 4": 1})
    rng = np.random.default_rng(0)
    drawn = Counter(model.final_chord("hymn", "minor", rng) for _ in range(400))
    assert set(drawn) == {(0, "maj", 0), (7, "maj", 7)}
    assert 0.68 < drawn[(0, "maj", 0)] / 400 < 0.82
    assert FormModel.load(model.save(tmp_path / FORMS_FILE)).to_dict() == model.to_dict()
    assert _model({"pop": POP}).final_chord("pop", "major", rng) is None  # none counted


def test_a_planned_song_ends_on_the_final_chord_drawn_for_it(tmp_path):
    import shutil

    from structdiff.pipeline.plan import generate_plan, load_planner
    from tests.debug_models import tiny_corpus, train_debug

    folder = train_debug("planner", tiny_corpus(tmp_path), tmp_path)
    copy = tmp_path / "with_finals"
    shutil.copytree(folder, copy)
    style = load_planner(folder).styles[0]
    model = _model({style: POP})
    for mode in ("major", "minor"):
        model.add(style, parse_form("A8"), final=(mode, 5, "dom7", 9))  # IV7/vi: unlikely
    model.save(copy / FORMS_FILE)
    bundle = load_planner(copy)
    for seed in range(3):
        plan, _ = generate_plan(bundle, 8, style=style, key="D", seed=seed, steps=4)
        last = plan.chords[-1]
        assert (last.root, last.quality, last.bass) == (7, "dom7", 11)  # G7/B in D
    # a chord chart that reaches the last bar keeps its own last chord
    plan, _ = generate_plan(bundle, 2, style=style, key="D", chords="D | A", seed=0, steps=4)
    assert (plan.chords[-1].root, plan.chords[-1].quality) == (9, "maj")


def test_song_lengths_are_counted_per_style_and_drawn_as_often_as_songs_have_them(tmp_path):
    model = _model({"pop": POP, "hymn": HYMN})
    assert model.styles["hymn"].song_bars == Counter({8: 5, 10: 5, 12: 5})
    rng = np.random.default_rng(0)
    drawn = Counter(model.song_length("hymn", rng) for _ in range(600))
    assert set(drawn) == {8, 10, 12} and all(150 < n < 250 for n in drawn.values())
    assert set(Counter(model.song_length("pop", rng) for _ in range(50))) == {40, 54}
    assert FormModel.load(model.save(tmp_path / FORMS_FILE)).to_dict() == model.to_dict()
    long = _model({"quartet": ["A200 B200"]})
    assert long.song_length("quartet", rng) == 128  # at most MAX_DRAWN_BARS
    old = model.to_dict()  # a file fit before song lengths were counted draws none
    for forms in old["styles"].values():
        del forms["song_bars"]
    path = tmp_path / "old.json"
    path.write_text(json.dumps(old))
    assert FormModel.load(path).song_length("hymn", rng) is None


def test_a_chorale_without_bars_is_as_long_as_bachs(tmp_path):
    """The shipped classical set: `plan --style chorale` without --bars or --form writes
    chorales of the lengths the training chorales have (median 17), not 32 bars."""
    lengths = []
    for seed in range(8):
        out = tmp_path / f"p{seed}.json"
        assert main(["plan", "--style", "chorale", "--seed", str(seed), "--out", str(out)]) == 0
        lengths.append(json.loads(out.read_text())["n_bars"])
    assert all(8 <= n <= 69 for n in lengths) and len(set(lengths)) > 2
    assert 12 <= float(np.median(lengths)) <= 24
