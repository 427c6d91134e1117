# videogen: `make run` generates a video on the embedded stack; `make test` runs every check.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
NPM_STAMP := node_modules/.installed-stamp
# The CDK CLI from package.json (npm ci); synthesis runs app.py with the venv's Python (cdk.json).
CDK := node_modules/.bin/cdk
CDK_ENV := JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION=20 CDK_DISABLE_VERSION_CHECK=1

.PHONY: install test lint typecheck pytest run serve bench simulator docs clean synth deploy destroy

install: $(STAMP) $(NPM_STAMP)

# Re-installs only when a pinned file changes, so a second `make install` is quick.
$(STAMP): requirements.txt requirements-dev.txt pyproject.toml
	@$(PYTHON) -c 'import sys; assert (3, 11) <= sys.version_info[:2] <= (3, 13), "videogen needs Python 3.11 to 3.13, found " + sys.version.split()[0]'
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --no-deps -e .
	touch $(STAMP)

# The CDK CLI, pinned in package.json / package-lock.json; again only when they change.
$(NPM_STAMP): package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	touch $(NPM_STAMP)

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: install
	$(BIN)/mypy functions local tests benchmarks infra app.py

pytest: install
	$(BIN)/pytest -n 2 --dist loadfile

test: lint typecheck pytest

run: install
	$(BIN)/videogen generate "A paper kite drifting above a wheat field on a windy afternoon" --model veo3-fast --out output/kite.mp4

serve: install
	$(BIN)/videogen serve --port 8080

bench: install
	$(BIN)/python benchmarks/store_streaming.py
	$(BIN)/python benchmarks/polling.py
	$(BIN)/python benchmarks/local_throughput.py

docs: install
	$(BIN)/python -m local.docs_gen

simulator: install
	$(BIN)/videogen simulator --port 8765

# The CloudFormation template into cdk.out/, offline: every AWS_* variable and credentials file is hidden from
# it, so no AWS call can happen. cdk-nag's AwsSolutions checks fail it on any unacknowledged finding; then
# cfn-lint checks the output.
synth: install
	env $$(env | sed -n 's/^\(AWS_[A-Za-z0-9_]*\)=.*/-u \1/p') \
		AWS_CONFIG_FILE=/dev/null AWS_SHARED_CREDENTIALS_FILE=/dev/null AWS_EC2_METADATA_DISABLED=true \
		CDK_DISABLE_CLI_TELEMETRY=true $(CDK_ENV) \
		$(CDK) synth --quiet --no-notices --output cdk.out $(ARGS)
	$(BIN)/cfn-lint -- cdk.out/*.template.json

# Deploys to the account and region of your AWS credentials (bootstrap first: docs/deploy.md).
# Options as context, e.g. make deploy ARGS="-c stackName=Videos -c alarmEmail=ops@example.com"
deploy: install
	$(CDK_ENV) $(CDK) deploy $(ARGS)

destroy: install
	$(CDK_ENV) $(CDK) destroy $(ARGS)

clean:
	rm -rf $(VENV) output .mypy_cache .ruff_cache .pytest_cache cdk.out node_modules build/lambda-deps
