"""The model-backed candidate source of the generator service: a song in, ranked commentary out.

    k codes z ~ N(0, I)  ──(LC-GAN actor, when on)──►  z'  ──decode, ONE batch──►  k sentences
    → drop: <unk>, a repeated bigram, a word from the profanity list, a broken placeholder, a copy of a
      corpus sentence (8+ words in a row), too long once the names are in
    → rank by  score = fluency + 0.5 * genre fit + critic   (ranking.py: fluency under an LM that is not
      the decoder, genre fit from a masked naive Bayes classifier, critic: how much the LC-GAN likes z')
    → drop near duplicates (token Jaccard > 0.7 with a better one) → fill in <artist>/<title> → top n

Deterministic for a given request.seed (the codes and the sampler's numbers come from one generator seeded
by it), whether the request is decoded alone or in a batch with other songs' (`generate_batch`).
"""

from __future__ import annotations

import hashlib
import itertools
import logging
import random
import re
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import torch
from prometheus_client import Counter

from deephype.common.contracts import ModelInfo, ScoredText, length_problem
from deephype.common.settings import Settings
from deephype.generator.approval import ApprovalScorer
from deephype.generator.checkpoint import CHECKPOINT_NAME, LoadedModel, LoadedPretrained, load_model
from deephype.generator.condition import ConditionEncoder
from deephype.generator.device import cpu_threads_per_decode
from deephype.generator.lcgan import LCGAN, PREFERENCE, StaleLCGAN, lcgan_path, load_lcgan, vae_fingerprint
from deephype.generator.ranking import FluencyScorer, Ranker, causal_lm_fluency, combined, lstm_fluency
from deephype.generator.sample_pretrained import NO_REPEAT_PIECES
from deephype.generator.source import SampleRequest
from deephype.generator.vocab import ARTIST

log = logging.getLogger("deephype.generator")

# What the decode thread does, for bench/pipeline.py's share-of-matmul-peak figure (and for operators).
DECODE_SECONDS = Counter("deephype_generator_decode_seconds_total", "Seconds spent in batched decodes", ["arch"])
DECODED_TOKENS = Counter("deephype_generator_decoded_tokens_total", "Tokens written by the decoder", ["arch"])
DECODED_ROWS = Counter("deephype_generator_decoded_rows_total", "Samples decoded", ["arch"])

NEAR_DUPLICATE_JACCARD = 0.7
_PLACEHOLDER = re.compile(r"<(?:artist|title)>", re.IGNORECASE)
TOP_P = 0.9
# The sampler never repeats a bigram (its default blocks only 3-grams): without this block ~1 sample in 8
# of the bundled-size models repeats one ("like a ... like a") and is thrown away by the filter below.
NO_REPEAT_NGRAM = 2
# A short list we wrote ourselves: words the bot must never post. Matched as whole words, any case.
PROFANITY = frozenset(
    [
        "fuck",
        "fucking",
        "fucked",
        "fucker",
        "motherfucker",
        "shit",
        "shitty",
        "bullshit",
        "bitch",
        "bitches",
        "bastard",
        "cunt",
        "dick",
        "dicks",
        "cock",
        "pussy",
        "asshole",
        "arsehole",
        "slut",
        "whore",
        "wanker",
        "twat",
        "nigger",
        "nigga",
        "faggot",
        "fag",
        "retard",
        "retarded",
        "spic",
        "kike",
        "chink",
        "tranny",
        "dyke",
        "piss",
        "pissed",
        "crap",
    ]
)


@dataclass
class Checked:
    """One decoded sample after the filters: `text` has the song's names filled in."""

    index: int
    text: str
    tokens: list[str]
    loglik_per_token: float
    critic: float
    distance: float
    rejected: str | None = None
    fluency: float | None = None  # under an independent LM (ranking.py); None: no ranker
    genre_fit: float = 0.0
    approval_bonus: float = 0.0  # weight * P(the curator approves), from a learned version (approval.py)

    @property
    def score(self) -> float:
        if self.fluency is None:
            return self.loglik_per_token + self.critic + self.approval_bonus
        return combined(self.fluency, self.genre_fit, self.critic) + self.approval_bonus


