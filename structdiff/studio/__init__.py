"""The local web studio (`structdiff serve`): press a game state in the browser, hear the music
follow. `structdiff.studio.server` has the server and its message protocol."""
