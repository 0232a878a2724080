#!/bin/sh
# test_notebooks.sh: `ecgwb notebook run` (lua/ecgwb/notebook.lua).
# Runs every shipped notebook (notebooks/*.lua) and checks its HTML page with
# tests/check_notebook_html.py (html.parser, each code cell's code, every
# embedded PNG decodes, figure counts per cell); runs small notebooks written
# here for the format's rules (shared locals, captured print/io.write,
# Markdown subset, escaping), for an error (exit 1, the error and its
# traceback in the page, later cells not run) and for a syntax error; then
# renders pages in headless Chromium and checks the screenshots are not blank.
set -eu
ECGWB=${ECGWB:-build/ecgwb}
PY=/usr/bin/python3
CHECK=tests/check_notebook_html.py
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
fail() { echo "FAIL: $*"; exit 1; }

# ---- the shipped notebooks; cell -> minimum number of PNG figures
figures_for() {
    case "$1" in
        *simulator_tour.lua) echo "2=3,3=3,4=4,5=6,6=4,7=1" ;;     # one 12-lead page per condition
        *encoder_pretraining.lua) echo "6=1,7=1" ;;                  # loss curve; reconstruction strips
        *) echo "" ;;
    esac
}
for nb in notebooks/*.lua; do
    # the UniECG demo needs a trained model: tests/test_two_stage.sh runs it on the one it trains
    [ "$nb" = notebooks/two_stage_demo.lua ] && continue
    out="$T/$(basename "$nb" .lua).html"
    start=$(date +%s)
    "$ECGWB" notebook run "$nb" --out "$out" --quiet || fail "$nb exits $?"
    echo "$nb: $(($(date +%s) - start)) s, $(wc -c < "$out") bytes of HTML"
    figs=$(figures_for "$nb")
    [ -n "$figs" ] || fail "$nb: no figure expectations in this test; add them to figures_for"
    $PY $CHECK page "$nb" "$out" --figures "$figs" > "$T/summary.json" || fail "$nb: page check"
done
# what the notebooks print
grep -q "report: " "$T/simulator_tour.html" || fail "simulator tour: no report text"
grep -q "wb.signal.delineate over" "$T/simulator_tour.html" || fail "simulator tour: no interval table"
grep -q "mean |measured - truth| QRS" "$T/simulator_tour.html" || fail "simulator tour: no summary"
grep -q "300 steps in" "$T/encoder_pretraining.html" || fail "encoder: no training output"
grep -q "masked-reconstruction encoder, 300 steps" "$T/encoder_pretraining.html" || fail "encoder: no result table"

# ---- the format: shared locals, captured output, tables, Markdown
cat > "$T/feat.lua" <<'NB'
--[[md
# Format *check*

A paragraph with `x < y`, **bold**, _em_, snake_case_name, a [link](https://example.org/a_b)
and a [bad link](javascript:alert(1)) and <script>alert(1)</script>.

- item one
- item `two`

3. three
4. four

```lua
local s = "<b>" -- kept verbatim
```
]]
local answer = 41
print("first", answer)
--%% second cell
answer = answer + 1
io.write("answer=", answer, "\n")
nb.table({ { "a", 1.5 }, { "<b>", 2 } }, { header = { "k", "v" } })
nb.md("made by **nb.md**")
--[==[md
Text with ]] inside a level-2 block.
]==]
print(("x"):rep(3))
NB
"$ECGWB" notebook run "$T/feat.lua" --out "$T/feat.html" --quiet || fail "format notebook exits $?"
$PY $CHECK page "$T/feat.lua" "$T/feat.html" > "$T/feat.json" || fail "format notebook: page check"
$PY - "$T/feat.json" "$T/feat.html" <<'PYEOF' || fail "format notebook: contents"
import json, sys
cells = json.load(open(sys.argv[1]))
doc = open(sys.argv[2]).read()
assert [c["out"] for c in cells] == ["first\t41\n", "answer=42\n", "xxx\n"], [c["out"] for c in cells]
for frag in ["<h1>Format <em>check</em></h1>", "<code>x &lt; y</code>", "<strong>bold</strong>", "<em>em</em>",
             "snake_case_name", '<a href="https://example.org/a_b">link</a>', "[bad link](javascript:alert(1))",
             "&lt;script&gt;alert(1)&lt;/script&gt;", "<ul>\n<li>item one</li>\n<li>item <code>two</code></li>\n</ul>",
             '<ol start="3">', '<pre><code class="language-lua">local s = &quot;&lt;b&gt;&quot; -- kept verbatim</code></pre>',
             "<th>k</th>", '<td class="num">1.5</td>', "<td>&lt;b&gt;</td>", "made by <strong>nb.md</strong>",
             "<p>Text with ]] inside a level-2 block.</p>", "[2] line 20 &middot; second cell"]:
    assert frag in doc, "missing: " + frag
PYEOF

# ---- an error stops the run: exit 1, the error in the page, later cells not run
cat > "$T/err.lua" <<'NB'
print("before")
--%%
local t = nil
print("about to fail")
local x = t.field  -- line 5
--%%
print("never printed")
NB
rc=0; "$ECGWB" notebook run "$T/err.lua" --out "$T/err.html" --quiet 2> "$T/err.stderr" || rc=$?
[ "$rc" = 1 ] || fail "a failing notebook exits $rc, expected 1"
grep -q "err.lua:5: attempt to index local 't'" "$T/err.stderr" || fail "the error is not on stderr"
$PY $CHECK page "$T/err.lua" "$T/err.html" --status error > "$T/err.json" || fail "error notebook: page check"
$PY - "$T/err.json" <<'PYEOF' || fail "error notebook: contents"
import json, sys
c = json.load(open(sys.argv[1]))
assert "error" not in c[0]["classes"] and c[0]["out"] == "before\n"
assert "error" in c[1]["classes"] and c[1]["out"] == "about to fail\n", c[1]
assert "err.lua:5: attempt to index local 't'" in c[1]["error"] and "stack traceback" in c[1]["error"], c[1]["error"]
assert "notrun" in c[2]["classes"] and c[2]["out"] == "", c[2]
PYEOF
grep -q "Error in cell 2" "$T/err.html" || fail "no 'Error in cell 2' heading"

# ---- a syntax error marks its cell and nothing runs
printf 'print("a")\n--%%%%\nlocal = 3\n--%%%%\nprint("b")\n' > "$T/syn.lua"
rc=0; "$ECGWB" notebook run "$T/syn.lua" --out "$T/syn.html" --quiet 2>/dev/null || rc=$?
[ "$rc" = 1 ] || fail "a syntax error exits $rc, expected 1"
$PY $CHECK page "$T/syn.lua" "$T/syn.html" --status error > "$T/syn.json" || fail "syntax error: page check"
$PY - "$T/syn.json" <<'PYEOF' || fail "syntax error: contents"
import json, sys
c = json.load(open(sys.argv[1]))
assert "error" in c[1]["classes"] and "syn.lua:3:" in c[1]["error"], c
assert c[0]["out"] == "" and "notrun" in c[2]["classes"], c
PYEOF

# ---- bad arguments
rc=0; "$ECGWB" notebook frobnicate 2>/dev/null || rc=$?
[ "$rc" = 2 ] || fail "'notebook frobnicate' exits $rc, expected 2"
rc=0; "$ECGWB" notebook run "$T/missing.lua" 2>/dev/null || rc=$?
[ "$rc" = 1 ] || fail "a missing notebook exits $rc, expected 1"

# ---- the pages in headless Chromium (make deps installs Debian's chromium)
command -v chromium > /dev/null || fail "chromium is not installed (make deps installs it)"
# pages with figures: 2% of the pixels or more are not white; text pages 0.3%
for page in simulator_tour:0.02 encoder_pretraining:0.02 feat:0.003 err:0.003; do
    min=${page#*:}; page=${page%:*}
    prof=$(mktemp -d)
    timeout 120 chromium --headless --no-sandbox --disable-gpu --disable-quic --no-first-run \
        --disable-background-networking --disable-component-update --disable-sync --user-data-dir="$prof" \
        --hide-scrollbars --window-size=1280,2400 --screenshot="$T/$page.png" "file://$T/$page.html" \
        > "$T/chromium.log" 2>&1 || { cat "$T/chromium.log"; rm -rf "$prof"; fail "chromium failed on $page.html"; }
    rm -rf "$prof"
    $PY $CHECK screenshot "$T/$page.png" "$min" || fail "$page.html renders blank"
done
# NOTEBOOK_SCREENSHOTS=DIR keeps the screenshots, to look at them
if [ -n "${NOTEBOOK_SCREENSHOTS:-}" ]; then cp "$T"/*.png "$NOTEBOOK_SCREENSHOTS"/; fi
echo "ok"
