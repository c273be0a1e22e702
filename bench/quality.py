"""Honest quality figures for the writing (issue 11): raw samples AND the candidates the curator sees, per
model, next to held-out real sentences of the same corpus and a prompted-LM baseline.

    python bench/quality.py --corpus data/corpus/built --model data/models/lstm --model data/models/default \
        --prompted --out bench/results/quality.json

Per system (instruments in services/generator/quality.py; none is a decoder or the ranker):
    judge_ppl        perplexity under the pocketsphinx en-us trigram LM; `judge_ratio` = judge_ppl / real's
    mauve            MAUVE vs held-out real half A on all-MiniLM-L6-v2 features; real half B vs A beside it
    genre_recovery   accuracy of the masked genre judge on the requested family / its accuracy on real
    distinct_1/2, copy_rate (8+ words shared with a training sentence), unk_rate, repeat_rate
Held-out real = the corpus's valid + test splits (never trained on by the models or the judges).
"""

from __future__ import annotations

import argparse
import json
import random
import time
from collections import Counter
from pathlib import Path
from typing import Any

import torch
from tqdm import tqdm

from deephype.common.contracts import Song
from deephype.common.settings import Settings
from deephype.generator.candidates import ModelCandidateSource, fill_placeholders
from deephype.generator.data import corpus_rows
from deephype.generator.quality import (
    COPY_WORDS,
    MaskedGenreJudge,
    NgramIndex,
    SentenceEncoder,
    TrigramJudge,
    mauve_score,
)
from deephype.generator.sample_eval import distinct_n, has_repeated_bigram
from deephype.generator.source import SampleRequest
from deephype.generator.vocab import ARTIST, TITLE, tokenize

MIN_HELD_OUT = 8  # a family needs this many held-out sentences to be a condition


def rows_of(corpus: Path, split: str) -> list[dict[str, Any]]:
    path = corpus / f"{split}.jsonl"
    if not path.is_file():
        return []
    out = []
    for text, genres, row in corpus_rows(path):
        families = row.get("families") or []
        if families:
            out.append({"text": text, "family": families[0], "genres": genres, **row})
    return out


def conditions(held_out: list[dict[str, Any]]) -> dict[str, list[str]]:
    """family -> the genres most held-out sentences of that family were written under."""
    counts = Counter(r["family"] for r in held_out)
    result = {}
    for family, count in sorted(counts.items()):
        if count >= MIN_HELD_OUT:
            genres = Counter(tuple(r["genres"]) for r in held_out if r["family"] == family)
            result[family] = list(genres.most_common(1)[0][0])
    return result


def raw_samples(loaded: Any, conds: dict[str, list[str]], per_family: int, seed: int) -> list[tuple[str, str]]:
    from deephype.generator.candidates import NO_REPEAT_NGRAM, TOP_P
    from deephype.generator.sample_pretrained import NO_REPEAT_PIECES

    out = []
    for offset, (family, genres) in enumerate(tqdm(conds.items(), desc="raw samples", leave=False)):
        generator = torch.Generator().manual_seed(seed + offset)
        z = torch.randn(per_family, loaded.config.latent_dim, generator=generator)
        cond = loaded.encode_condition(genres).expand(per_family, -1)
        result = loaded.decode(
            z,
            cond,
            [genres] * per_family,
            temperature=0.9,
            top_p=TOP_P,
            no_repeat_ngram=NO_REPEAT_NGRAM if loaded.arch == "lstm" else NO_REPEAT_PIECES,
            generator=generator,
        )
        out += [(text, family) for text in result.texts]
    return out


def candidates(
    source: ModelCandidateSource, held_out: list[dict[str, Any]], conds: dict[str, list[str]], songs: int, seed: int
) -> tuple[list[tuple[str, str]], list[float]]:
    """The service's own path: ranked candidates for held-out songs of each family (names put back as
    placeholders so every system is judged on the same footing), and each request's latency."""
    out, latencies = [], []
    rng = random.Random(seed)
    for family, genres in tqdm(conds.items(), desc="candidates", leave=False):
        pool = sorted({(r["artist"], r["title"]) for r in held_out if r["family"] == family and r.get("artist")})
        rng.shuffle(pool)
        for index, (artist, title) in enumerate(pool[:songs]):
            request = SampleRequest(song=Song(artist=artist, title=title, genres=genres), n=5, seed=seed + index)
            started = time.perf_counter()
            texts = [c.text for c in source.generate(request)]
            latencies.append(time.perf_counter() - started)
            out += [(t.replace(artist, ARTIST).replace(title, TITLE), family) for t in texts]
    return out, latencies


def prompted(conds: dict[str, list[str]], per_family: int, seed: int) -> list[tuple[str, str]]:
    """SmolLM2-135M-Instruct asked for one sentence about the song: fluent, but not our corpus's writing."""
    from deephype.generator.pretrained import load_pretrained_lm

    lm, tokenizer = load_pretrained_lm()
    lm.eval()
    torch.manual_seed(seed)
    tokenizer.padding_side = "left"
    out = []
    for family, genres in tqdm(conds.items(), desc="prompted", leave=False):
        prompt = tokenizer.apply_chat_template(
            [
                {
                    "role": "user",
                    "content": f"Write one sentence about the {', '.join(genres)} song {TITLE} by {ARTIST}.",
                }
            ],
            tokenize=False,
            add_generation_prompt=True,
        )
        batch = tokenizer([prompt] * per_family, return_tensors="pt", add_special_tokens=False)
        with torch.inference_mode():
            ids = lm.generate(
                **batch,
                do_sample=True,
                temperature=0.9,
                top_p=0.9,
                max_new_tokens=48,
                pad_token_id=tokenizer.eos_token_id,
            )
        for row in ids[:, batch.input_ids.size(1) :]:
            text = " ".join(tokenizer.decode(row, skip_special_tokens=True).split())
            out.append((text, family))
    return out


