"""The style families of the band corpus: one list shared by the groove and band adapters.

The band model is conditioned on one of ``GROOVE_FAMILIES``. The groove adapter labels each Groove
MIDI performance with the family of its ``info.csv`` style (``groove_family``); the band adapter
labels each song it renders through mma with the family of the mma groove it used. Keep the names
and their order stable: a model's style embedding is indexed by this tuple.

=========  ==========================================  =============================================
family     Groove MIDI styles (info.csv)               mma grooves (style files, for the band map)
=========  ==========================================  =============================================
rock       rock, rock/* (halftime, indie, prog, folk,  stdlib 50srock, 60srock, 8beat, basicrock,
           rockabilly, groove8)                        folkrock, softrock, rock-128, bubblerock;
                                                       zoom rock, hrk; casio rock1/2, heavymetal
pop        pop, pop/groove7                            casio pop, 8beatpop*, 80spop, poprock*;
                                                       zoom pop
funk       funk, funk/*, jazz/funk, jazz/fusion,       stdlib bvfunk; casio funk1/2, fusion;
           neworleans/funk, neworleans/secondline,     zoom funk, fusion; kara Kfunk1
           afrobeat
soul       soul, soul/* (motown, groove*), gospel      stdlib dsoul, rb; casio soul, 60ssoul, r+b;
                                                       zoom rnb; kara 8beatmotown
swing      jazz, jazz/* (swing, mediumfast, fast,      stdlib swing, jazzcombo, bebop, bigband,
           linear, march, klezmer)                     easyswing, fastswing, dixie; yamaha jazz*
latin      latin/*, afrocuban/*, neworleans/chacha,    stdlib rhumba, salsa, samba, mambo, chacha,
           highlife, middleeastern                     son, afro-cuban; zoom latin, samba, afro
bossa      latin/brazilian-bossa                       stdlib bossanova; zoom bossa; kara kbossa
ballad     pop/soft (83 bpm); 6-8 performances         stdlib ballad, ballad68, popballad,
                                                       rockballad, pianoballad; zoom bald
country    country                                     stdlib country*, bluegrass, westernswing;
                                                       zoom country, cntry
waltz      every 3-4 performance                       stdlib waltz, jazzwaltz, countrywaltz,
                                                       rockwaltz; zoom rock34, bald34
hiphop     hiphop, hiphop/*                            alexis hiphop; casio hip-hop, triphop;
                                                       zoom hiphop, trip
reggae     reggae, reggae/*                            zoom reggae, ska; stdlib ska
blues      blues/shuffle, rock/shuffle,                stdlib blues, slowblues, fastblues,
           neworleans/shuffle                          shuffleboggie; zoom blues, shuffle
punk       punk                                        zoom punk
dance      dance/* (disco, breakbeat)                  casio dance*, house, techno, trance;
                                                       zoom dance, house, techno, dnb
=========  ==========================================  =============================================

Why these choices: jazz in Groove MIDI is swung ride-cymbal time, which is what mma calls swing;
jazz/funk and jazz/fusion are straight sixteenth grooves, so funk. New Orleans second line and
afrobeat are syncopated straight-feel grooves nearest funk; the shuffles (blues, rock, New
Orleans) share the triplet feel of mma's blues grooves. Highlife and the one middle-eastern
performance are hand-percussion bell/clave patterns, nearest latin. The meter decides before the
style label: every 3-4 performance is a waltz (mma's waltz grooves are the 3/4 ones) and the
five 6-8 rock performances (60-80 bpm) are the 6/8 ballad feel. Groove MIDI has few performances
of some families (bossa 2, waltz 5, dance 7, blues 9, pop 14, ballad 18 of 1,150): those come
mostly from the band corpus.
"""

from __future__ import annotations

GROOVE_FAMILIES = (
    "rock",
    "pop",
    "funk",
    "soul",
    "swing",
    "latin",
    "bossa",
    "ballad",
    "country",
    "waltz",
    "hiphop",
    "reggae",
    "blues",
    "punk",
    "dance",
)

# Full info.csv style -> family, checked before the top-level name.
_STYLE_FAMILIES = {
    "pop/soft": "ballad",
    "jazz/funk": "funk",
    "jazz/fusion": "funk",
    "latin/brazilian-bossa": "bossa",
    "neworleans/shuffle": "blues",
    "neworleans/chacha": "latin",
    "rock/shuffle": "blues",
}

# Top-level info.csv style (before the slash) -> family.
_TOP_FAMILIES = {
    "rock": "rock",
    "pop": "pop",
    "funk": "funk",
    "soul": "soul",
    "gospel": "soul",
    "jazz": "swing",
    "latin": "latin",
    "afrocuban": "latin",
    "highlife": "latin",
    "middleeastern": "latin",
    "neworleans": "funk",
    "afrobeat": "funk",
    "country": "country",
    "hiphop": "hiphop",
    "reggae": "reggae",
    "blues": "blues",
    "punk": "punk",
    "dance": "dance",
}

# Meters whose family is fixed whatever the style says (see the module docstring).
_METER_FAMILIES = {"3-4": "waltz", "3/4": "waltz", "6-8": "ballad", "6/8": "ballad"}


def groove_family(groove_style: str, time_signature: str | None = None) -> str:
    """The family (one of ``GROOVE_FAMILIES``) of a Groove MIDI ``info.csv`` style.

    ``groove_style`` is the csv's style column ("funk/groove1", "jazz", "afrocuban/bembe").
    ``time_signature`` is its time_signature column ("4-4", "3-4"; "3/4" is accepted too): 3/4
    maps to "waltz" and 6/8 to "ballad" whatever the style. Raises ValueError for a style with no
    family (a newer dataset version may add one: extend the tables above).
    """
    if time_signature is not None and time_signature.strip() in _METER_FAMILIES:
        return _METER_FAMILIES[time_signature.strip()]
    style = groove_style.strip().lower()
    if style in _STYLE_FAMILIES:
        return _STYLE_FAMILIES[style]
    top = style.split("/", 1)[0]
    if top in _TOP_FAMILIES:
        return _TOP_FAMILIES[top]
    raise ValueError(f"no groove family for the Groove MIDI style {groove_style!r}")
