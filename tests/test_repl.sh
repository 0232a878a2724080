#!/bin/sh
# tests/test_repl.sh: the host program (core/main.c, core/repl.c).
# usage: ECGWB=build/ecgwb sh tests/test_repl.sh   (run from the repository root)
# The REPL is driven through a pipe, Ctrl-C by kill -INT on a session fed from
# a fifo; the terminal-only parts (libedit, Ctrl-C at the prompt, history)
# through a pty with Debian's /usr/bin/python3.
ECGWB=${ECGWB:-build/ecgwb}
. "$(dirname "$0")/hostlib.sh"
root=$(pwd)

# repl INPUT: runs the REPL on INPUT; stdout in $tmp/out, stderr in $tmp/err
repl() { printf '%s\n' "$1" | "$ECGWB" > "$tmp/out" 2> "$tmp/err"; }

# --- expressions, tensors, multi-line chunks, errors ---
repl '1+1' || fail "REPL exit status"
[ "$(cat "$tmp/out")" = 2 ] || fail "1+1 printed '$(cat "$tmp/out")'"
[ -s "$tmp/err" ] && fail "1+1 wrote to stderr: $(cat "$tmp/err")"
repl '=3*4
"a", nil, 7
x = 5
x' || fail "REPL exit status"
[ "$(cat "$tmp/out")" = "12
a	nil	7
5" ] || fail "=expr, several values, statements: $(cat "$tmp/out")"
ok "expressions print their values"

repl 'wb = require "ecgwb"
wb.zeros(2, 3)
t = wb.ones(4); t' || fail "REPL exit status"
has "$tmp/out" "f32[2,3]" || fail "tensor summary: $(cat "$tmp/out") $(cat "$tmp/err")"
has "$tmp/out" "f32[4]" || fail "statements then a last expression: $(cat "$tmp/out")"
ok "tensors print their summary"

repl 'function twice(x)
  local y = x * 2
  return y
end
twice(21)
{1,
 2}
1 +
2' || fail "REPL exit status"
[ "$(sed -n 1p "$tmp/out")" = 42 ] || fail "multi-line function: $(cat "$tmp/out") $(cat "$tmp/err")"
has "$tmp/out" "table: " || fail "multi-line table constructor: $(cat "$tmp/out")"
[ "$(sed -n 3p "$tmp/out")" = 3 ] || fail "multi-line expression: $(cat "$tmp/out")"
ok "multi-line chunks"

repl 'local function inner() error("boom") end inner()
print("after the error")
for
x = = 1
print("after the syntax error")' || fail "REPL exit status after errors"
has "$tmp/err" "stdin:1: boom" || fail "error message: $(cat "$tmp/err")"
has "$tmp/err" "stack traceback:" || fail "no traceback: $(cat "$tmp/err")"
has "$tmp/err" "in function 'inner'" || fail "traceback misses the frame: $(cat "$tmp/err")"
has "$tmp/err" "unexpected symbol near '='" || fail "syntax error: $(cat "$tmp/err")"
[ "$(cat "$tmp/out")" = "after the error
after the syntax error" ] || fail "lines after errors: $(cat "$tmp/out")"
ok "errors print a traceback and the REPL goes on"

# --- -e, scripts, arg, -i, exit status ---
out=$("$ECGWB" -e 'x = 6' -e 'print(x * 7)') || fail "-e exit status"
[ "$out" = 42 ] || fail "-e twice: $out"
"$ECGWB" -e 'error("bad")' 2> "$tmp/err" && fail "-e error exits 0"
has "$tmp/err" "(command line):1: bad" || fail "-e error message: $(cat "$tmp/err")"
ok "-e"

cat > "$tmp/args.lua" <<'EOF'
local a, b = ...
print(arg[0], arg[1], arg[2], #arg, a, b, select("#", ...))
EOF
out=$("$ECGWB" "$tmp/args.lua" one "two words") || fail "script exit status"
[ "$out" = "$tmp/args.lua	one	two words	2	one	two words	2" ] || fail "script args: $out"
out=$("$ECGWB" "$tmp/args.lua" --help -e) || fail "options after the script"
[ "$out" = "$tmp/args.lua	--help	-e	2	--help	-e	2" ] || fail "options after the script go to it: $out"
ok "script arguments in arg and ..."

printf 'error("script failed")\n' > "$tmp/bad.lua"
"$ECGWB" "$tmp/bad.lua" > /dev/null 2> "$tmp/err"; rc=$?
[ $rc = 1 ] || fail "failing script exits $rc"
has "$tmp/err" "bad.lua:1: script failed" || fail "script error: $(cat "$tmp/err")"
has "$tmp/err" "stack traceback:" || fail "script traceback: $(cat "$tmp/err")"
"$ECGWB" "$tmp/missing.lua" 2> /dev/null; [ $? = 1 ] || fail "missing script exits 0"
"$ECGWB" -e 'os.exit(3)'; [ $? = 3 ] || fail "os.exit(3)"
"$ECGWB" -e 'os.exit(true)' || fail "os.exit(true)"
"$ECGWB" -e 'print("x")' > /dev/null || fail "exit status on success"
"$ECGWB" --bogus 2> /dev/null && fail "unknown option exits 0"
ok "exit status"

printf 'y = 2\n' > "$tmp/setup.lua"
out=$(printf 'y * 21\n' | "$ECGWB" -i "$tmp/setup.lua") || fail "-i exit status"
[ "$out" = 42 ] || fail "-i: $out"
ok "-i runs the REPL after the script"

"$ECGWB" --help > "$tmp/out" || fail "--help exit status"
has "$tmp/out" "usage: ecgwb" || fail "--help: $(cat "$tmp/out")"
"$ECGWB" --version > "$tmp/out" || fail "--version exit status"
grep -q '^ecgwb [0-9]' "$tmp/out" || fail "--version: $(cat "$tmp/out")"
has "$tmp/out" "LuaJIT" || fail "--version: $(cat "$tmp/out")"
ok "--help, --version"

# --- require "ecgwb" from elsewhere: build tree, then installed ---
mkdir "$tmp/elsewhere"
printf 'local wb = require "ecgwb"\nprint(wb.zeros(2, 3))\nprint(debug.getinfo(wb.zeros, "S").source)\n' > "$tmp/req.lua"
out=$(cd "$tmp/elsewhere" && "$ECGWB" "$tmp/req.lua") || fail "require from another directory: $out"
case $out in *"f32[2,3]"*"$root/"*) ;; *) fail "require in the build tree: $out" ;; esac
ok "require \"ecgwb\" from any directory (build tree)"

build=$(dirname "$ECGWB")
MAKEFLAGS= MAKELEVEL= make -s install PREFIX="$tmp/prefix" BUILD="$build" SAN="${SAN:-0}" \
    > "$tmp/install.log" 2>&1 || fail "make install: $(tail -n 20 "$tmp/install.log")"
out=$(cd "$tmp/elsewhere" && "$tmp/prefix/bin/ecgwb" "$tmp/req.lua") || fail "installed: $out"
case $out in *"f32[2,3]"*"$tmp/prefix/bin/../share/ecgwb/lua/"*) ;; *) fail "installed require: $out" ;; esac
ok "require \"ecgwb\" once installed (make install PREFIX=...)"