class ModelCandidateSource:
    """The trained VAE (+ LC-GAN) behind the CandidateSource protocol (source.py)."""

    def __init__(
        self,
        loaded: LoadedModel | LoadedPretrained,
        *,
        lcgan: LCGAN | None = None,
        fallback: LCGAN | None = None,
        samples: int = 32,
        temperature: float = 0.9,
        use_lcgan: bool = True,
        info: ModelInfo | None = None,
        ranker: Ranker | None = None,
        approval: ApprovalScorer | None = None,
    ) -> None:
        if not loaded.model.is_vae and lcgan is not None:
            raise ValueError("an LC-GAN needs a VAE; this model has no latent space")
        self.loaded = loaded
        self.lcgan = lcgan
        # When the main LC-GAN cannot steer a song (genre value, no known genre), the realism one may.
        self.fallback = fallback
        self.samples = samples
        self.temperature = temperature
        self.use_lcgan = use_lcgan
        self.info = info or ModelInfo(name="deephype-vae", version="unversioned")
        self.ranker = ranker
        self.approval = approval

    @classmethod
    def load(cls, model_dir: Path, settings: Settings) -> ModelCandidateSource:
        model_dir = Path(model_dir)
        loaded = load_model(model_dir, settings.generator_device)
        if loaded.device.type == "cpu":
            # With micro-batching the decode threads decode (batching.py); without, every handler thread does.
            batching = settings.generator_batch_size > 1
            decoders = settings.generator_decode_threads if batching else settings.handler_threads
            threads = cpu_threads_per_decode(settings.generator_torch_threads, decoders)
            torch.set_num_threads(threads)  # process-wide: this process serves one model
            log.info("decoding on the CPU with %d torch thread(s) per handler thread", threads)
        lcgans: list[LCGAN] = []
        if loaded.model.is_vae:
            fingerprint = vae_fingerprint(loaded.model)
            for value in PREFERENCE:
                path = lcgan_path(model_dir, value)
                if not path.is_file():
                    continue
                try:
                    lcgans.append(load_lcgan(path, loaded.config.latent_dim, loaded.device, vae=fingerprint))
                except StaleLCGAN as exc:
                    # Serving the plain VAE beats steering by a map of another model's latent space.
                    log.warning("not using %s", exc)
        lcgan = lcgans[0] if lcgans else None
        # Realism steps in when the preferred value cannot steer a song (a genre LC-GAN, no known genre).
        fallback = next((lc for lc in lcgans[1:] if lc.value == "realism"), None)
        ranker = Ranker(independent_fluency(loaded, settings)) if settings.generator_rank else None
        name = f"vae:{model_dir.name}" + (f"+lcgan-{lcgan.value}" if lcgan else "")
        files = [model_dir / CHECKPOINT_NAME] + ([lcgan_path(model_dir, lcgan.value)] if lcgan else [])
        log.info("generator model %s (%s)", name, ", ".join(str(f) for f in files))
        return cls(
            loaded,
            lcgan=lcgan,
            fallback=fallback,
            samples=settings.generator_samples,
            temperature=settings.generator_temperature,
            use_lcgan=settings.generator_use_lcgan,
            info=ModelInfo(name=name, version=_fingerprint(files)),
            ranker=ranker,
        )

    def ready(self) -> bool:
        return True

    def generate(self, request: SampleRequest) -> list[ScoredText]:
        result = self.generate_batch([request])[0]
        if isinstance(result, Exception):
            raise result
        return result

    def generate_batch(self, requests: Sequence[SampleRequest]) -> list[list[ScoredText] | Exception]:
        """Each request's candidates (or the error that request alone met), all requests' samples decoded
        as ONE batch. A request's candidates depend on its own seed only, never on its batch-mates."""
        try:
            sampled = self.sample_batch(requests)
        except Exception as exc:
            if len(requests) == 1:
                return [exc]
            # Something in the shared batch failed: each request alone, so only a bad one fails.
            log.warning("a batch of %d requests failed (%s); decoding each alone", len(requests), exc)
            sampled = [self._sample_alone(request) for request in requests]
        results: list[list[ScoredText] | Exception] = []
        for request, checked in zip(requests, sampled, strict=True):
            if isinstance(checked, Exception):
                results.append(checked)
                continue
            try:
                results.append(self.pick(request, checked))
            except Exception as exc:  # one song's bad luck is not its batch-mates'
                results.append(exc)
        return results

    def pick(self, request: SampleRequest, checked: list[Checked]) -> list[ScoredText]:
        """The best request.n survivors, near duplicates of a better one left out."""
        kept: list[Checked] = []
        for candidate in sorted((c for c in checked if c.rejected is None), key=lambda c: -c.score):
            if any(jaccard(candidate.tokens, other.tokens) > NEAR_DUPLICATE_JACCARD for other in kept):
                continue
            kept.append(candidate)
            if len(kept) == request.n:
                break
        return [
            ScoredText(
                text=c.text,
                score=round(c.score, 6),
                model_version=self.info.version,
                scores={
                    "loglik_per_token": round(c.loglik_per_token, 6),
                    **(
                        {"fluency": round(c.fluency, 6), "genre_fit": round(c.genre_fit, 6)}
                        if c.fluency is not None
                        else {}
                    ),
                    "critic": round(c.critic, 6),
                    **({"approval_bonus": round(c.approval_bonus, 6)} if self.approval is not None else {}),
                    "length": float(len(c.text)),
                    "latent_move": round(c.distance, 6),
                },
            )
            for c in kept
        ]

    def _sample_alone(self, request: SampleRequest) -> list[Checked] | Exception:
        try:
            return self.sample_batch([request])[0]
        except Exception as exc:
            return exc

    def sample(self, request: SampleRequest) -> list[Checked]:
        """All k samples of one request, decoded in one batch, each checked (rejected ones say why)."""
        checked = self.sample_batch([request])[0]
        if isinstance(checked, Exception):
            raise checked
        return checked

    @torch.inference_mode()
    def sample_batch(self, requests: Sequence[SampleRequest]) -> list[list[Checked] | Exception]:
        """Every request's k samples in ONE decode batch (and one LC-GAN pass, one ranking pass).

        Each request draws its codes and its sampler's random numbers from its own seeded generator, so
        its samples are the same alone or beside any others. A request that fails to prepare (or whose
        rows fail afterwards) gets its exception; the others go on."""
        loaded = self.loaded
        max_len = loaded.config.max_len
        plans: list[_Plan | Exception] = []
        for request in requests:
            try:
                plans.append(self._plan(request, max_len))
            except Exception as exc:
                log.warning("could not prepare a request for %s: %s", request.song.title, exc)
                plans.append(exc)
        ready = [p for p in plans if isinstance(p, _Plan)]
        if not ready:
            return list(plans)  # type: ignore[arg-type]
        z = torch.cat([p.z for p in ready])
        moved, critic = self.steer_rows(ready)
        temperature = torch.cat([torch.full((p.k, 1), p.temperature, device=z.device) for p in ready])
        started = time.perf_counter()
        result = loaded.decode(
            moved,
            torch.cat([p.cond for p in ready]),
            [list(p.request.song.genres) for p in ready for _ in range(p.k)],
            max_len=max_len,
            temperature=temperature,
            top_p=TOP_P,
            no_repeat_ngram=NO_REPEAT_NGRAM if loaded.arch == "lstm" else NO_REPEAT_PIECES,
            uniforms=torch.cat([p.uniforms for p in ready]),
        )
        written = int((result.lengths + 1).clamp(max=max_len).sum())  # words + <eos>, as bench/decode.py counts
        DECODE_SECONDS.labels(loaded.arch).inc(time.perf_counter() - started)
        DECODED_TOKENS.labels(loaded.arch).inc(written)
        DECODED_ROWS.labels(loaded.arch).inc(z.size(0))
        distance = (moved - z).norm(dim=1).tolist()
        loglik = (result.log_likelihood / (result.lengths + 1).float()).tolist()  # <eos> counts as a token
        words = loaded.words(result)
        per_plan: dict[int, list[Checked]] = {}
        row = 0
        for plan in ready:
            song = plan.request.song
            checked = []
            for _ in range(plan.k):
                text = fill_placeholders(result.texts[row], song.artist, song.title)
                checked.append(
                    Checked(
                        index=row,
                        text=text,
                        tokens=words[row],
                        loglik_per_token=loglik[row],
                        critic=critic[row],
                        distance=distance[row],
                        rejected=rejection(words[row], text, plan.request.platform),
                    )
                )
                row += 1
            per_plan[id(plan)] = checked
        if self.ranker is not None:
            self.rank_rows([(p.request.song.genres, per_plan[id(p)]) for p in ready], result.texts)
        if self.approval is not None:
            alive = [c for checked in per_plan.values() for c in checked if c.rejected is None]
            for candidate, p in zip(alive, self.approval.probabilities([c.text for c in alive]), strict=True):
                candidate.approval_bonus = self.approval.weight * p
        for checked in per_plan.values():
            for position, candidate in enumerate(checked):
                candidate.index = position  # within its own request again
        return [p if isinstance(p, Exception) else per_plan[id(p)] for p in plans]

    def _plan(self, request: SampleRequest, max_len: int) -> _Plan:
        loaded, device = self.loaded, self.loaded.device
        seed = request.seed if request.seed is not None else random.SystemRandom().randrange(2**63)
        generator = torch.Generator(device=device).manual_seed(seed)
        k = max(self.samples, request.n)
        song = request.song
        # Unknown genres set the model's unknown-genre flag and are otherwise ignored (never an error).
        # A model trained without audio features has untrained weights for them: leave them out (masked).
        audio = song.audio_features if loaded.metrics.get("audio_feature_rows", 0) else None
        cond = loaded.encode_condition(song.genres, audio).expand(k, -1)
        z = torch.randn(k, max(loaded.config.latent_dim, 0), generator=generator, device=device)
        uniforms = torch.rand(k, max_len, generator=generator, device=device)
        use = self.use_lcgan if request.use_lcgan is None else request.use_lcgan
        return _Plan(request, k, cond, z, uniforms, request.temperature or self.temperature, use)

    def rank(self, checked: list[Checked], raw_texts: list[str], genres: list[str]) -> None:
        """Independent fluency and genre fit for the samples that passed the filters; copies are dropped."""
        self.rank_rows([(genres, checked)], raw_texts)

    def rank_rows(self, songs: list[tuple[list[str], list[Checked]]], raw_texts: list[str]) -> None:
        """`rank` for several songs' samples in one pass of the fluency LM (raw_texts by Checked.index)."""
        assert self.ranker is not None
        alive: list[Checked] = []
        genres: list[list[str]] = []
        families: list[str | None] = []
        for song_genres, checked in songs:
            family = next((f for g in song_genres if (f := self.loaded.condition.resolve(g)[1])), None)
            for candidate in checked:
                if candidate.rejected is None:
                    alive.append(candidate)
                    genres.append(song_genres)
                    families.append(family)
        if not alive:
            return
        scores = self.ranker.scores_rows([raw_texts[c.index] for c in alive], genres, families)
        for position, candidate in enumerate(alive):
            candidate.fluency = scores["fluency"][position]
            candidate.genre_fit = scores["genre_fit"][position]
            if scores["copy"][position]:
                candidate.rejected = "copies the corpus"

    def steer(self, z: torch.Tensor, genres: list[str], use_lcgan: bool | None) -> tuple[torch.Tensor, list[float]]:
        """Codes after the actor (or unchanged) and the critic's value of each (0 without an LC-GAN)."""
        use = self.use_lcgan if use_lcgan is None else use_lcgan
        lcgan, names = self.steering(genres)
        if lcgan is None or names is None:
            return z, [0.0] * z.size(0)
        a = lcgan.attributes(names, z.device).expand(z.size(0), -1)
        moved = lcgan.actor(z, a) if use else z
        return moved, lcgan.critic.value(moved, a).tolist()

    def steering(self, genres: list[str]) -> tuple[LCGAN | None, list[str] | None]:
        """The LC-GAN that steers this song and the attribute names it steers to (None, None: none can)."""
        for lcgan in (self.lcgan, self.fallback):
            if lcgan is None:
                continue
            names = attribute_request(lcgan, genres, self.loaded.condition)
            if names is not None:
                return lcgan, names
        return None, None

    def steer_rows(self, plans: list[_Plan]) -> tuple[torch.Tensor, list[float]]:
        """`steer` for several requests at once: one actor and one critic pass per LC-GAN in use."""
        z = torch.cat([p.z for p in plans])
        moved = z.clone()
        critic = torch.zeros(z.size(0), device=z.device)
        groups: dict[int, tuple[LCGAN, list[tuple[int, int, list[str], bool]]]] = {}
        start = 0
        for plan in plans:
            lcgan, names = self.steering(plan.request.song.genres)
            if lcgan is not None and names is not None:
                groups.setdefault(id(lcgan), (lcgan, []))[1].append((start, plan.k, names, plan.use_lcgan))
            start += plan.k
        for lcgan, spans in groups.values():
            rows = torch.cat([torch.arange(s, s + k, device=z.device) for s, k, _, _ in spans])
            a = torch.cat([lcgan.attributes(names, z.device).expand(k, -1) for _, k, names, _ in spans])
            use = torch.cat([torch.full((k, 1), on, device=z.device) for _, k, _, on in spans])
            codes = z[rows]
            steered = torch.where(use, lcgan.actor(codes, a), codes)
            moved[rows] = steered
            critic[rows] = lcgan.critic.value(steered, a)
        return moved, critic.tolist()


