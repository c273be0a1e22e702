"""Micro-batching across songs (generator/batching.py): each song's candidates are the same whether it is
decoded alone or with others, for both architectures; one bad song does not fail its batch; over the bus
every song still gets its candidates, each input acked after its own output is published."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from deephype.common.bus import Subscription, derive_id
from deephype.common.contracts import Candidates, EnrichedSong, Envelope, Song
from deephype.common.memory_bus import InMemoryBus
from deephype.generator.app import build
from deephype.generator.batching import BATCH_SIZE, MicroBatcher, consumer_settings
from deephype.generator.candidates import Checked, ModelCandidateSource
from deephype.generator.checkpoint import LoadedModel, load_model
from deephype.generator.handlers import make_candidates_handler
from deephype.generator.ranking import Ranker, lstm_fluency
from deephype.generator.source import SampleRequest
from tests.conftest import BUNDLED_MODEL, bundled_model, make_settings
from tests.factories import mention
from tests.test_pretrained_vae import tiny_lm_and_tokenizer, trained  # noqa: F401 (a tiny trained model)

SONGS = [
    Song(artist="Paper Lanterns", title="Night Owls", genres=["indie rock"]),
    Song(artist="DJ Harbor", title="Concrete Bloom", genres=["house"]),
    Song(artist="Iron Vale", title="Ash Crown", genres=["doom metal", "not-a-genre"]),
    Song(artist="June Okafor", title="Low Tide", genres=[]),
]
POISON = "Poison Pill"


def requests() -> list[SampleRequest]:
    """Mixed options on purpose: a batch holds different temperatures, n and LC-GAN choices."""
    return [
        SampleRequest(song=SONGS[0], n=4, seed=101),
        SampleRequest(song=SONGS[1], n=6, seed=202, temperature=1.2),
        SampleRequest(song=SONGS[2], n=3, seed=303, use_lcgan=False),
        SampleRequest(song=SONGS[3], n=5, seed=404, platform="bluesky"),
    ]


def texts(result: object) -> list[str]:
    assert isinstance(result, list), result
    return [c.text for c in result]


def assert_same_alone_and_batched(source: ModelCandidateSource) -> None:
    batch = requests()
    raw_alone = [source.sample(request) for request in batch]
    raw_together = source.sample_batch(batch)
    # Every raw sample (before the filters) is the same, and each song has its own: different seeds.
    assert [[c.text for c in checked] for checked in raw_together] == [[c.text for c in r] for r in raw_alone]  # type: ignore[union-attr]
    assert len({tuple(c.text for c in r) for r in raw_alone}) == len(batch)
    # So are the candidates, in a batch of all four and in a batch of two.
    together = source.generate_batch(batch)
    pairs = source.generate_batch([batch[2], batch[0]])
    for request, batched, raw in zip(batch, together, raw_alone, strict=True):
        alone = source.pick(request, raw)
        assert texts(batched) == texts(alone)
        assert isinstance(batched, list)
        assert [c.score for c in batched] == pytest.approx([c.score for c in alone], abs=1e-4)
    assert texts(pairs[0]) == texts(together[2]) and texts(pairs[1]) == texts(together[0])


def test_lstm_candidates_are_the_same_alone_or_batched_with_other_songs() -> None:
    source = bundled_model()
    assert isinstance(source, ModelCandidateSource) and source.lcgan is not None  # the steering is batched too
    assert_same_alone_and_batched(source)


def test_pretrained_candidates_are_the_same_alone_or_batched_with_other_songs(
    trained: tuple[Path, dict],  # noqa: F811
) -> None:
    out, _ = trained
    loaded = load_model(out, "cpu", lm_and_tokenizer=tiny_lm_and_tokenizer())
    scorer = load_model(BUNDLED_MODEL, "cpu")
    assert isinstance(scorer, LoadedModel)
    # Ranked as the service ranks it: the fluency LM runs once over every song's samples.
    source = ModelCandidateSource(loaded, samples=8, ranker=Ranker(lstm_fluency(scorer)))
    assert_same_alone_and_batched(source)


class OneBadSong(ModelCandidateSource):
    """The bundled model, except that one song breaks it: preparing it fails, or (shared=True) the whole
    batch that holds it fails, as a crash inside the shared decode would."""

    shared = False

    def _plan(self, request: SampleRequest, max_len: int):  # type: ignore[no-untyped-def]
        if request.song.artist == POISON and not self.shared:
            raise ValueError("this song cannot be conditioned on")
        return super()._plan(request, max_len)

    def sample_batch(self, requests: list[SampleRequest]) -> list[list[Checked] | Exception]:  # type: ignore[override]
        if self.shared and any(r.song.artist == POISON for r in requests):
            raise RuntimeError("the decode crashed")
        return super().sample_batch(requests)


def bad_song_source(shared: bool) -> OneBadSong:
    good = bundled_model()
    assert isinstance(good, ModelCandidateSource)
    source = OneBadSong(good.loaded, lcgan=good.lcgan, fallback=good.fallback, samples=8, info=good.info)
    source.shared = shared
    return source


@pytest.mark.parametrize("shared", [False, True], ids=["its-own-rows", "the-shared-decode"])
def test_one_bad_song_does_not_fail_its_batch(shared: bool) -> None:
    source = bad_song_source(shared)
    batch = requests()
    batch.insert(1, SampleRequest(song=Song(artist=POISON, title="Bad", genres=["rock"]), n=3, seed=5))
    results = source.generate_batch(batch)
    assert isinstance(results[1], ValueError if not shared else RuntimeError)
    for request, result in zip(batch[:1] + batch[2:], results[:1] + results[2:], strict=True):
        assert texts(result) == texts(source.generate(request)) and texts(result)


def test_micro_batcher_gathers_waiting_items_and_answers_each_caller() -> None:
    seen: list[list[int]] = []
    release = threading.Event()

    def run_batch(items: list[int]) -> list[int | Exception]:
        release.wait(5)  # the first batch holds the thread while the others queue up
        seen.append(items)
        return [ValueError(f"bad {i}") if i == 3 else i * 10 for i in items]

    batcher: MicroBatcher[int, int] = MicroBatcher(run_batch, max_size=4, max_wait=0.05)
    answers: dict[int, object] = {}

    def call(i: int) -> None:
        try:
            answers[i] = batcher.submit(i)
        except ValueError as exc:
            answers[i] = str(exc)

    threads = [threading.Thread(target=call, args=(i,)) for i in range(7)]
    threads[0].start()
    time.sleep(0.2)  # item 0 is alone in the first batch
    for thread in threads[1:]:
        thread.start()
    time.sleep(0.2)
    release.set()
    for thread in threads:
        thread.join(10)
    batcher.close()
    assert answers == {0: 0, 1: 10, 2: 20, 3: "bad 3", 4: 40, 5: 50, 6: 60}
    assert seen[0] == [0] and sorted(x for b in seen[1:] for x in b) == [1, 2, 3, 4, 5, 6]
    assert max(len(b) for b in seen) == 4  # never more than max_size at once


def test_the_generator_runs_enough_handler_threads_to_fill_its_batches(tmp_path: Path) -> None:
    settings = make_settings(tmp_path, generator_batch_size=16, handler_threads=4, prefetch=8)
    assert (consumer_settings(settings).handler_threads, consumer_settings(settings).prefetch) == (32, 32)
    alone = make_settings(tmp_path, generator_batch_size=1, handler_threads=4)
    assert consumer_settings(alone).handler_threads == 4


def enriched(index: int, song: Song) -> EnrichedSong:
    m = mention(str(index))
    return m.child(EnrichedSong, message_id=derive_id(m.message_id, "enriched"), mention=m, song=song, provider="test")


def batch_counts() -> tuple[float, float]:
    """(batches decoded, songs in them) so far, from the generator's batch-size histogram."""
    samples = {s.name: s.value for metric in BATCH_SIZE.collect() for s in metric.samples}
    return samples["deephype_generator_batch_size_count"], samples["deephype_generator_batch_size_sum"]


