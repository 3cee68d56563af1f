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

test: setup       ## every test: the unit tests alongside the integration tests (nice 19), then the labs
	bash scripts/test.sh

labs:             ## regenerate labs/ from solutions/
	$(PY) -m helpers make-labs

check-labs:
	$(PY) -m helpers make-labs --check
