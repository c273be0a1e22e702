"""X, Mastodon and Bluesky, one module each, shared by the listener (reading) and the poster (posting)."""
