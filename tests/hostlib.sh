# tests/hostlib.sh: the set-up shared by the shell tests that drive the host
# (test_repl.sh, test_loop.sh). Source it from the test after setting ECGWB;
# it moves to the repository root, makes $tmp, kills the background $pids
# and removes $tmp at exit, and defines fail, ok, has and wait_for.
case $ECGWB in /*) ;; *) ECGWB=$(pwd)/$ECGWB ;; esac
cd "$(dirname "$0")/.." || exit 1
unset LUA_PATH LUA_PATH_5_1 LUA_INIT
tmp=$(mktemp -d)
pids=
cleanup() {
    for p in $pids; do kill -9 "$p" 2>/dev/null; done
    rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 1' INT TERM
fail() { echo "FAIL: $*"; exit 1; }
ok() { echo "ok: $*"; }
# has FILE TEXT: FILE contains the fixed string TEXT
has() { grep -F -q -- "$2" "$1"; }
# wait_for FILE TEXT: until FILE contains TEXT (at most WAIT_TENTHS tenths of a second)
wait_for() {
    n=0
    while ! has "$1" "$2"; do
        n=$((n + 1))
        [ $n -gt "${WAIT_TENTHS:-200}" ] && return 1
        sleep 0.1
    done
}
