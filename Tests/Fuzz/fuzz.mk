# libFuzzer target for BerthNet's HTTP/1.1 parser. Included by the main Makefile.
#   make fuzz                  # 60 s
#   make fuzz FUZZ_SECONDS=600
FUZZ_SECONDS ?= 60
FUZZ_PARSER_SOURCES = Sources/BerthNet/HTTPHeaders.swift Sources/BerthNet/HTTPRequest.swift \
	Sources/BerthNet/HTTPParseError.swift Sources/BerthNet/HTTPParser.swift
FUZZ_BINARY = .build/fuzz-http
FUZZ_WORK_CORPUS = .build/fuzz-corpus

.PHONY: fuzz fuzz-build
fuzz-build: $(FUZZ_BINARY) ## Build the libFuzzer binary for the HTTP parser.

$(FUZZ_BINARY): $(FUZZ_PARSER_SOURCES) Tests/Fuzz/HTTPParserFuzz.swift
	mkdir -p .build
	swiftc -sanitize=fuzzer,address -parse-as-library -O -g $(FUZZ_PARSER_SOURCES) Tests/Fuzz/HTTPParserFuzz.swift -o $(FUZZ_BINARY)

# New inputs go to a scratch corpus under .build; the seeds in Tests/Fuzz/corpus stay as committed.
fuzz: $(FUZZ_BINARY) ## libFuzzer on the HTTP/1.1 parser for FUZZ_SECONDS (60); new inputs in .build/fuzz-corpus.
	mkdir -p $(FUZZ_WORK_CORPUS)
	$(FUZZ_BINARY) -max_total_time=$(FUZZ_SECONDS) -max_len=8192 -timeout=10 \
		-artifact_prefix=.build/ $(FUZZ_WORK_CORPUS) Tests/Fuzz/corpus