@dataclass
class _Plan:
    """One request's share of a decode batch: its k codes, condition and sampler numbers (all seeded)."""

    request: SampleRequest
    k: int
    cond: torch.Tensor
    z: torch.Tensor
    uniforms: torch.Tensor
    temperature: float
    use_lcgan: bool


def attribute_request(lcgan: LCGAN, genres: list[str], condition: ConditionEncoder) -> list[str] | None:
    """Attribute names to steer to; None when this LC-GAN cannot steer the song (a genre value, no family)."""
    if not lcgan.attribute_names:
        return []
    if lcgan.value == "genre":
        # Fine genres map to families through the VAE's condition vocabulary; unknown ones are ignored.
        families = {condition.resolve(g)[1] for g in genres}
        return [f for f in lcgan.attribute_names if f in families] or None
    return None


def rejection(tokens: list[str], text: str, platform: str | None) -> str | None:
    """Why a sample may not be a candidate; None when it may. No length check without a platform."""
    if not tokens:
        return "empty"
    if "<unk>" in tokens:
        return "unk"
    if "<" in tokens or ">" in tokens:
        # A garbled placeholder ("<titl"): judged on the model's words, so a band called "<3" is no problem.
        return "broken placeholder"
    if has_repeated_bigram(tokens):
        return "repeated bigram"
    if any(a == b for a, b in itertools.pairwise(tokens)):
        return "repeated word"  # "is is", or the band's name twice in a row
    # The model's own words only: a band may have a rude name, and that is not the bot talking.
    if set(tokens) & PROFANITY:
        return "profanity"
    if platform is not None and length_problem(text, platform):
        return "too long"
    return None


