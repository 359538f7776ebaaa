# adrec: `make demo` and `make test` are the two commands; both install what is missing first.
PRESET ?= release
BUILD := build/$(PRESET)
# Warnings are errors in every build made through this Makefile, CI or not: one set of flags, so
# ccache's objects of a development build serve CI's clean clone and the reverse.
CMAKE_FLAGS := -DADREC_WERROR=ON
DEMO_DIR ?= out/demo
JOBS ?= $(shell nproc)

.PHONY: all setup configure build demo test test-fast test-asan test-tsan fuzz fuzz-smoke bench clean help

all: build

help:
	@echo "make demo       set up, build, generate the synthetic ad world, show stats and baselines"
	@echo "make test       set up, build, run every test (unit, end-to-end, slow, ASan+UBSan all modules, TSan threaded code, fuzz smoke)"
	@echo "make test-fast  the same without the suites labelled slow and without ASan"
	@echo "make fuzz       build the libFuzzer targets (clang) into build/fuzz"
	@echo "make bench      build and run the benchmarks (figures go to docs/BENCHMARKS.md by hand)"

setup:
	@scripts/setup

configure: setup
	@test -f $(BUILD)/build.ninja || cmake --preset $(PRESET) $(CMAKE_FLAGS) >/dev/null

build: configure
	@cmake --build $(BUILD) -j $(JOBS)

demo: build
	@scripts/demo $(BUILD)/apps/adrec/adrec $(DEMO_DIR)

test: build test-asan test-tsan fuzz-smoke
	@ctest --test-dir $(BUILD) --output-on-failure -j $(JOBS)

test-fast: build
	@ctest --test-dir $(BUILD) --output-on-failure -j $(JOBS) -LE slow

# Every module's fast tests (and the end-to-end CLI tests, on an instrumented binary) under
# AddressSanitizer + UBSan; any finding fails its test (-fno-sanitize-recover).
ASAN_TESTS := adrec_core_test adrec_data_test adrec_eval_test adrec_index_test adrec_serve_test adrec_online_test adrec_creative_test adrec_tensor_test adrec_text_test \
	adrec_embedding_test adrec_models_test adrec_train_test adrec_serve_pipeline_test adrec_cli_test
# libtorch's allocations are not instrumented: its process-lifetime caches are not leaks of ours.
ASAN_ENV := ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 LSAN_OPTIONS=suppressions=$(CURDIR)/cmake/lsan.supp
# Whole training runs whose time goes to libtorch's uninstrumented kernels (2-3 minutes each
# under ASan): the release run has them, and their own code is under ASan in its unit tests
# (Federated.*, SecureAggregation.*, DpSgd.*, losses, the HSTU ranker's model tests).
ASAN_SKIP := _NOT_BUILT$$|FederatedAveragingWithSecureAggregation|DistilsATeacherBundle|HstuRankerTraining\.LearnsFromTheHistory|DpSgdTrainsWithinItsBudget|FrappeLibFmImports
test-asan: setup
	@test -f build/asan/build.ninja || cmake --preset asan $(CMAKE_FLAGS) >/dev/null
	@cmake --build build/asan -j $(JOBS) --target $(ASAN_TESTS)
	@$(ASAN_ENV) ctest --test-dir build/asan --output-on-failure -j $(JOBS) -LE slow -E '$(ASAN_SKIP)'

# The threaded code under ThreadSanitizer: the thread pool, BatchStream's workers, the parallel
# dataset reader, the threaded full-ranking evaluation, the HTTP server's I/O and handler threads
# and the event store's concurrent appends (RocksDB and a started redis-server).
TSAN_TESTS := adrec_core_test adrec_data_test adrec_eval_test adrec_serve_test
test-tsan: setup
	@test -f build/tsan/build.ninja || cmake --preset tsan $(CMAKE_FLAGS) >/dev/null
	@cmake --build build/tsan -j $(JOBS) --target $(TSAN_TESTS)
	@TSAN_OPTIONS=halt_on_error=1:suppressions=$(CURDIR)/cmake/tsan.supp ctest --test-dir build/tsan --output-on-failure -j $(JOBS) -L 'core|data|eval|serve' -LE slow \
		-R 'ThreadPool|BatchStream|Dataset|Ranking|Synthetic|HttpServer|EventStore' -E '_NOT_BUILT$$'

fuzz: setup
	@test -f build/fuzz/build.ninja || cmake --preset fuzz >/dev/null
	@cmake --build build/fuzz -j $(JOBS)

# Replays each fuzz target over its seed corpus and fuzzes it for 4 s: a regression check,
# not the long runs recorded in docs/BENCHMARKS.md.
fuzz-smoke: fuzz
	@scripts/fuzz-smoke build/fuzz 4 2

bench: build
	@scripts/bench $(BUILD)

clean:
	rm -rf build out
