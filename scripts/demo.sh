#!/usr/bin/env bash
# scripts/demo.sh - set everything up (scripts/setup.sh), then run the
# simulator demo: a seeded 5-member Raft cluster under faults, printing
# elections and commits.  Arguments are passed to the demo program.
set -euo pipefail

cd "$(dirname "$0")/.."
./scripts/setup.sh build

demo=build/tests/sim/raftkv-sim-demo
if [ ! -x "$demo" ]; then
	echo "demo: $demo is not built yet (the simulator demo is still" \
		"being written); nothing to run" >&2
	exit 1
fi
exec "$demo" "$@"