def figures(
    name: str,
    pairs: list[tuple[str, str]],
    judge: TrigramJudge,
    genre: MaskedGenreJudge,
    encoder: SentenceEncoder,
    real_a: Any,
    real: dict[str, Any],
    copies: NgramIndex,
    seed: int,
) -> dict[str, Any]:
    texts = [t for t, _ in pairs if t.strip()]
    families = [f for t, f in pairs if t.strip()]
    tokens = [tokenize(t) for t in texts]
    ppl = judge.perplexity(texts)
    sample = random.Random(seed).sample(range(len(texts)), min(len(texts), len(real_a)))
    result = {
        "system": name,
        "texts": len(texts),
        "families": len(set(families)),
        "judge_ppl": ppl["perplexity"],
        "judge_oov_rate": ppl["oov_rate"],
        "words_per_text": ppl["words_per_text"],
        "mauve": mauve_score(encoder.embed([texts[i] for i in sample]), real_a, seed),
        "genre_accuracy": genre.accuracy(texts, families),
        "distinct_1": distinct_n(tokens, 1),
        "distinct_2": distinct_n(tokens, 2),
        "copy_rate": sum(copies.copies(t) for t in texts) / len(texts),
        "unk_rate": sum("<unk>" in t for t in texts) / len(texts),
        "repeat_rate": sum(has_repeated_bigram(t) for t in tokens) / len(texts),
        "examples": [fill_placeholders(t, "Daft Punk", "Digital Love") for t in texts[:: max(1, len(texts) // 6)][:6]],
    }
    if real:
        result["judge_ratio"] = result["judge_ppl"] / real["judge_ppl"]
        result["genre_recovery"] = result["genre_accuracy"] / real["genre_accuracy"]
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--corpus", type=Path, default=Path("data/corpus/built"))
    parser.add_argument("--model", type=Path, action="append", default=[], help="a model folder (repeatable)")
    parser.add_argument("--models-dir", type=Path, default=Path("data/models"), help="where the fluency scorer lives")
    parser.add_argument("--prompted", action="store_true", help="also the prompted SmolLM2 baseline")
    parser.add_argument("--per-family", type=int, default=25, help="raw samples per genre family")
    parser.add_argument("--songs", type=int, default=5, help="held-out songs per family for candidates (5 each)")
    parser.add_argument("--samples", type=int, default=32, help="samples per request on the service path")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--out", type=Path, default=Path("bench/results/quality.json"))
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    train = rows_of(args.corpus, "train")
    held_out = rows_of(args.corpus, "valid") + rows_of(args.corpus, "test")
    conds = conditions(held_out)
    print(f"{len(train)} train / {len(held_out)} held-out real sentences; {len(conds)} genre families: {list(conds)}")
    judge, encoder = TrigramJudge(), SentenceEncoder()
    genre = MaskedGenreJudge([r["text"] for r in train], [r["family"] for r in train], args.seed)
    copies = NgramIndex((r["text"] for r in train), COPY_WORDS)
    real_rows = [r for r in held_out if r["family"] in conds]
    random.Random(args.seed).shuffle(real_rows)
    half = len(real_rows) // 2
    real_a_rows, real_b_rows = real_rows[:half], real_rows[half : 2 * half]
    real_a = encoder.embed([r["text"] for r in real_a_rows])
    report: dict[str, Any] = {"conditions": conds, "held_out": len(real_rows), "systems": []}

    def add(name: str, pairs: list[tuple[str, str]], **extra: Any) -> None:
        base = report["systems"][0] if report["systems"] else {}
        entry = figures(name, pairs, judge, genre, encoder, real_a, base, copies, args.seed) | extra
        report["systems"].append(entry)
        print(
            f"{name:<34} n={entry['texts']:<4} judge ppl {entry['judge_ppl']:7.1f} "
            f"({entry.get('judge_ratio', 1.0):.2f}x) mauve {entry['mauve']:.3f} "
            f"genre acc {entry['genre_accuracy']:.3f} "
            f"({entry.get('genre_recovery', 1.0):.2f}) d1 {entry['distinct_1']:.2f} d2 {entry['distinct_2']:.2f} "
            f"copy {entry['copy_rate']:.3f} rep {entry['repeat_rate']:.3f}",
            flush=True,
        )
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")

    add("real held-out (half B)", [(r["text"], r["family"]) for r in real_b_rows])
    for model_dir in args.model:
        settings = Settings(models_dir=args.models_dir, generator_samples=args.samples, generator_device="cpu")
        source = ModelCandidateSource.load(model_dir, settings)
        arch = source.loaded.arch
        add(f"{arch} {model_dir.name}: raw samples", raw_samples(source.loaded, conds, args.per_family, args.seed))
        pairs, latencies = candidates(source, held_out, conds, args.songs, args.seed)
        latencies.sort()
        add(
            f"{arch} {model_dir.name}: candidates",
            pairs,
            p50_s=latencies[len(latencies) // 2],
            p99_s=latencies[min(len(latencies) - 1, int(0.99 * len(latencies)))],
        )
        del source
    if args.prompted:
        add("prompted SmolLM2 (no VAE)", prompted(conds, args.per_family, args.seed))
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
