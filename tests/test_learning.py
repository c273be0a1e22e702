"""The bot learns from its curator: labelled sets, model versions written whole, promoted only when they
rank the curator's choice better on held-out decisions, picked up by the generator without a restart."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from deephype.common.memory_bus import InMemoryBus
from deephype.common.service import create_app
from deephype.common.settings import DATA_DIR
from deephype.curator.app import build as build_curator
from deephype.curator.labels import labelled_sets
from deephype.generator.learn import LearnOptions, learn, rank_metrics, read_jsonl, write_jsonl
from deephype.generator.source import SampleRequest
from deephype.generator.versions import VersionStore
from tests.conftest import make_settings
from tests.factories import candidates
from tests.helpers.learning_loop import LearningLoop
from tests.helpers.sim_curator import decide, edit, likes

LSTM = DATA_DIR / "models" / "lstm"
WORDS_GOOD = ["warm guitar", "bright piano", "lovely drums", "lush synths", "sweet strings"]
WORDS_BAD = ["dark guitar", "a slow hum", "bleak piano", "the chorus", "mournful voice", "a long road"]


def synthetic_sets(count: int, seed: int, flip_before: int = 0) -> list[dict[str, Any]]:
    """Labelled sets as the curator serves them, decided by the simulated curator; the first `flip_before`
    are decided by a curator with the opposite taste (misleading decisions)."""
    rng = random.Random(seed)
    sets = []
    for number in range(count):
        texts = [
            f"It is a {rng.choice(WORDS_GOOD if rng.random() < 0.3 else WORDS_BAD)} with {rng.choice(WORDS_BAD)}."
            for _ in range(5)
        ]
        verdict = decide(texts)
        if number < flip_before:
            opposite = [i for i, t in enumerate(texts) if not likes(t)]
            verdict_index = opposite[0] if opposite and verdict.candidate_index is not None else None
        else:
            verdict_index = verdict.candidate_index
        sets.append(
            {
                "set_id": f"s{number}",
                "decision_id": number + 1,
                "decision": "approved" if verdict_index is not None else "rejected",
                "song": {"artist": "A", "title": "T", "genres": ["rock"]},
                "candidates": [
                    {
                        "candidate_id": f"s{number}-{i}",
                        "text": text,
                        "score": -i / 10 + rng.random() / 5,
                        "scores": {},
                        "label": "rejected"
                        if verdict_index is None
                        else ("approved" if i == verdict_index else "passed_over"),
                    }
                    for i, text in enumerate(texts)
                ],
                "edit": None,
            }
        )
    return sets


def test_the_curator_serves_each_set_with_approved_passed_over_rejected_and_the_edit(tmp_path: Path) -> None:
    settings = make_settings(tmp_path, curator_api_token="api-token")
    parts, store, _ = build_curator(settings, InMemoryBus(settings))
    chosen = candidates("1", texts=("First take.", "It is is a warm guitar.", "Third take."))
    other = candidates("2", texts=("Gloomy one.", "Gloomy two."))
    store.add_candidates(chosen)
    store.add_candidates(other)
    store.approve(
        chosen.message_id,
        chosen.candidates[1].candidate_id,
        edit(chosen.candidates[1].text),
        by="t",
        post_platform="dry_run",
    )
    store.reject(other.message_id, by="t")
    with TestClient(create_app(parts, InMemoryBus(settings))) as client:
        auth = {"Authorization": "Bearer api-token"}
        sets = client.get("/v1/decisions", params={"view": "sets"}, headers=auth).json()
        flat = client.get("/v1/decisions", headers=auth).json()
        later = client.get("/v1/decisions", params={"view": "sets", "since_id": sets[0]["decision_id"]}, headers=auth)
        bad = client.get("/v1/decisions", params={"view": "everything"}, headers=auth)
    assert [c["label"] for c in sets[0]["candidates"]] == ["passed_over", "approved", "passed_over"]
    assert sets[0]["edit"] == {"before": "It is is a warm guitar.", "after": "It is a warm guitar."}
    assert sets[0]["approval_id"] and sets[0]["candidates"][0]["model_version"] == "1"
    assert [c["label"] for c in sets[1]["candidates"]] == ["rejected", "rejected"]
    assert [s["set_id"] for s in later.json()] == [other.message_id]
    assert [d["decision"] for d in flat] == ["approved", "rejected", "rejected"]  # the old view is unchanged
    assert bad.status_code == 422


def test_a_better_version_is_promoted_and_a_worse_one_is_kept_aside(tmp_path: Path) -> None:
    store = VersionStore(tmp_path / "versions")
    options = LearnOptions(lcgan=False)
    good = learn(synthetic_sets(120, seed=1), store, LSTM, options)
    assert good["promoted"] and store.current_id() == good["version"]
    assert good["held_out"]["new"]["mrr"] > good["held_out"]["current"]["mrr"]

    # Trained on misleading decisions (the newest, held-out ones are honest): it ranks worse, so it stays aside.
    misled = learn(synthetic_sets(120, seed=2, flip_before=96), store, LSTM, options)
    assert not misled["promoted"] and store.current_id() == good["version"]
    assert misled["held_out"]["new"]["mrr"] <= misled["held_out"]["current"]["mrr"]
    kept = store.get(misled["version"])
    assert kept.report["promoted"] is False and "MRR" in kept.report["reason"]
    assert [v.id for v in store.versions()] == sorted([good["version"], misled["version"]])


def test_learning_needs_enough_decisions_and_says_so(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="at least 20"):
        learn(synthetic_sets(5, seed=0), VersionStore(tmp_path), LSTM, LearnOptions(lcgan=False))
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"not": "a set"}\n', encoding="utf-8")
    with pytest.raises(ValueError, match="not a labelled set"):
        read_jsonl(bad)


def test_a_version_interrupted_mid_write_is_never_seen_or_promoted(tmp_path: Path) -> None:
    store = VersionStore(tmp_path / "versions")
    first = learn(synthetic_sets(60, seed=3), store, LSTM, LearnOptions(lcgan=False))
    assert first["promoted"]
    with pytest.raises(RuntimeError), store.writing("v-broken") as folder:
        (folder / "approval.json").write_text("{}", encoding="utf-8")
        raise RuntimeError("crash while writing")
    assert [v.id for v in store.versions()] == [first["version"]] and store.current_id() == first["version"]
    assert not any(p.name.startswith(".tmp-") for p in store.root.iterdir())


@pytest.mark.slow
@pytest.mark.timeout(180)
def test_killing_deephype_learn_mid_round_loses_no_decision_and_promotes_nothing_half_written(
    tmp_path: Path,
) -> None:
    sets_file = tmp_path / "sets.jsonl"
    write_jsonl(synthetic_sets(80, seed=4), sets_file)
    before = sets_file.read_bytes()
    versions = tmp_path / "versions"
    command = [sys.executable, "-m", "deephype.cli", "learn", "--from", str(sets_file), "--model", str(LSTM)]
    command += ["--versions", str(versions)]
    env = {**os.environ, "DEEPHYPE_STATE_DIR": str(tmp_path / "state")}
    # A long LC-GAN round: killed while the version folder is being written.
    process = subprocess.Popen([*command, "--lcgan-steps", "100000"], env=env, stdout=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and not any(p.name.startswith(".tmp-") for p in versions.glob(".tmp-*")):
        time.sleep(0.1)
    time.sleep(0.5)
    process.send_signal(signal.SIGKILL)
    process.wait()
    store = VersionStore(versions)
    assert store.versions() == [] and store.current_id() is None  # nothing half-written is seen
    assert sets_file.read_bytes() == before  # the decisions are the curator's: untouched

    done = subprocess.run([*command, "--no-lcgan"], env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    [version] = store.versions()
    assert store.current_id() == version.id and json.loads(done.stdout[done.stdout.index("{") :])["promoted"]
    assert not any(p.name.startswith(".tmp-") for p in versions.iterdir())  # the crash's leftovers are gone


def test_the_generator_swaps_to_a_promoted_version_without_dropping_a_request(tmp_path: Path) -> None:
    loop = LearningLoop(tmp_path, LSTM, seed=5, options=LearnOptions(lcgan=False), samples=16)
    base_version = loop.source.info.version
    loop.review(40)
    sets = labelled_sets(loop.curator.db)
    assert {c["model_version"] for s in sets for c in s["candidates"]} == {base_version}
    edited = [s for s in sets if s["edit"]]
    assert all(s["edit"]["after"] == edit(s["edit"]["before"]) for s in edited)

    results: list[str] = []
    errors: list[BaseException] = []
    stop = threading.Event()

    def keep_generating() -> None:
        number = 0
        while not stop.is_set():
            number += 1
            request = SampleRequest(song=loop.song(f"load-{number}").song, n=3, platform="x", seed=number)
            try:
                results.extend({c.model_version or "" for c in loop.source.generate(request)})
            except BaseException as exc:  # a dropped request would show here
                errors.append(exc)

    worker = threading.Thread(target=keep_generating)
    worker.start()
    try:
        report = learn(sets, loop.versions, LSTM, loop.options)
        loop.versions.promote(report["version"])  # promoted or not on 40 decisions: the swap is the point here
        assert loop.source.check()  # what the generator's watcher thread does
        time.sleep(0.5)
    finally:
        stop.set()
        worker.join()
    assert not errors
    assert loop.source.info.version == report["version"] and results[-1] == report["version"]
    assert set(results) == {base_version, report["version"]}
    [message] = loop.handle(loop.song("after-swap"))
    assert {c.model_version for c in message.candidates} == {report["version"]}  # type: ignore[attr-defined]


def test_rank_metrics_count_ties_against_the_version() -> None:
    tie = {
        "decision": "approved",
        "candidates": [
            {"text": "a", "score": 1.0, "scores": {}, "label": "passed_over"},
            {"text": "b", "score": 1.0, "scores": {}, "label": "approved"},
        ],
    }
    assert rank_metrics([tie], None) == {"sets": 1.0, "top1": 0.0, "mrr": 0.5}


def test_the_review_page_shows_which_model_version_wrote_the_candidates(tmp_path: Path) -> None:
    settings = make_settings(tmp_path, curator_secret_key="k" * 32)
    bus = InMemoryBus(settings)
    parts, store, auth = build_curator(settings, bus)
    message = candidates("9")
    store.add_candidates(message)
    with TestClient(create_app(parts, bus)) as client:
        page = client.get(f"/review/{auth.review_token(message.message_id)}")
    assert page.status_code == 200 and "written by model test 1" in page.text


def test_the_generator_learns_by_itself_after_every_n_new_decisions_from_the_curators_api(tmp_path: Path) -> None:
    import uvicorn

    from deephype.generator.learn import AutoLearner
    from tests.conftest import wait_until
    from tests.helpers.processes import free_port

    loop = LearningLoop(tmp_path, LSTM, seed=6, options=LearnOptions(lcgan=False), samples=16)
    loop.review(30)
    port = free_port()
    settings = loop.settings.with_overrides(
        curator_api_token="learn-token", learn_curator_url=f"http://127.0.0.1:{port}", learn_every_decisions=25
    )
    parts, _, _ = build_curator(settings, InMemoryBus(settings))
    server = uvicorn.Server(
        uvicorn.Config(create_app(parts, InMemoryBus(settings)), host="127.0.0.1", port=port, log_level="warning")
    )
    threading.Thread(target=server.run, daemon=True).start()
    assert wait_until(lambda: server.started)
    try:
        learner = AutoLearner(settings, LSTM, loop.versions, LearnOptions(lcgan=False))
        first = learner.step()
        assert first is not None and len(loop.versions.versions()) == 1
        assert learner.step() is None  # nothing new since
        loop.review(10)
        assert learner.step() is None  # 10 new < 25
        loop.review(20)
        second = learner.step()
        assert second is not None and second["version"] != first["version"]
        assert len(loop.versions.versions()) == 2
        wrong = AutoLearner(settings.with_overrides(curator_api_token="wrong"), LSTM, loop.versions, LearnOptions())
        with pytest.raises(ValueError, match="cannot read the curator's decisions"):
            wrong.step()
    finally:
        server.should_exit = True


def test_a_decoder_fine_tuned_on_approved_sentences_is_kept_only_if_they_get_likelier(tmp_path: Path) -> None:
    loop = LearningLoop(tmp_path, LSTM, seed=7, options=LearnOptions(lcgan=True, lcgan_steps=20, finetune=True))
    loop.review(60)
    report = loop.learn()
    tuned = report["finetune"]
    assert tuned["sentences"] > 0 and tuned["kept"] == (tuned["nll_after"] < tuned["nll_before"])
    version = loop.versions.get(report["version"])
    assert (version.path / "model.pt").is_file() == tuned["kept"] == version.manifest["finetuned"]
    loop.versions.promote(version.id)
    loop.source.check()
    served = loop.source.source
    assert served.loaded.model is not None and loop.source.info.version == version.id  # type: ignore[attr-defined]
    if tuned["kept"]:  # its own decoder, and the approval LC-GAN trained on that decoder steers it
        assert served.lcgan is not None and served.lcgan.value == "approval"  # type: ignore[attr-defined]
    [message] = loop.handle(loop.song("after"))
    assert message.candidates  # type: ignore[attr-defined]


def test_the_audiences_response_weighs_an_approved_text_in_the_labelled_set() -> None:
    from deephype.generator.learn import examples, with_engagement

    [liked, ignored] = synthetic_sets(2, seed=8)
    for labelled in (liked, ignored):
        labelled["approval_id"] = labelled["set_id"] + "-approval"
        labelled["decision"] = "approved"
        for index, candidate in enumerate(labelled["candidates"]):
            candidate["label"] = "approved" if index == 0 else "passed_over"
    posts = {"s0-approval": [{"platform": "mastodon", "latest": {"likes": 30, "reposts": 5, "replies": 1}}]}
    sets = with_engagement([liked, ignored], posts)
    assert sets[0]["engagement"] == posts["s0-approval"] and sets[1]["engagement"] == []
    _, labels, weights = examples(sets)
    approved = [w for w, label in zip(weights, labels, strict=True) if label == 1]
    assert approved[0] > 4.0 and approved[1] == 1.0
    assert all(w == 1.0 for w, label in zip(weights, labels, strict=True) if label == 0)


def test_the_simulated_curator_teaches_the_generator_through_the_real_pipeline(tmp_path: Path) -> None:
    """Mentions in at the listener, candidates from the versioned generator, the simulated curator deciding
    through the curator's API, the poster publishing (dry run); then `learn` on the curator's labelled sets,
    and the running generator writes the next song's candidates with the new version."""
    from deephype.generator.learn import versioned_source
    from deephype.pipeline import build_pipeline
    from tests.conftest import wait_until

    settings = make_settings(
        tmp_path,
        listener_sources=[],
        listener_api_token="listen",
        curator_api_token="curate",
        generator_rank=False,
        generator_samples=16,
        learn_versions_dir=str(tmp_path / "versions"),
    )
    source = versioned_source(LSTM, settings)
    pipeline = build_pipeline(settings, InMemoryBus(settings), candidate_source=source)
    tracks = json.loads((DATA_DIR / "catalog.json").read_text(encoding="utf-8"))["tracks"]
    pipeline.start()
    try:
        apps = pipeline.apps()
        listener = TestClient(apps["listener"], headers={"Authorization": "Bearer listen"})
        curator = TestClient(apps["curator"], headers={"Authorization": "Bearer curate"})

        def mention(number: int) -> None:
            track = tracks[number % len(tracks)]
            response = listener.post(
                "/v1/mentions",
                json={"post_id": f"sim-{number}", "author": "ana", "text": f"#np {track['artist']} - {track['title']}"},
            )
            assert response.status_code == 202, response.text

        for number in range(30):
            mention(number)
        assert wait_until(lambda: len(curator.get("/v1/songs", params={"status": "pending"}).json()) == 30, 60)
        for song in curator.get("/v1/songs", params={"status": "pending"}).json():
            verdict = decide([c["text"] for c in song["candidates"]])
            if verdict.candidate_index is None:
                assert curator.post(f"/v1/songs/{song['set_id']}/reject").status_code == 200
            else:
                chosen = song["candidates"][verdict.candidate_index]
                body = {"candidate_id": chosen["candidate_id"], "text": verdict.text}
                assert curator.post(f"/v1/songs/{song['set_id']}/approve", json=body).status_code == 200
        sets = curator.get("/v1/decisions", params={"view": "sets"}).json()
        assert len(sets) == 30
        approved = [s for s in sets if s["decision"] == "approved"]
        assert wait_until(
            lambda: all(s["post"] for s in curator.get("/v1/decisions?view=sets").json() if s["approval_id"])
        )

        report = learn(sets, source.store, LSTM, LearnOptions(lcgan=False, min_sets=20))
        source.store.promote(report["version"])  # 30 decisions: the promotion rule has its own test
        assert source.check()
        mention(100)
        assert wait_until(lambda: len(curator.get("/v1/songs", params={"status": "pending"}).json()) == 1, 60)
        [song] = curator.get("/v1/songs", params={"status": "pending"}).json()
        assert report["version"] in song["model"]
        assert approved and all(s["candidates"] for s in approved)
    finally:
        pipeline.stop()
