# lockstep: a thin wrapper over CMake. `make demo` and `make test` are the two
# set-up commands of the README: each installs what is missing first.
BUILD      ?= build
TEST_BUILD ?= build-test
JOBS       ?= $(shell nproc)
CMAKE_FLAGS ?=

.PHONY: all deps build demo test test-xen bench bench-xen diagrams clean

all: build

deps:
	@bash scripts/install-deps.sh

$(BUILD)/CMakeCache.txt:
	cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=Release $(CMAKE_FLAGS)

build: deps $(BUILD)/CMakeCache.txt
	cmake --build $(BUILD) -j$(JOBS)

demo: build
	@bash scripts/demo.sh $(BUILD)

# Tests run in a sanitizer build of their own (ASan + UBSan).
test: deps
	cmake -S . -B $(TEST_BUILD) -DCMAKE_BUILD_TYPE=Debug -DLOCKSTEP_SANITIZE=ON $(CMAKE_FLAGS)
	cmake --build $(TEST_BUILD) -j$(JOBS)
	cd $(TEST_BUILD) && ctest --output-on-failure -j$(JOBS) --timeout 600

bench: build
	@bash scripts/bench.sh $(BUILD)

# Real Xen 4.17 under QEMU (TCG), lockstep inside dom0 (scripts/xen/run.sh).
test-xen: deps
	@bash scripts/xen/run.sh test

bench-xen: deps
	@bash scripts/xen/run.sh bench

diagrams: build
	cmake --build $(BUILD) --target diagrams
	@echo "diagrams: $(BUILD)/diagrams/*.svg"

clean:
	rm -rf $(BUILD) $(TEST_BUILD)
