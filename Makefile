# The workshop's commands. `make workshop` for attendees, `make test` for CI.
PY := .venv/bin/python

.PHONY: setup workshop up status down test labs check-labs

setup:            ## venvs, the tiny model (idempotent)
	bash scripts/setup.sh

workshop: setup    ## set up, serve the model and the gateway, open JupyterLab on Lab 0 (as root too)
	$(PY) -m helpers workshop

up:               ## serve the default model on the local platform
	$(PY) -m helpers up

status:
	$(PY) -m helpers status

down:             ## stop everything the workshop started
	$(PY) -m helpers down

test: setup       ## unit tests (two processes: they leave a core idle), then integration and notebook tests
	@status=0; \
	$(PY) -m pytest tests/unit -n 2 || status=$$?; \
	$(PY) -m pytest --ignore=tests/unit || status=$$?; \
	exit $$status

labs:             ## regenerate labs/ from solutions/
	$(PY) -m helpers make-labs

check-labs:
	$(PY) -m helpers make-labs --check
