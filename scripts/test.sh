#!/usr/bin/env bash
# `make test`: every test, in the time CI has.
#
# The unit tests need no servers. They run alongside the integration tests, at the lowest CPU priority
# (nice 19, below) and in their own state folder: they take the CPU the integration tests leave idle (a vLLM
# server imports PyTorch on one core for half a minute at each start) and slow them by little. The labs
# measure throughput, so they wait until the unit tests are done (tests/notebooks/conftest.py). The unit
# tests' report is printed after the others'. Arguments go to the second pytest (e.g. -x, -k).
set -uo pipefail
cd "$(dirname "$0")/.."
PY=.venv/bin/python

unit_dir=$(mktemp -d -t maas-unit-tests.XXXXXX)
unit_pid=
cleanup() {
  if [ -n "$unit_pid" ]; then kill "$unit_pid" 2>/dev/null; wait "$unit_pid" 2>/dev/null; fi
  rm -rf "$unit_dir"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# Linux shares the CPU between sessions ("autogroups") before it looks at nice values, and the vLLM servers
# run in sessions of their own: the unit tests get a session whose autogroup is at nice 19 too.
MAAS_STATE_DIR="$unit_dir/state" setsid bash -c 'echo 19 2>/dev/null >/proc/self/autogroup; exec nice -n 19 "$@"' \
  unit-tests "$PY" -m pytest tests/unit -n 2 -p no:cacheprovider --basetemp "$unit_dir/tmp" \
  >"$unit_dir/report.txt" 2>&1 &
unit_pid=$!

status=0
MAAS_UNIT_TESTS_PID=$unit_pid "$PY" -m pytest --ignore=tests/unit "$@" || status=$?
unit_status=0
wait "$unit_pid" || unit_status=$?
unit_pid=
echo
echo "==================== unit tests (run alongside the others, nice 19) ===================="
cat "$unit_dir/report.txt"
[ "$unit_status" -eq 0 ] || status=$unit_status
exit "$status"