# --- Ctrl-C: kill -INT a session fed from a fifo ---
mkfifo "$tmp/in"
"$ECGWB" < "$tmp/in" > "$tmp/out" 2> "$tmp/err" &
pid=$!
pids="$pids $pid"
exec 3> "$tmp/in"
echo 'print("looping") while true do end' >&3
wait_for "$tmp/out" looping || fail "the loop did not start"
sleep 0.2
kill -INT $pid
echo 'print("still here") local n = 0 for i = 1, 1e15 do n = n + i end' >&3
wait_for "$tmp/out" "still here" || fail "no answer after Ctrl-C: $(cat "$tmp/err")"
sleep 0.2
kill -INT $pid
echo 'print("and here")' >&3
exec 3>&-
wait_for "$tmp/out" "and here" || fail "no answer after the second Ctrl-C: $(cat "$tmp/err")"
wait $pid || fail "the session exited with $?"
[ "$(grep -c interrupted "$tmp/err")" = 2 ] || fail "interrupted: $(cat "$tmp/err")"
has "$tmp/err" "stack traceback:" || fail "no traceback on interrupt: $(cat "$tmp/err")"
ok "Ctrl-C interrupts a loop typed at the REPL, which goes on"

# a script runs JIT-compiled: its empty loop cannot be interrupted, a second
# Ctrl-C says so and a third ends the process
"$ECGWB" -e 'print("go") io.stdout:flush() while true do end' > "$tmp/out" 2> "$tmp/err" &
pid=$!
pids="$pids $pid"
wait_for "$tmp/out" go || fail "the script did not start"
sleep 0.2
kill -INT $pid; sleep 0.2
kill -INT $pid
wait_for "$tmp/err" "Ctrl-C again quits" || fail "second Ctrl-C: $(cat "$tmp/err")"
kill -INT $pid
wait $pid; rc=$?
[ $rc = 130 ] || fail "third Ctrl-C: exit status $rc"
"$ECGWB" -e 'local t = os.clock() while os.clock() - t < 60 do end' 2> "$tmp/err" &
pid=$!
pids="$pids $pid"
sleep 0.5
kill -INT $pid
wait $pid; rc=$?
[ $rc = 1 ] || fail "interrupted script exits $rc"
has "$tmp/err" interrupted || fail "interrupted script: $(cat "$tmp/err")"
# a JIT-compiled training-style loop that calls ops stops at its next op
"$ECGWB" -e 'local wb = require "ecgwb" local x = wb.randn(32, 32) print("go") io.stdout:flush()
while true do x = (x:matmul(x) * 0.01):tanh() end' > "$tmp/out" 2> "$tmp/err" &
pid=$!
pids="$pids $pid"
wait_for "$tmp/out" go || fail "the op loop did not start"
sleep 0.5
kill -INT $pid
wait $pid; rc=$?
[ $rc = 1 ] || fail "interrupted op loop exits $rc: $(cat "$tmp/err")"
has "$tmp/err" interrupted || fail "interrupted op loop: $(cat "$tmp/err")"
ok "Ctrl-C in scripts"

