# Berth — build, test, run, benchmark. `make help` lists the targets.
SWIFT ?= swift
BERTH := .build/debug/berth
# The test tools (Tests/tools/setup.sh) come first on PATH: python3 with moto, kubectl, kubernetes-validate, pytest.
export PATH := $(CURDIR)/.build/tools/bin:$(PATH)

.PHONY: help build release image image-test soak test tools test-swift run mutate-examples certs certs-clean bench bench-mutate bench-schedule bench-webhook bench-kube bench-kube-memory bench-simulate clean
PORT ?= 8443
METRICS_PORT ?= 8080
REVIEW := Tests/Fixtures/admission/z2jh-gpu-notebook.review.json

help: ## This list.
	@grep -hE '^[a-z][a-z-]*:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-16s %s\n", $$1, $$2}'

build: ## Debug build of berth and its tests' helpers.
	$(SWIFT) build

# Release builds link the Swift runtime statically (as the image does), so one set of flags serves all.
RELEASE_FLAGS := -c release --static-swift-stdlib

release: ## Optimised build: .build/release/berth.
	$(SWIFT) build $(RELEASE_FLAGS) --product berth

test: ## The whole set-up and every test: installs what is missing (tools), builds, Swift tests, the Helm chart test, 30 s of each fuzz target, the image test.
	@$(MAKE) --no-print-directory tools
	@$(MAKE) --no-print-directory test-swift
	@$(MAKE) --no-print-directory chart-test
	@$(MAKE) --no-print-directory fuzz-ci
	@if [ "$$(id -u)" = 0 ]; then $(MAKE) --no-print-directory image-test; else echo "make test: image-test skipped (chroot needs root)"; fi

tools: ## Install what the build and the tests need and this machine lacks (apt when root, a venv in .build/tools, helm); idempotent.
	@bash Tests/tools/setup.sh

test-swift: ## Swift tests only (after make tools).
	$(SWIFT) build --build-tests
	$(SWIFT) test --skip-build

DEV_CONFIG := .build/berth-dev.yaml
SIM_KUBECONFIG := .build/berth-simulated.kubeconfig

run: build certs ## Build, make dev certs, run Berth on the embedded simulated cluster and cloud: a GPU notebook's whole life in the log.
	@mkdir -p .build && printf 'apiVersion: berth.dev/v1alpha1\nkind: BerthConfig\nprovisioner:\n  emptyAfter: 20s\n' > $(DEV_CONFIG)
	@$(BERTH) serve --simulated --demo --log-format text --config $(DEV_CONFIG) \
	    --tls-cert-file certs/tls.crt --tls-private-key-file certs/tls.key --simulated-ca-file certs/ca.crt \
	    --simulated-kubeconfig $(SIM_KUBECONFIG) --simulated-boot-seconds 15 --simulated-gpu-seconds 5 --demo-notebook-seconds 20 \
	    --port $(PORT) --metrics-port $(METRICS_PORT) & pid=$$!; \
	  trap 'kill -TERM $$pid 2>/dev/null; wait $$pid' INT TERM; \
	  for i in $$(seq 100); do curl -sf --cacert certs/ca.crt https://localhost:$(PORT)/readyz >/dev/null && break; sleep 0.1; done; \
	  echo "== POST $(REVIEW) to https://localhost:$(PORT)/mutate; the JSON Patch Berth answers:"; \
	  curl -sS --cacert certs/ca.crt -H 'Content-Type: application/json' --data-binary @$(REVIEW) https://localhost:$(PORT)/mutate \
	    | python3 -c 'import base64,json,sys; print(json.dumps(json.loads(base64.b64decode(json.load(sys.stdin)["response"]["patch"])), indent=2))'; \
	  echo "== The embedded cluster: kubectl --kubeconfig $(SIM_KUBECONFIG) get nodes,pods -A. Metrics: curl localhost:$(METRICS_PORT)/metrics. Ctrl-C stops Berth."; \
	  wait $$pid

certs: ## Development CA and serving certificate in certs/ (kept if present).
	@bash certs/make-dev-certs.sh

