#!/bin/sh
# tests/test_dashboard.sh: the live dashboard (core/dashboard.c,
# lua/ecgwb/dashboard.lua) through `ecgwb --serve PORT`: a small training
# job reports losses and one ECG; /jobs.json must hold its status and last
# loss, the figures must be PNGs, bad requests get 404/405/400/431, the
# socket listens on 127.0.0.1 only, and headless Chromium (Debian's
# `chromium`) must render the page: a non-blank screenshot, and a DOM that
# lists the job and its latest loss. HTTP is driven by /usr/bin/python3.
# usage: ECGWB=build/ecgwb sh tests/test_dashboard.sh   (from the repository root)
ECGWB=${ECGWB:-build/ecgwb}
case $ECGWB in /*) ;; *) ECGWB=$(pwd)/$ECGWB ;; esac
cd "$(dirname "$0")/.." || exit 1
unset LUA_PATH LUA_PATH_5_1 LUA_INIT
PY=/usr/bin/python3
tmp=$(mktemp -d)
pid=
cleanup() {
    [ -n "$pid" ] && kill -9 "$pid" 2>/dev/null
    rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 1' INT TERM
fail() { echo "FAIL: $*"; [ -f "$tmp/server.log" ] && sed 's/^/  server: /' "$tmp/server.log"; exit 1; }
ok() { echo "ok: $*"; }
[ -x $PY ] || fail "/usr/bin/python3 is needed"
command -v chromium >/dev/null || fail "chromium is needed (apt-get install chromium)"

# the job: 30 AdamW steps of a small regression, then one simulated ECG
cat > "$tmp/train.lua" <<'LUA'
local wb = require "ecgwb"
local nn, optim = wb.nn, wb.optim
local opts = ...
wb.manual_seed(3)
local model = nn.Sequential(nn.Linear(8, 16), nn.GELU(), nn.Linear(16, 1))
local opt = optim.AdamW(model:parameters(), { lr = 1e-2 })
local x = wb.randn(64, 8)
local y = x:sum(2, true) * 0.5
local loss
for step = 1, opts.steps do
  loss = ((model(x) - y) ^ 2):mean()
  opt:zero_grad()
  loss:backward()
  opt:step()
  wb.report { step = step, total = opts.steps, loss = loss:item() }
end
wb.dashboard.publish_ecg(wb.sim.ecg { fs = 500, seconds = 10, hr = 70 }, { fs = 500, title = "simulated, 70 bpm" })
local f = assert(io.open(opts.out, "w"))
f:write(string.format("%.17g\n", loss:item()))
f:close()
LUA
# the script: runs the job, then keeps serving until the test says stop
cat > "$tmp/main.lua" <<LUA
local wb = require "ecgwb"
local job = wb.run("$tmp/train.lua", { steps = 30, out = "$tmp/final_loss" })
job:wait()
for _ = 1, 2400 do
  if io.open("$tmp/stop") then return end
  wb.sleep(50)
end
error("not stopped within 120 s")
LUA

port=$($PY -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
"$ECGWB" --serve "$port" "$tmp/main.lua" > "$tmp/server.log" 2>&1 &
pid=$!

# HTTP checks (python: urllib and raw sockets)
cat > "$tmp/check.py" <<'PY'
import json, socket, struct, sys, time, urllib.request, urllib.error, zlib
port, tmp = int(sys.argv[1]), sys.argv[2]
base = "http://127.0.0.1:%d" % port
def fail(msg):
    print("FAIL:", msg); sys.exit(1)
def get(path):
    try:
        r = urllib.request.urlopen(base + path, timeout=10)
        return r.status, r.headers, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.headers, e.read()
def raw(data):
    s = socket.create_connection(("127.0.0.1", port), timeout=10)
    s.sendall(data)
    out = b""
    while True:
        b = s.recv(65536)
        if not b: break            # the server closes the connection after answering
        out += b
    s.close()
    return out

# wait until the server answers and the job is done
deadline, jobs = time.time() + 60, None
while time.time() < deadline:
    try:
        st, h, body = get("/jobs.json")
        jobs = json.loads(body)["jobs"]
        if jobs and jobs[0]["status"] == "done": break
    except (OSError, ValueError):
        pass
    time.sleep(0.1)
else:
    fail("the job was not done within 60 s: %r" % jobs)
print("ok: the server answers, the job is done")

if st != 200 or not h["Content-Type"].startswith("application/json"): fail("jobs.json: %d %s" % (st, h["Content-Type"]))
final = float(open(tmp + "/final_loss").read())
if len(jobs) != 1: fail("one job expected: %r" % jobs)
j = jobs[0]
if not j["name"].endswith("train.lua") or j["kind"] != "job": fail("job name/kind: %r" % j)
m = j["metrics"]
if m.get("step") != 30 or m.get("total") != 30 or j["reports"] != 30: fail("steps: %r" % j)
if m.get("loss") != final: fail("latest loss %r, the job's final loss %r" % (m.get("loss"), final))
if j["ecg"] is not True: fail("the job published an ECG: %r" % j)
print("ok: jobs.json: job %d %s, status done, step 30/30, loss %r (exact), ecg" % (j["id"], j["name"], final))

def png_size(b, what):
    if b[:8] != b"\x89PNG\r\n\x1a\n" or b[12:16] != b"IHDR": fail(what + ": not a PNG")
    return struct.unpack(">II", b[16:24])
jid = j["id"]
st, h, b = get("/loss/%d.png" % jid)
if st != 200 or h["Content-Type"] != "image/png": fail("loss png: %d" % st)
w, hh = png_size(b, "loss png")
if not (300 < w < 2000 and 200 < hh < 2000): fail("loss png size %dx%d" % (w, hh))
st, h, b2 = get("/ecg/%d.png" % jid)
if st != 200: fail("ecg png: %d" % st)
we, he = png_size(b2, "ecg png")
if not (we > 800 and he > 400): fail("ecg png size %dx%d" % (we, he))
print("ok: /loss/%d.png %dx%d and /ecg/%d.png %dx%d are PNGs" % (jid, w, hh, jid, we, he))

for p in ["/nope", "/loss/999.png", "/ecg/0.png", "/loss/%d.svg" % jid, "/loss/%2e%2e.png", "/jobs.json/x"]:
    st, h, b = get(p)
    if st != 404: fail("%s: %d, 404 expected" % (p, st))
for target in [b"/../../../etc/passwd", b"/..%2f..%2fetc/passwd", b"//etc/passwd", b"/loss/../../etc/passwd"]:
    r = raw(b"GET " + target + b" HTTP/1.1\r\nHost: x\r\n\r\n")
    if not r.startswith(b"HTTP/1.1 404 ") or b"root:" in r: fail("%r: %r" % (target, r[:80]))
print("ok: unknown routes and traversal attempts get 404")
r = raw(b"POST /jobs.json HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n")
if not r.startswith(b"HTTP/1.1 405 ") or b"\r\nAllow: GET\r\n" not in r: fail("POST: %r" % r[:120])
r = raw(b"DELETE / HTTP/1.1\r\n\r\n")
if not r.startswith(b"HTTP/1.1 405 "): fail("DELETE: %r" % r[:80])
r = raw(b"garbage\r\n\r\n")
if not r.startswith(b"HTTP/1.1 400 "): fail("garbage: %r" % r[:80])
r = raw(b"GET / HTTP/1.1\r\nX-Pad: " + b"a" * 20000 + b"\r\n\r\n")
if not r.startswith(b"HTTP/1.1 431 "): fail("oversized: %r" % r[:80])
r = raw(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
if not r.startswith(b"HTTP/1.1 200 ") or b"Connection: close" not in r or not r.rstrip().endswith(b"</html>"):
    fail("raw GET /: %r" % r[:200])
# a client that leaves without reading, one that hangs up mid-request
s = socket.create_connection(("127.0.0.1", port)); s.sendall(b"GET /ecg/%d.png HTTP/1.1\r\n\r\n" % jid); s.close()
s = socket.create_connection(("127.0.0.1", port)); s.sendall(b"GET / HT"); s.close()
st, h, b = get("/jobs.json")
if st != 200: fail("the server after rude clients: %d" % st)
print("ok: POST/DELETE 405 (Allow: GET), garbage 400, oversized 431, rude clients survived")

# listening on 127.0.0.1 only: the kernel's socket tables
listen = []
for table in ("/proc/net/tcp", "/proc/net/tcp6"):
    for line in open(table).read().splitlines()[1:]:
        f = line.split()
        addr, hexport = f[1].split(":")
        if int(hexport, 16) == port and f[3] == "0A": listen.append((table, addr))
if listen != [("/proc/net/tcp", "0100007F")]: fail("listening sockets on port %d: %r" % (port, listen))
print("ok: the only listening socket on port %d is 127.0.0.1" % port)
open(tmp + "/job", "w").write("%d %s %s\n" % (jid, j["name"], "%.4g" % final))
PY
$PY "$tmp/check.py" "$port" "$tmp" || fail "HTTP checks"

# headless Chromium: a screenshot and the DOM
chrome() {
    timeout 90 chromium --headless --no-sandbox --disable-gpu --disable-quic --no-first-run \
        --disable-background-networking --disable-component-update --disable-sync \
        --user-data-dir="$(mktemp -d -p "$tmp")" --window-size=1200,900 "$@" "http://127.0.0.1:$port/"
}
chrome --screenshot="$tmp/shot.png" > "$tmp/chrome.log" 2>&1 || { cat "$tmp/chrome.log"; fail "chromium --screenshot"; }
chrome --dump-dom > "$tmp/dom.html" 2> "$tmp/chrome2.log" || { cat "$tmp/chrome2.log"; fail "chromium --dump-dom"; }
[ -n "$KEEP_SHOT" ] && cp "$tmp/shot.png" "$KEEP_SHOT"
cat > "$tmp/png.py" <<'PY'
# decodes an 8-bit RGB/RGBA PNG (all five filters) and checks it is not blank
import struct, sys, zlib
b = open(sys.argv[1], "rb").read()
if b[:8] != b"\x89PNG\r\n\x1a\n": print("FAIL: not a PNG"); sys.exit(1)
pos, idat, hdr = 8, b"", None
while pos < len(b):
    n, kind = struct.unpack(">I4s", b[pos:pos + 8])
    data = b[pos + 8:pos + 8 + n]
    if kind == b"IHDR": hdr = struct.unpack(">IIBBBBB", data)
    if kind == b"IDAT": idat += data
    pos += 12 + n
w, h, depth, ctype, _, _, interlace = hdr
if depth != 8 or ctype not in (2, 6) or interlace: print("FAIL: unexpected PNG format", hdr); sys.exit(1)
bpp = 3 if ctype == 2 else 4
raw, stride, prev, rows = zlib.decompress(idat), w * bpp, bytearray(w * bpp), []
for y in range(h):
    f, line = raw[y * (stride + 1)], bytearray(raw[y * (stride + 1) + 1:(y + 1) * (stride + 1)])
    for i in range(stride):
        a = line[i - bpp] if i >= bpp else 0
        c = prev[i - bpp] if i >= bpp else 0
        if f == 1: line[i] = (line[i] + a) & 255
        elif f == 2: line[i] = (line[i] + prev[i]) & 255
        elif f == 3: line[i] = (line[i] + (a + prev[i]) // 2) & 255
        elif f == 4:
            p = a + prev[i] - c
            pa, pb, pc = abs(p - a), abs(p - prev[i]), abs(p - c)
            line[i] = (line[i] + (a if pa <= pb and pa <= pc else prev[i] if pb <= pc else c)) & 255
    rows.append(line)
    prev = line
dark = coloured = 0
colours = set()
for line in rows[::3]:
    for x in range(0, stride, bpp * 3):
        r, g, bl = line[x], line[x + 1], line[x + 2]
        colours.add((r, g, bl))
        if r + g + bl < 200: dark += 1
        if max(r, g, bl) - min(r, g, bl) > 60: coloured += 1
n = ((h + 2) // 3) * ((w + 2) // 3)
print("screenshot %dx%d: %d sampled pixels, %.2f%% dark, %.2f%% coloured, %d colours" % (w, h, n, 100.0 * dark / n, 100.0 * coloured / n, len(colours)))
if (w, h) != (1200, 900): print("FAIL: size"); sys.exit(1)
# text and curves are dark, the ECG paper's grid and the loss line coloured
if dark < n * 0.002 or coloured < n * 0.01 or len(colours) < 20: print("FAIL: the screenshot looks blank"); sys.exit(1)
PY
$PY "$tmp/png.py" "$tmp/shot.png" || fail "screenshot"
ok "chromium screenshot is a non-blank 1200x900 PNG"

read jid jname jloss < "$tmp/job"
grep -q "<tr id=\"job-$jid\"><td>$jid</td><td class=\"name\">$jname</td><td class=\"status done\">done</td><td class=\"num step\">30/30</td><td class=\"num loss\">$jloss</td>" "$tmp/dom.html" \
    || { cat "$tmp/dom.html"; fail "the DOM does not list job $jid $jname, done, 30/30, loss $jloss"; }
grep -q "<img src=\"/loss/$jid.png?n=30\"" "$tmp/dom.html" || fail "the DOM has no loss curve"
grep -q "<img src=\"/ecg/$jid.png?v=1\"" "$tmp/dom.html" || fail "the DOM has no ECG figure"
grep -q '<meta http-equiv="refresh" content="2">' "$tmp/dom.html" || fail "the page does not refresh itself"
ok "chromium DOM lists job $jid ($jname), done, step 30/30, loss $jloss, with its figures"

# the script ends when told; the server goes with it
touch "$tmp/stop"
n=0
while kill -0 "$pid" 2>/dev/null; do
    n=$((n + 1)); [ $n -gt 100 ] && fail "ecgwb did not exit after the stop file"
    sleep 0.1
done
wait "$pid"; rc=$?
pid=
[ $rc = 0 ] || fail "ecgwb exited with $rc"
grep -q "dashboard at http://127.0.0.1:$port/" "$tmp/server.log" || fail "no 'dashboard at' line"
$PY -c "import socket,sys; socket.create_connection(('127.0.0.1', $port), timeout=2)" 2>/dev/null && fail "the port is still open after exit"
ok "the script ended cleanly (exit 0) and the port is closed"

# in the REPL: wb.dashboard(0) serves while the prompt waits for input
$PY - "$ECGWB" <<'PY' || fail "the dashboard in the REPL"
import json, subprocess, sys, time, urllib.request
p = subprocess.Popen([sys.argv[1]], stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
try:
    p.stdin.write('wb = require "ecgwb"; d = wb.dashboard(0); io.stderr:write("PORT ", d.port, "\\n")\n')
    p.stdin.write('wb.report { step = 7, loss = 0.25 }\n')
    p.stdin.flush()
    line = ""
    while not line.startswith("PORT"):
        line = p.stderr.readline()
        if not line: sys.exit("no port from the REPL")
    port = int(line.split()[1])
    for _ in range(100):
        jobs = json.loads(urllib.request.urlopen("http://127.0.0.1:%d/jobs.json" % port, timeout=10).read())["jobs"]
        if jobs: break
        time.sleep(0.05)
    if jobs[0]["id"] != 0 or jobs[0]["metrics"] != {"step": 7, "loss": 0.25}: sys.exit("REPL jobs.json: %r" % jobs)
    p.stdin.close()
    if p.wait(timeout=30) != 0: sys.exit("the REPL exited with %d" % p.returncode)
finally:
    if p.poll() is None: p.kill()
PY
ok "wb.dashboard(0) in the REPL lists the REPL's own reports as job 0"

# option errors
"$ECGWB" --serve 70000 -e 'print(1)' > "$tmp/o.log" 2>&1; [ $? = 2 ] || fail "--serve 70000 should exit 2"
grep -q "0..65535" "$tmp/o.log" || fail "--serve 70000 message: $(cat "$tmp/o.log")"
"$ECGWB" --serve > "$tmp/o.log" 2>&1; [ $? = 2 ] || fail "--serve without a port should exit 2"
$PY -c "
import socket, subprocess, sys
s = socket.socket(); s.bind(('127.0.0.1', 0)); s.listen(1)
r = subprocess.run(['$ECGWB', '--serve', str(s.getsockname()[1]), '-e', 'print(1)'], capture_output=True, text=True, timeout=60)
sys.exit(0 if r.returncode == 1 and 'address already in use' in r.stderr and '1' not in r.stdout else 1)
" || fail "a port in use should fail with a clear message"
ok "bad ports and a port in use give clear errors"
echo "all dashboard tests passed"