def has_repeated_bigram(tokens: list[str]) -> bool:
    bigrams = list(itertools.pairwise(tokens))
    return len(bigrams) != len(set(bigrams))


def jaccard(a: list[str], b: list[str]) -> float:
    sa, sb = set(a), set(b)
    return len(sa & sb) / len(sa | sb) if sa or sb else 1.0


def fill_placeholders(text: str, artist: str, title: str) -> str:
    """The song's names in place of <artist> / <title> (any case: a pretrained decoder may write <Title>)."""
    return _PLACEHOLDER.sub(lambda m: artist.strip() if m.group(0).lower() == ARTIST else title.strip(), text)


def independent_fluency(loaded: LoadedModel | LoadedPretrained, settings: Settings) -> FluencyScorer | None:
    """The LM that scores this model's samples: never the model's own decoder (ranking.py). None (with a
    warning) when that LM is not at hand: the ranking then uses the decoder's own likelihood."""
    try:
        if loaded.arch == "pretrained":
            lstm_dir = Path(settings.models_dir) / settings.generator_fluency_model
            return lstm_fluency(load_model(lstm_dir, str(loaded.device)))  # type: ignore[arg-type]
        from deephype.generator.pretrained import load_pretrained_lm

        lm, tokenizer = load_pretrained_lm()
        return causal_lm_fluency(lm.to(loaded.device).eval(), tokenizer)  # on the GPU too when the decoder is
    except (FileNotFoundError, RuntimeError, ValueError) as exc:
        log.warning("no independent fluency scorer (%s): ranking by the decoder's own likelihood", exc)
        return None


def _fingerprint(files: list[Path]) -> str:
    digest = hashlib.sha256()
    for path in files:
        with path.open("rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
    return digest.hexdigest()[:12]
