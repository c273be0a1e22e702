"""`deephype train-lcgan | evaluate-samples`: the LC-GAN from the command line.

torch and scikit-learn are imported inside the commands, so `deephype --help` stays fast.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

VALUES = ("realism", "genre", "topic", "sentiment", "fluency", "approval")
OWN_CORPUS = Path(__file__).resolve().parents[2] / "data" / "corpus" / "own"


def register(subparsers: Any) -> None:
    train = subparsers.add_parser("train-lcgan", help="train an LC-GAN actor/critic on a trained VAE")
    train.add_argument("--model", type=Path, required=True, help="model folder (with model.pt)")
    train.add_argument("--value", choices=VALUES, required=True, help="what the critic rewards")
    train.add_argument(
        "--corpus",
        type=Path,
        default=None,
        help="built corpus folder (its train.jsonl is used); default: build data/corpus/own",
    )
    train.add_argument(
        "--decisions",
        type=Path,
        default=None,
        help="curator.sqlite3 or a GET /v1/decisions JSON export; default: <state_dir>/curator/curator.sqlite3",
    )
    train.add_argument("--steps", type=int, default=1000, help="actor steps (each after --critic-steps critic steps)")
    train.add_argument("--critic-steps", type=int, default=5)
    train.add_argument("--distance-weight", type=float, default=None, help="lambda of the ||z'-z||^2 penalty")
    train.add_argument("--seed", type=int, default=0)
    train.add_argument("--device", default="auto")
    train.add_argument("--quiet", action="store_true", help="no progress bar")
    train.set_defaults(func=cmd_train_lcgan)

    evaluate = subparsers.add_parser(
        "evaluate-samples", help="sample quality and target attribute with and without the LC-GAN(s)"
    )
    evaluate.add_argument("--model", type=Path, required=True)
    evaluate.add_argument(
        "--corpus", type=Path, default=None, help="built corpus folder; default: build data/corpus/own"
    )
    evaluate.add_argument("--per-condition", type=int, default=200, help="samples per genre family and mode")
    evaluate.add_argument("--temperature", type=float, default=0.9)
    evaluate.add_argument("--top-p", type=float, default=0.9)
    evaluate.add_argument(
        "--no-repeat-ngram",
        type=int,
        default=2,
        help="the sampler blocks repeating an n-gram of this size (2 as the service does; 3 = sampler default)",
    )
    evaluate.add_argument("--seed", type=int, default=0)
    evaluate.add_argument("--device", default="auto")
    evaluate.add_argument("--out", type=Path, default=None, help="also write the JSON report here")
    evaluate.add_argument("--json", action="store_true", help="print the JSON report")
    evaluate.set_defaults(func=cmd_evaluate_samples)


@contextlib.contextmanager
def corpus_folder(path: Path | None) -> Iterator[Path]:
    """The given built corpus folder, or data/corpus/own built into a temporary one (same song split)."""
    if path is not None:
        if not (path / "train.jsonl").is_file():
            raise FileNotFoundError(
                f"{path} is not a built corpus folder (no train.jsonl); run `deephype corpus build`"
            )
        yield path
        return
    from deephype.corpus.build import BuildSettings, build_corpus

    with tempfile.TemporaryDirectory(prefix="deephype-corpus-") as tmp:
        out = Path(tmp) / "corpus"
        build_corpus([OWN_CORPUS], out, BuildSettings(plot=False))
        yield out


def cmd_train_lcgan(args: argparse.Namespace) -> int:
    import torch

    from deephype.generator.checkpoint import load_model
    from deephype.generator.lcgan import LCGANConfig
    from deephype.generator.lcgan_train import train_lcgan
    from deephype.generator.values import make_value, read_sentences

    if args.steps < 1:
        raise ValueError(f"--steps must be >= 1, got {args.steps}")
    if args.value == "approval" and args.decisions is None:
        from deephype.common.settings import get_settings

        args.decisions = get_settings().state_dir / "curator" / "curator.sqlite3"
        if not args.decisions.is_file():
            raise ValueError(
                f"--value approval needs the curator's decisions: no {args.decisions}; pass --decisions "
                "(curator.sqlite3 or a JSON export of GET /v1/decisions)"
            )
    loaded = load_model(args.model, args.device)
    if not loaded.model.is_vae:
        raise ValueError(f"{args.model} is a plain language model (no latent space): an LC-GAN needs a VAE")
    torch.manual_seed(args.seed)
    config = LCGANConfig(steps=args.steps, critic_steps=args.critic_steps, seed=args.seed)
    if args.distance_weight is not None:
        config.distance_weight = args.distance_weight
    if args.value == "approval":
        value = make_value("approval", condition=loaded.condition, decisions=args.decisions, seed=args.seed)
        train_lcgan(loaded, value, [], config, out_dir=args.model, progress=not args.quiet)
        return 0
    with corpus_folder(args.corpus) as corpus:
        sentences = read_sentences(corpus / "train.jsonl")
        scorer = None
        if args.value == "fluency":
            from deephype.common.settings import Settings
            from deephype.generator.candidates import independent_fluency

            scorer = independent_fluency(loaded, Settings(_env_file=None, models_dir=Path(args.model).parent))  # type: ignore[call-arg]
            if scorer is None:
                raise ValueError("the fluency value needs the independent scorer (see the warning above)")
            sentences = sentences + prior_samples(loaded, sentences, len(sentences), args.seed)
        value = make_value(
            args.value, condition=loaded.condition, corpus=sentences, seed=args.seed, fluency_scorer=scorer
        )
        train_lcgan(loaded, value, sentences, config, out_dir=args.model, progress=not args.quiet)
    return 0


def prior_samples(loaded: Any, corpus: list[Any], count: int, seed: int) -> list[Any]:
    """`count` of the model's own prior samples, each under the genres of a corpus sentence, as Sentences."""
    import torch

    from deephype.generator.candidates import NO_REPEAT_NGRAM
    from deephype.generator.sample_pretrained import NO_REPEAT_PIECES
    from deephype.generator.values import Sentence

    generator = torch.Generator(device=loaded.device).manual_seed(seed)
    out: list[Any] = []
    for start in range(0, count, 64):
        genres = [corpus[(start + i) % len(corpus)].genres for i in range(min(64, count - start))]
        z = torch.randn(len(genres), loaded.config.latent_dim, generator=generator, device=loaded.device)
        cond = torch.stack([loaded.encode_condition(g) for g in genres])
        result = loaded.decode(
            z,
            cond,
            genres,
            temperature=0.9,
            top_p=0.9,
            no_repeat_ngram=NO_REPEAT_NGRAM if loaded.arch == "lstm" else NO_REPEAT_PIECES,
            generator=generator,
        )
        out += [Sentence(text, list(g)) for text, g in zip(result.texts, genres, strict=True) if text.strip()]
    return out


