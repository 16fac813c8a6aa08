# mailshift — see README.md.
SHELL := /bin/bash
GO ?= go

.PHONY: demo demo-stop test lab-deps build vet lint bench bench-plan chaos load cluster-chaos

build:
	$(GO) build ./...

demo:
	deploy/dev/demo.sh

# Stops what `make demo` (DEMO_KEEP=1) left running in DEV_DIR.
demo-stop:
	DEV_DIR="$(or $(DEV_DIR),.mailshift-dev)" deploy/dev/server.sh stop

vet:
	$(GO) vet ./...
	@test -z "$$(gofmt -l $$(git ls-files '*.go'))" || { echo "gofmt needed:"; gofmt -l $$(git ls-files '*.go'); exit 1; }

# staticcheck with every check (doc comments included) on all packages, and
# Temporal's workflowcheck on the workflow code and everything it calls
# (map iteration, time, goroutines, I/O). Both are pinned and built once by
# deploy/dev/linters.sh.
lint:
	@bin=$$(deploy/dev/linters.sh) && rc=0 && \
	{ $$bin/staticcheck -checks all ./... || rc=1; } && \
	{ $$bin/workflowcheck ./workflows/... || rc=1; } && \
	exit $$rc

# Everything CI runs: installs what the integration tests need, lints, then
# runs every test with the race detector.
test: lab-deps vet lint
	MAILSHIFT_TEMPORAL=$$(deploy/dev/temporal.sh) $(GO) test -race -count=1 -timeout 40m ./...

lab-deps:
	deploy/lab/install.sh

# The copy benchmark: two lab Dovecots, a 10,000-message corpus, mbsync vs
# the engine vs the copy stage through Temporal. Prints a table.
bench: lab-deps
	mkdir -p bin
	$(GO) build -o bin/ ./worker ./starter ./cmd/mailshift-copy ./cmd/mailbench
	MAILSHIFT_TEMPORAL=$$(deploy/dev/temporal.sh) bin/mailbench $(BENCH_ARGS)

# A plan of many realistic accounts on one lab Dovecot pair (default 100 x
# 200 messages of 30 KiB mean): mbsync J at a time, mailshift-copy J at a
# time, the whole plan through Temporal with a budget of J copies. Prints
# one table (messages/s, accounts/min, CPU per component, peak connections
# counted at the servers). BENCH_PLAN_ARGS="-accounts 1000 -messages 20".
bench-plan: lab-deps
	mkdir -p bin
	$(GO) build -o bin/ ./worker ./cmd/mailshift-copy ./cmd/mailbench-plan
	MAILSHIFT_TEMPORAL=$$(deploy/dev/temporal.sh) bin/mailbench-plan $(BENCH_PLAN_ARGS)

# Reliability: every fault scenario (kill -9 workers, IMAP connections cut
# and stalled, DNS primary down, Temporal and PostgreSQL restarts) x 3 runs
# while mail arrives (chaos); a 1,000-account plan and a 100-account plan of
# realistic mailboxes (load). Each prints a runs x scenarios table; any
# invariant violation fails the command.
chaos: lab-deps
	mkdir -p bin
	$(GO) build -o bin/ ./worker ./cmd/mailchaos
	MAILSHIFT_TEMPORAL=$$(deploy/dev/temporal.sh) bin/mailchaos -scenario all $(CHAOS_ARGS)

load: lab-deps
	mkdir -p bin
	$(GO) build -o bin/ ./worker ./cmd/mailchaos
	MAILSHIFT_TEMPORAL=$$(deploy/dev/temporal.sh) bin/mailchaos -scenario load,load-realistic -runs 1 $(LOAD_ARGS)

# The reliability suite on a production-shaped Temporal cluster
# (deploy/cluster: server v1.29.1 built from its module, separate frontend,
# history, matching and worker processes on PostgreSQL, mTLS): the
# cluster's own test, the next worker build's replay of every recorded
# history, then history SIGKILLed, matching and frontend restarted, the
# cluster's PostgreSQL crashed, and a worker redeploy with changed workflow
# code, each mid-plan, x 3 runs. Not part of `make test`: the 15 runs took
# 49.5 minutes on 2 cores shared with other builds (load average 26-41),
# the cluster test about a minute, plus the server's first build (about 10
# minutes, cached).
cluster-chaos: lab-deps
	mkdir -p bin
	$(GO) build -o bin/ ./worker ./cmd/mailchaos
	$(GO) build -tags mailshift_nextbuild -o bin/worker-next ./worker
	$(GO) test -tags mailshift_nextbuild -count=1 -run 'TestReplayHistories|TestReplayRedeployHistoriesOnTheNextBuild' ./workflows/
	MAILSHIFT_TEMPORAL_CLUSTER_BIN=$$(deploy/cluster/build.sh) $(GO) test -tags cluster -count=1 -timeout 20m ./internal/cluster/
	MAILSHIFT_TEMPORAL_CLUSTER_BIN=$$(deploy/cluster/build.sh) MAILSHIFT_TEMPORAL=$$(deploy/dev/temporal.sh) \
		bin/mailchaos -scenario cluster-all $(CLUSTER_CHAOS_ARGS)