certs-clean: ## Remove the development certificates.
	rm -f certs/*.crt certs/*.key certs/*.srl

mutate-examples: build ## berth mutate -o patch -v on every example manifest.
	@for f in Tests/Fixtures/manifests/*.yaml; do \
	  echo "== berth mutate -f $$f -o patch -v"; \
	  $(BERTH) mutate -f $$f -o patch -v || exit 1; \
	done

bench: bench-mutate bench-schedule bench-webhook bench-kube bench-kube-memory bench-simulate ## Every benchmark; figures go in BENCHMARKS.md.

bench-mutate: ## Median time to classify and patch the z2jh GPU notebook pod.
	$(SWIFT) build $(RELEASE_FLAGS) --product berth-bench
	.build/release/berth-bench mutate

bench-schedule: ## Median ms per scheduler solve: 5,000 pending pods, 400 instance types (Karpenter's benchmark shape).
	$(SWIFT) build $(RELEASE_FLAGS) --product berth-bench
	.build/release/berth-bench schedule

bench-kube: ## Watch events/s the Kubernetes client decodes (Pod and Node lines from the API fixtures).
	$(SWIFT) build $(RELEASE_FLAGS) --product berth-bench
	.build/release/berth-bench watch

bench-kube-memory: certs ## Provisioner RSS with 50,000 realistic 6-7 KB pods and 2,000 nodes in the embedded apiserver (a separate process); bytes per cached object.
	$(SWIFT) build $(RELEASE_FLAGS) --product berth-bench
	.build/release/berth-bench kube-memory --pods $${PODS:-50000} --nodes $${NODES:-2000}

SIM := .build/bench-simulate
# Wall and user seconds (the machine is shared: user time is the steadier figure).
TIMED := /usr/bin/time -f "== run time: %e s wall, %U s user"
bench-simulate: ## berth simulate (release): 14-day 40-user trace, the three policies and Berth with warm capacity (auto at 10 s, 30 s, 1 m), table + SVG; then a 30-day ~54,000-pod trace, timed.
	$(SWIFT) build $(RELEASE_FLAGS) --product berth
	@mkdir -p $(SIM)
	.build/release/berth simulate --generate --days 14 --users 40 --seed 1 > $(SIM)/trace-14d-40u.csv
	@$(TIMED) .build/release/berth simulate $(SIM)/trace-14d-40u.csv --plot $(SIM)/trace-14d-40u.svg --quiet
	@echo "== plot: $(SIM)/trace-14d-40u.svg"
	@printf 'apiVersion: berth.dev/v1alpha1\nkind: BerthConfig\nprovisioner:\n  disruption: {consolidation: true}\n' > $(SIM)/consolidation.yaml
	@echo "== the berth policy with disruption.consolidation: true (off by default)"
	@.build/release/berth simulate $(SIM)/trace-14d-40u.csv --policy berth --config $(SIM)/consolidation.yaml --quiet
	.build/release/berth simulate --generate --days 30 --users 250 --seed 1 > $(SIM)/trace-30d-250u.csv
	@echo "== $$(($$(wc -l < $(SIM)/trace-30d-250u.csv) - 1)) pods over 30 days (goal: 3 policies in < 30 s)"
	@$(TIMED) .build/release/berth simulate $(SIM)/trace-30d-250u.csv --quiet

soak: ## The attacks of issue 14 on a release berth serve (handshake flood, idle floods, 3 MiB slow readers, SIGTERM under load): normal clients' success and p99, RSS (loopback, ~2 min).
	$(SWIFT) build $(RELEASE_FLAGS) --product berth
	python3 Tests/bench/soak.py .build/release/berth --seconds $${SOAK_SECONDS:-10}

bench-webhook: ## wrk against berth serve and, alternating in the same run, nginx with a fixed answer: 3 rounds and their medians (needs wrk, nginx).
	bash Tests/bench/webhook-bench.sh

IMAGE_DIR := .build/image

image: ## OCI image archive .build/image/berth-<version>.oci.tar, assembled without a container engine (load it with docker/podman load, push it with skopeo).
	$(SWIFT) build $(RELEASE_FLAGS) --product berth
	@mkdir -p $(IMAGE_DIR)
	strip -o $(IMAGE_DIR)/berth "$$($(SWIFT) build $(RELEASE_FLAGS) --show-bin-path)/berth"
	@v="$$($(IMAGE_DIR)/berth --version)" && python3 Tests/image/oci_image.py build --binary $(IMAGE_DIR)/berth --version "$$v" --out $(IMAGE_DIR)/berth-$$v.oci.tar

image-test: image ## Check the image archive (OCI schema, skopeo, same digests twice) and run berth from its unpacked layer under chroot (root).
	@v="$$($(IMAGE_DIR)/berth --version)" && bash Tests/image/image-test.sh $(IMAGE_DIR)/berth-$$v.oci.tar $(IMAGE_DIR)/berth "$$v"

clean: ## Remove build products and the tool cache.
	rm -rf .build .cache

include Tests/chart/chart.mk
include Tests/Fuzz/fuzz.mk