def cmd_evaluate_samples(args: argparse.Namespace) -> int:
    from deephype.generator.checkpoint import load_model, write_json
    from deephype.generator.sample_eval import available_lcgans, evaluate_samples
    from deephype.generator.values import read_sentences

    loaded = load_model(args.model, args.device)
    lcgans = available_lcgans(args.model, loaded) if loaded.model.is_vae else []
    with corpus_folder(args.corpus) as corpus:
        train = read_sentences(corpus / "train.jsonl")
        held_out = [
            s
            for split in ("valid", "test")
            if (corpus / f"{split}.jsonl").is_file()
            for s in read_sentences(corpus / f"{split}.jsonl")
        ]
        report = evaluate_samples(
            loaded,
            lcgans,
            train,
            held_out,
            per_condition=args.per_condition,
            temperature=args.temperature,
            top_p=args.top_p,
            no_repeat_ngram=args.no_repeat_ngram,
            seed=args.seed,
        )
    report["model"] = str(args.model)
    if args.out is not None:
        write_json(args.out, report)
    if args.json:
        print(json.dumps(report, indent=2, sort_keys=True))
    else:
        print_table(report)
    return 0


def print_table(report: dict[str, Any]) -> None:
    keys = ["unk_rate", "repeated_bigram_rate", "filter_pass_rate", "distinct_1", "distinct_2", "self_bleu"]
    keys += ["latent_move"]
    keys += ["genre_accuracy", "loglik_per_token", "judge_ppl", "sentiment", "topic", "critic"]
    modes = report["modes"]
    shown = [k for k in keys if any(k in m["overall"] for m in modes.values())]
    print(f"{'mode':<18}" + "".join(f"{k[:14]:>15}" for k in shown))
    for mode, figures in modes.items():
        overall = figures["overall"]
        print(f"{mode:<18}" + "".join(f"{overall[k]:>15.4f}" if k in overall else f"{'-':>15}" for k in shown))
    classifier = report["classifier"]
    print(
        f"genre classifier: {classifier['trained_on']}; accuracy on {classifier['held_out_sentences']} held-out "
        f"sentences {classifier['held_out_accuracy']:.3f} (chance {classifier['chance']:.3f})"
    )
