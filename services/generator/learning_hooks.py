"""The generator's background jobs around learned versions, started once its model is loaded; kept apart
from learn.py so that app.py imports nothing heavy (torch) at start."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from deephype.common.settings import Settings
from deephype.generator.versions import SwappableSource, Watcher


def start_learning(settings: Settings, source: Any, base_model: Path) -> list[Watcher]:
    """A watcher that swaps to a newly promoted version; with learn_every_decisions > 0 also the generator's
    own learning after every N new decisions. Nothing for a source that is not versioned."""
    if not isinstance(source, SwappableSource):
        return []
    watchers = [Watcher("generator-versions", source.check, settings.learn_poll_seconds)]
    if settings.learn_every_decisions > 0:
        from deephype.generator.learn import AutoLearner, LearnOptions

        learner = AutoLearner(settings, base_model, source.store, LearnOptions())

        def learn_then_swap() -> None:
            if learner.step() is not None:
                source.check()

        watchers.append(Watcher("generator-learning", learn_then_swap, settings.learn_poll_seconds))
    for watcher in watchers:
        watcher.start()
    return watchers
