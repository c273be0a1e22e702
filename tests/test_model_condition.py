"""The song condition vector: genres from data/genres.json plus audio features with a presence mask."""

from __future__ import annotations

import pytest
import torch

from deephype.common.contracts import AudioFeatures
from deephype.generator.condition import AUDIO_FEATURES, UNKNOWN_FLAG, ConditionEncoder


@pytest.fixture(scope="module")
def encoder() -> ConditionEncoder:
    return ConditionEncoder.from_file()


def test_layout_covers_every_genre_family_and_feature(encoder: ConditionEncoder) -> None:
    assert len(encoder.families) == 16
    assert encoder.dim == len(encoder.fine_genres) + 16 + 1 + 2 * len(AUDIO_FEATURES)


def test_missing_audio_features_leave_the_mask_at_zero(encoder: ConditionEncoder) -> None:
    vector = encoder.encode(["indie rock"], {"energy": 0.0, "tempo": 150.0, "loudness": -6.0}).vector
    assert vector[encoder.index["present:energy"]] == 1.0
    assert vector[encoder.index["audio:energy"]] == 0.0  # present and zero ...
    assert vector[encoder.index["present:valence"]] == 0.0  # ... is not the same as missing
    assert vector[encoder.index["audio:tempo"]] == pytest.approx(0.5)
    assert vector[encoder.index["audio:loudness"]] == pytest.approx(0.9)
    nothing = encoder.encode(["indie rock"], None).vector
    assert all(nothing[encoder.index[f"present:{name}"]] == 0.0 for name in AUDIO_FEATURES)


def test_contract_audio_features_are_accepted(encoder: ConditionEncoder) -> None:
    features = AudioFeatures(danceability=0.7, valence=None)
    vector = encoder.encode([], features).vector
    assert vector[encoder.index["present:danceability"]] == 1.0
    assert vector[encoder.index["present:valence"]] == 0.0


def test_fine_genre_sets_its_family_and_family_alone_is_allowed(encoder: ConditionEncoder) -> None:
    vector = encoder.encode(["Dream Pop", "dance"]).vector
    on = {encoder.names[i] for i in torch.nonzero(vector).flatten().tolist()}
    assert on == {"genre:dream pop", "family:indie", "family:dance"}


def test_qualified_spotify_genre_falls_back_to_the_fine_genre_it_ends_with(encoder: ConditionEncoder) -> None:
    assert encoder.resolve("modern alternative rock") == ("alternative rock", "rock")


def test_unknown_genres_set_a_flag_and_never_raise(encoder: ConditionEncoder) -> None:
    encoded = encoder.encode(["indie rock", "zzz-not-a-genre"])
    assert encoded.unknown_genres == ["zzz-not-a-genre"]
    assert encoded.vector[encoder.index[UNKNOWN_FLAG]] == 1.0
    assert encoder.encode(["indie rock"]).vector[encoder.index[UNKNOWN_FLAG]] == 0.0
    assert "indie rock" in encoder.close_matches("indie rok")


def test_bad_audio_feature_values_are_reported(encoder: ConditionEncoder) -> None:
    with pytest.raises(ValueError, match="energy"):
        encoder.encode([], {"energy": "loud"})


def test_round_trips_through_a_dict(encoder: ConditionEncoder) -> None:
    assert ConditionEncoder.from_dict(encoder.to_dict()).names == encoder.names
