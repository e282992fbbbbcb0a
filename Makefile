# edgeseg: everything the project needs is installed from here (and pyproject.toml).
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
PIP    := $(PY) -m pip
STAMP  := $(VENV)/.installed
PYTEST_ARGS ?=
CPP_BUILD ?= build/cpp
# Debian packages the C++ runtime builds against (headers only; OpenVINO comes from the wheel)
CPP_DEBS := cmake g++ nlohmann-json3-dev libstb-dev
GENERATOR := $(if $(shell command -v ninja),-G Ninja,)

.PHONY: install demo test test-slow lint models readme clean cpp cpp-deps modelopt-env trt-cpp-check gpu-check serve-deps

$(PY):
	$(PYTHON) -m venv $(VENV)

# torch is pinned to the CPU wheel first so the range in pyproject.toml installs nothing
# heavier (an open range resolves to a multi-GB CUDA build).
$(STAMP): pyproject.toml | $(PY)
	$(PIP) install "torch==2.13.0"
	$(PIP) install -e ".[dev]"
	$(MAKE) serve-deps
	touch $(STAMP)

# Triton Inference Server for the serving tests (marked slow) and benchmarks/serving.py: the
# nvidia-pytriton wheel's tritonserver binary and Python backend (x86-64 Linux, glibc 2.35+).
# Without its dependencies: its numpy<2 pin is for pytriton's Python API, which edgeseg does
# not use. Where the wheel does not install, the server tests skip.
PYTRITON_VERSION ?= 0.7.0
serve-deps: | $(PY)
	$(PIP) install --no-deps "nvidia-pytriton==$(PYTRITON_VERSION)" || \
	  echo "nvidia-pytriton $(PYTRITON_VERSION) does not install here: the Triton server tests skip"

install: $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/edgeseg demo

models: $(STAMP)
	$(VENV)/bin/edgeseg models

# The C++ runtime (cpp/): its Debian build dependencies, installed when missing (root or
# sudo), then a CMake build against the openvino wheel in the venv.
cpp-deps:
	@missing=$$(for p in $(CPP_DEBS); do dpkg -s $$p >/dev/null 2>&1 || echo $$p; done); \
	if [ -n "$$missing" ]; then \
	  echo "installing $$missing (apt)"; \
	  if [ "$$(id -u)" = 0 ]; then SUDO=; else SUDO=sudo; fi; \
	  $$SUDO apt-get install -y -q $$missing >/dev/null 2>&1 || \
	  { $$SUDO apt-get update -q >/dev/null && $$SUDO apt-get install -y -q $$missing >/dev/null; } || \
	  { echo "could not install $$missing: install them with apt, then rerun"; exit 1; }; \
	fi

cpp: $(STAMP) cpp-deps
	cmake -S cpp -B $(CPP_BUILD) $(GENERATOR) -DCMAKE_BUILD_TYPE=Release \
	  -DOpenVINO_DIR="$$($(PY) -c 'import openvino, os; print(os.path.join(os.path.dirname(openvino.__file__), "cmake"))')"
	cmake --build $(CPP_BUILD) -j 2

# TensorRT conformance without TensorRT: the C++ TensorRT code compiled against the public
# headers of 10.3.0 (JetPack 6), 10.13.3, 10.16 and 11.1 (../shared/tensorrt, or
# EDGESEG_TRT_SOURCES), CUDA headers from the nvidia-cuda-runtime/-crt wheels.
trt-cpp-check: $(STAMP)
	$(PY) scripts/trt_cpp_check.py

test: $(STAMP) cpp trt-cpp-check
	EDGESEG_TEST_PYTHON=$(abspath $(PY)) ctest --test-dir $(CPP_BUILD) --output-on-failure
	$(PY) -m pytest -n 2 $(PYTEST_ARGS)

test-slow: $(STAMP)
	$(PY) -m pytest -m slow $(PYTEST_ARGS)

# ruff, then the layer contracts in pyproject.toml (imports only point down; only
# backends/<engine>/ imports that engine), then generated files that must be current.
lint: $(STAMP)
	$(VENV)/bin/ruff check edgeseg tests scripts benchmarks
	$(VENV)/bin/lint-imports --no-cache

# NVIDIA Model Optimizer for benchmarks/int8_vs_modelopt.py only, in its own venv: it pins
# onnx and onnxruntime-gpu versions that differ from ours (its CPU provider calibrates here).
MODELOPT_VENV ?= .venv-modelopt
MODELOPT_VERSION ?= 0.47.0
modelopt-env: $(MODELOPT_VENV)/.installed
$(MODELOPT_VENV)/.installed:
	$(PYTHON) -m venv $(MODELOPT_VENV)
	$(MODELOPT_VENV)/bin/pip install "nvidia-modelopt[onnx]==$(MODELOPT_VERSION)"
	touch $@

clean:
	rm -rf $(VENV) $(MODELOPT_VENV) build *.egg-info .pytest_cache

readme: $(STAMP)
	$(PY) scripts/update_readme.py

# The GPU check (scripts/gpu_check.py): every model at 1024x2048 on one NVIDIA GPU, under 8
# minutes; without a GPU it says so and exits 0. Not $(STAMP): that installs the CPU torch
# wheel, and the GPU machine brings its own PyTorch (CUDA) and onnxruntime-gpu. The venv's
# python when there is one, else $(PYTHON), with this checkout importable; flags in
# GPU_CHECK_ARGS (e.g. GPU_CHECK_ARGS="--budget-s 900 --out /tmp/results").
gpu-check:
	PYTHONPATH=$(CURDIR)$${PYTHONPATH:+:$$PYTHONPATH} \
	  $(if $(wildcard $(PY)),$(PY),$(PYTHON)) scripts/gpu_check.py $(GPU_CHECK_ARGS)
