#!/bin/sh
# `npm test`: the build (the tests spawn dist/), then the tap suite, with the static checks (ESLint,
# Prettier, the type checker) running beside it at the lowest CPU priority (nice 19): the suite
# keeps the CPU it needs — many of its files wait on timers, and their timing checks stay as they
# were — and the checks take what it leaves idle instead of a minute of their own before it. Their
# output is printed after the suite's; a failure of either fails the command.
set -u
npm run -s build || exit 1
log=$(mktemp)
nice -n 19 npm run -s checks:static >"$log" 2>&1 &
checks=$!
tap "$@"
suite=$?
wait "$checks"
static=$?
cat "$log"
rm -f "$log"
if [ "$static" -ne 0 ]; then echo "npm test: the static checks failed (ESLint, Prettier or the type checker; output above)"; fi
[ "$suite" -eq 0 ] && [ "$static" -eq 0 ]
