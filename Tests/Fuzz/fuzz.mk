# libFuzzer targets (Tests/Fuzz). Included by the main Makefile.
#   make fuzz                    # each target for 60 s
#   make fuzz FUZZ_SECONDS=600   # longer; make fuzz-ci is 30 s each (CI)
#   make fuzz FUZZ_TARGETS=json  # one target
# http:   BerthNet's HTTP/1.1 parser, built standalone with swiftc from the parser's pure files.
# json:   JSONParser, JSONTape and the webhook's review path against each other and Foundation.
# config: the YAML reader, BerthConfig and the provisioner section, berth mutate's policy.
# json and config are package targets (Tests/Fuzz/JSONReader, Tests/Fuzz/ConfigReader) built in a
# scratch path of their own with the fuzzer and address sanitizer and -D BERTH_FUZZ, so the normal
# debug and release builds are untouched. Working corpora, crashes and logs: .build/fuzz/<target>.
FUZZ_SECONDS ?= 60
FUZZ_TARGETS ?= http json config
FUZZ_MAX_LEN ?= 16384
FUZZ_PARSER_SOURCES = Sources/BerthNet/HTTPHeaders.swift Sources/BerthNet/HTTPRequest.swift \
	Sources/BerthNet/HTTPParseError.swift Sources/BerthNet/HTTPParser.swift
FUZZ_HTTP_BINARY = .build/fuzz/http/fuzz-http
# `--sanitize=fuzzer` makes SwiftPM link libFuzzer's main and instrument the C targets (libyaml);
# the address sanitizer goes in as one `-sanitize=fuzzer,address` for Swift, because with SwiftPM's
# two separate `--sanitize` flags a clean build's Swift modules got only one of them (no coverage:
# libFuzzer found nothing new). Check: the binary reports tens of thousands of "inline 8-bit counters".
FUZZ_SWIFTPM = $(SWIFT) build -c release --scratch-path .build/fuzz/swiftpm --sanitize=fuzzer \
	-Xswiftc -sanitize=fuzzer,address -Xcc -fsanitize=address -Xswiftc -DBERTH_FUZZ
FUZZ_PACKAGE_BIN = .build/fuzz/swiftpm/release

.PHONY: fuzz fuzz-ci fuzz-build fuzz-build-http fuzz-build-json fuzz-build-config
fuzz-build: $(addprefix fuzz-build-,$(FUZZ_TARGETS)) ## Build the libFuzzer binaries (http, json, config) under .build/fuzz.

fuzz-build-http: $(FUZZ_HTTP_BINARY)
$(FUZZ_HTTP_BINARY): $(FUZZ_PARSER_SOURCES) Tests/Fuzz/HTTPParserFuzz.swift
	@mkdir -p $(dir $@)
	swiftc -sanitize=fuzzer,address -parse-as-library -O -g $(FUZZ_PARSER_SOURCES) Tests/Fuzz/HTTPParserFuzz.swift -o $@

fuzz-build-json:
	$(FUZZ_SWIFTPM) --product berth-fuzz-json
fuzz-build-config:
	$(FUZZ_SWIFTPM) --product berth-fuzz-config

# Every target runs even when one fails; the summary has one line per target; non-zero on any failure.
fuzz: fuzz-build ## libFuzzer on the HTTP parser, the JSON readers and the YAML/config readers, FUZZ_SECONDS (60) each; crashes saved under .build/fuzz.
	@failed=0; for t in $(FUZZ_TARGETS); do \
	  case $$t in http) bin=$(FUZZ_HTTP_BINARY); len=8192;; *) bin=$(FUZZ_PACKAGE_BIN)/berth-fuzz-$$t; len=$(FUZZ_MAX_LEN);; esac; \
	  bash Tests/Fuzz/run-fuzz.sh $$t $$bin $(FUZZ_SECONDS) $$len || failed=1; \
	done; exit $$failed

fuzz-ci: ## make fuzz with 30 s per target (what CI runs).
	@$(MAKE) --no-print-directory fuzz FUZZ_SECONDS=30