# --- on a terminal: libedit, Ctrl-C at the prompt, Ctrl-D, history ---
if [ ! -x /usr/bin/python3 ]; then
    echo "FAIL: /usr/bin/python3 (Debian's) is needed for the terminal test"
    exit 1
fi
mkdir "$tmp/home"
cat > "$tmp/drive.py" <<'EOF'
import os, pty, select, sys, time
pid, fd = pty.fork()
if pid == 0:
    os.environ["TERM"] = "xterm"
    os.execv(sys.argv[1], [sys.argv[1]])
out = b""
def expect(text, what):
    global out
    end = time.time() + 20
    while text.encode() not in out:
        if time.time() > end:
            sys.exit("terminal: %s: %r not in %r" % (what, text, out.decode(errors="replace")))
        if select.select([fd], [], [], 0.1)[0]:
            try:
                out += os.read(fd, 4096)
            except OSError:
                break
    out = out[out.index(text.encode()) + len(text):]
def send(s):
    os.write(fd, s.encode())
expect("> ", "first prompt")
send("1 +\r"); expect(">> ", "continuation prompt")
send("41\r"); expect("42", "multi-line expression")
send("abc"); expect("abc", "echo")
send("\x03"); expect("> ", "Ctrl-C at the prompt gives a new prompt")
send("function f(x)\r"); expect(">> ", "continuation prompt")
send("\x03"); expect("> ", "Ctrl-C drops an unfinished chunk")
send("'still ' .. 'here'\r"); expect("still here", "after Ctrl-C at the prompt")
send("while true do end\r"); time.sleep(0.3)
send("\x03"); expect("interrupted", "Ctrl-C while running")
send("'s\u00b5V'\r"); expect("\ns\u00b5V", "UTF-8 input")
expect("> ", "prompt")
send("\x04")
end = time.time() + 20
while True:
    done, status = os.waitpid(pid, os.WNOHANG)
    if done:
        break
    if time.time() > end:
        os.kill(pid, 9)
        sys.exit("terminal: Ctrl-D did not end the session")
    time.sleep(0.1)
if status != 0:
    sys.exit("terminal: Ctrl-D: exit status %d" % status)
EOF
HOME=$tmp/home /usr/bin/python3 "$tmp/drive.py" "$ECGWB" || fail "terminal session"
has "$tmp/home/.ecgwb_history" "'still\\040'\\040..\\040'here'" ||
    has "$tmp/home/.ecgwb_history" "'still ' .. 'here'" ||
    fail "history file: $(cat "$tmp/home/.ecgwb_history" 2>&1)"
HOME=$tmp/missing/home /usr/bin/python3 "$tmp/drive.py" "$ECGWB" || fail "terminal session, no history file"
ok "terminal: line editing, Ctrl-C at the prompt, Ctrl-D, history"

echo "all host tests passed"
