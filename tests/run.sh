#!/bin/sh
# tests/run.sh: runs the C test binaries, then the Lua tests through the host.
# usage: BUILD=build sh tests/run.sh build/tests/test_x ... -- tests/test_y.lua tests/test_z.sh ...
# (.sh tests get the host binary in $ECGWB)
BUILD=${BUILD:-build}
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-2}
# tests are many tiny kernels; threads that sleep instead of spinning keep
# them quick when the machine is shared
export OMP_WAIT_POLICY=${OMP_WAIT_POLICY:-passive}
# the shared reference data (WFDB tools output) sits beside the repo
export ECGWB_SHARED=${ECGWB_SHARED:-$(cd .. && pwd)/shared}
if [ "${SAN:-0}" = 1 ]; then
    export ASAN_OPTIONS="detect_leaks=1:abort_on_error=0:halt_on_error=1"
    export LSAN_OPTIONS="suppressions=$(pwd)/tests/lsan.supp:print_suppressions=0"
    export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1"
fi
pass=0; fail=0; failed=""
run() {
    name=$1; shift
    start=$(date +%s.%N)
    # a hung test fails after TEST_TIMEOUT seconds instead of stalling the run
    if timeout --kill-after=10 "${TEST_TIMEOUT:-600}" "$@" > "$BUILD/tests/$(basename "$name").log" 2>&1; then
        pass=$((pass+1)); status=ok
    else
        fail=$((fail+1)); status=FAIL; failed="$failed $name"
    fi
    printf '%-40s %s (%.1fs)\n' "$name" "$status" "$(awk -v a="$start" -v b="$(date +%s.%N)" 'BEGIN{print b-a}')"
    [ $status = FAIL ] && tail -n 30 "$BUILD/tests/$(basename "$name").log"
}
mkdir -p "$BUILD/tests"
for t in "$@"; do
    [ "$t" = "--" ] && continue
    case "$t" in
        *.lua) run "$t" "$BUILD/ecgwb" "$t" ;;
        *.sh) run "$t" env ECGWB="$BUILD/ecgwb" sh "$t" ;;
        *) run "$t" "$t" ;;
    esac
done
echo "$pass passed, $fail failed"
[ $fail = 0 ] || { echo "failed:$failed"; exit 1; }
