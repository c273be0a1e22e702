"""Song lookups shared by the services that need them: the offline catalog, Spotify and MusicBrainz search,
the SQLite cache, and the matching rules they all use (providers.py is the entry point)."""
