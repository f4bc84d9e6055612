"""The reduced drum kit: General MIDI percussion keys folded into eight drum classes.

Drums are learned and measured on this kit, not on the 47 GM percussion keys: corpora spell
the same instrument with different keys (a snare is 38 or 40, a closed hi-hat 42 or the pedal
44), and a model that must choose between near-synonyms wastes capacity. A class is written
back as one GM key (`CLASS_NOTES`), on channel 10.

Class of each key (`drum_class`):

- kick: 35 acoustic bass drum, 36 bass drum;
- snare: 37 side stick, 38 and 40 snares, 39 hand clap (the clap plays the backbeat in pop
  and dance grooves; counting it as snare keeps snare hits per bar comparable across styles);
- closed_hat: 42 closed, 44 pedal hi-hat, and 22 (the Groove MIDI Dataset's closed edge);
- open_hat: 46 open hi-hat, and 26 (Groove's open edge);
- tom: 41, 43, 45, 47, 48, 50, and 58 (Groove's floor-tom rim; GM's vibraslap otherwise,
  rare enough that the Groove reading wins);
- crash: 49 and 57 crash, 52 Chinese, 55 splash;
- ride: 51 and 59 ride, 53 ride bell;
- perc: every other key (tambourine, cowbell, congas, shakers, ...).

Tom written back as 45 (low tom): one class cannot keep a fill's pitch contour, and the
middle tom sounds least out of place on every kit.
"""

from __future__ import annotations

import numpy as np

DRUM_CLASSES = ("kick", "snare", "closed_hat", "open_hat", "tom", "crash", "ride", "perc")
KICK, SNARE, CLOSED_HAT, OPEN_HAT, TOM, CRASH, RIDE, PERC = range(len(DRUM_CLASSES))

# The GM key each class is written back as, indexed by class.
CLASS_NOTES = (36, 38, 42, 46, 45, 49, 51, 54)  # ... perc: 54 tambourine

# Hi-hat in any state, for metrics that count "hi-hat hits" (closed, open and pedal).
HIHAT_CLASSES = (CLOSED_HAT, OPEN_HAT)

_KEYS_OF_CLASS = {
    KICK: (35, 36),
    SNARE: (37, 38, 39, 40),
    CLOSED_HAT: (22, 42, 44),
    OPEN_HAT: (26, 46),
    TOM: (41, 43, 45, 47, 48, 50, 58),
    CRASH: (49, 52, 55, 57),
    RIDE: (51, 53, 59),
}

# [128] class of each MIDI key; unlisted keys are other percussion.
CLASS_OF_KEY = np.full(128, PERC, dtype=np.int64)
for _cls, _keys in _KEYS_OF_CLASS.items():
    CLASS_OF_KEY[list(_keys)] = _cls
CLASS_OF_KEY.flags.writeable = False


def drum_class(gm_note: int | np.ndarray) -> int | np.ndarray:
    """Reduced class index (into `DRUM_CLASSES`) of a GM percussion key, or of an array of keys
    (any shape, same shape back). Raises ValueError for keys outside 0-127."""
    keys = np.asarray(gm_note)
    if keys.size and (keys.min() < 0 or keys.max() > 127):
        bad = keys[(keys < 0) | (keys > 127)].flat[0]
        raise ValueError(f"gm_note must be a MIDI key 0-127, got {bad}")
    classes = CLASS_OF_KEY[keys.astype(np.int64)]
    return int(classes) if classes.ndim == 0 else classes


def class_note(cls: int | np.ndarray) -> int | np.ndarray:
    """The GM key a class index (or array of them) is written back as (`CLASS_NOTES`)."""
    classes = np.asarray(cls)
    if classes.size and (classes.min() < 0 or classes.max() >= len(DRUM_CLASSES)):
        raise ValueError(f"drum class must be 0-{len(DRUM_CLASSES) - 1}, got {cls}")
    notes = np.asarray(CLASS_NOTES)[classes.astype(np.int64)]
    return int(notes) if notes.ndim == 0 else notes


def class_index(name: str) -> int:
    """Index of a class name of `DRUM_CLASSES` (ValueError naming the choices otherwise)."""
    if name not in DRUM_CLASSES:
        raise ValueError(f"unknown drum class {name!r}; choose from {', '.join(DRUM_CLASSES)}")
    return DRUM_CLASSES.index(name)
