"""The corpus tool: `deephype corpus build` turns blog posts, HTML pages, RSS/Atom feeds and our own
labelled sentences into clean train/valid/test JSONL with <artist>/<title> placeholders and genres;
`deephype corpus stats` describes a built corpus. Reusable pieces: `titles.parse_song_title` and the
normalisation helpers in `titles`, `build.build_corpus`."""