def test_over_the_bus_every_good_song_gets_its_own_candidates_in_shared_batches(tmp_path: Path) -> None:
    source = bad_song_source(shared=True)
    songs = [*SONGS, Song(artist=POISON, title="Bad", genres=["rock"]), *SONGS]
    messages = [enriched(i, song) for i, song in enumerate(songs)]
    settings = consumer_settings(
        make_settings(tmp_path, generator_batch_size=4, generator_batch_wait_ms=300, generator_candidates=3)
    )
    # What each song gets when it is handled alone, one at a time, on the handler thread.
    alone = make_candidates_handler(source, n=3, platform=settings.poster_platform)
    expected = {m.message_id: [c.text for c in alone(m)[0].candidates] for m in messages if m.song.artist != POISON}

    received: dict[str, Candidates] = {}
    lock = threading.Lock()

    def curator(message: Envelope) -> list[Envelope]:
        assert isinstance(message, Candidates)
        with lock:
            assert message.enriched.message_id not in received  # nothing twice
            received[message.enriched.message_id] = message
        return []

    bus = InMemoryBus(settings)
    for subscription in build(settings, source).subscriptions:
        bus.subscribe(subscription)
    bus.subscribe(Subscription("curator", {Candidates: curator}))
    batches_before, songs_before = batch_counts()
    bus.start()
    try:
        for message in messages:
            bus.publish(message)
        assert bus.wait_idle(timeout=120)
    finally:
        bus.stop()
    batches, batched_songs = (a - b for a, b in zip(batch_counts(), (batches_before, songs_before), strict=True))
    assert {k: [c.text for c in v.candidates] for k, v in received.items()} == expected
    assert batched_songs > batches  # songs did share batches
    (dead,) = bus.dead_letters()  # the bad song, after its retries, and nothing else
    assert dead.origin_queue == "generator" and "the decode crashed" in dead.reason


def test_several_decode_threads_run_batches_side_by_side() -> None:
    running, most = 0, 0
    lock = threading.Lock()

    def run_batch(items: list[int]) -> list[int | Exception]:
        nonlocal running, most
        with lock:
            running += 1
            most = max(most, running)
        time.sleep(0.3)
        with lock:
            running -= 1
        return [i + 1 for i in items]

    batcher: MicroBatcher[int, int] = MicroBatcher(run_batch, max_size=2, max_wait=0.0, workers=2)
    with ThreadPoolExecutor(8) as pool:
        answers = list(pool.map(batcher.submit, range(8)))
    batcher.close()
    assert answers == [i + 1 for i in range(8)] and most == 2
