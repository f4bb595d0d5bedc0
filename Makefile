# lockstep: a thin wrapper over CMake. `make demo` and `make test` are the two
# set-up commands of the README: each installs what is missing first.
BUILD      ?= build
TEST_BUILD ?= build-test
JOBS       ?= $(shell nproc)
CMAKE_FLAGS ?=

.PHONY: all deps build demo test test-xen bench bench-xen diagrams fuzz soak clean

all: build

deps:
	@bash scripts/install-deps.sh

$(BUILD)/CMakeCache.txt:
	cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=Release $(CMAKE_FLAGS)

build: deps $(BUILD)/CMakeCache.txt
	cmake --build $(BUILD) -j$(JOBS)

demo: build
	@bash scripts/demo.sh $(BUILD)

# Tests run in a sanitizer build of their own (ASan + UBSan). The nested
# Xen's image is set up in the background meanwhile, where it can run.
test: deps
	@bash scripts/xen/run.sh prefetch || true
	cmake -S . -B $(TEST_BUILD) -DCMAKE_BUILD_TYPE=Debug -DLOCKSTEP_SANITIZE=ON \
	      -DLOCKSTEP_FAULT_HOOKS=ON $(CMAKE_FLAGS)
	cmake --build $(TEST_BUILD) -j$(JOBS)
	cd $(TEST_BUILD) && ctest --output-on-failure -j$(JOBS) --timeout 600

# libFuzzer harnesses (test/fuzz/), each for FUZZ_SECONDS, in a clang build of
# their own; the corpus each grows stays in $(FUZZ_BUILD)/corpus/ for the next run.
FUZZ_BUILD   ?= build-fuzz
FUZZ_SECONDS ?= 180
FUZZ_HARNESSES ?= $(patsubst test/fuzz/fuzz_%.c,%,$(filter-out test/fuzz/fuzz_common.c,$(wildcard test/fuzz/fuzz_*.c)))

fuzz: deps
	bash test/fuzz/build.sh $(CURDIR) $(FUZZ_BUILD)
	@failed=; for h in $(FUZZ_HARNESSES); do \
	  bash test/fuzz/run.sh $(CURDIR)/$(FUZZ_BUILD) $$h $(FUZZ_SECONDS) || failed="$$failed $$h"; \
	done; if [ -n "$$failed" ]; then echo "fuzz: failed:$$failed" >&2; exit 1; fi

# Soak (not in make test): 10,000 save/restore cycles and 1,000 migrations of
# a small guest, flat within a tolerance (test/soak/soak.py; SOAK_SAVES,
# SOAK_MIGRATIONS, SOAK_EVERY, SOAK_RSS_TOLERANCE_KIB), then memcheck over a
# sample (test/soak/valgrind.sh). Its own build: no sanitizers (ASan's
# quarantine grows RSS by design; valgrind excludes ASan), with the hooks.
SOAK_BUILD ?= build-soak
soak: deps
	cmake -S . -B $(SOAK_BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo -DLOCKSTEP_FAULT_HOOKS=ON \
	      -DLOCKSTEP_TESTS=OFF $(CMAKE_FLAGS)
	cmake --build $(SOAK_BUILD) -j$(JOBS) --target lockstep lockstep-simd
	LOCKSTEP_BIN=$(CURDIR)/$(SOAK_BUILD)/cli/lockstep \
	  LOCKSTEP_SIMD=$(CURDIR)/$(SOAK_BUILD)/backends/sim/lockstep-simd \
	  nice python3 test/soak/soak.py
	LOCKSTEP_BIN=$(CURDIR)/$(SOAK_BUILD)/cli/lockstep \
	  LOCKSTEP_SIMD=$(CURDIR)/$(SOAK_BUILD)/backends/sim/lockstep-simd \
	  nice bash test/soak/valgrind.sh

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
	rm -rf $(BUILD) $(TEST_BUILD) $(FUZZ_BUILD)
