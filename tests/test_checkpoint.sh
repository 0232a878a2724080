#!/bin/sh
# tests/test_checkpoint.sh: a process writing checkpoints back to back is
# killed with SIGKILL at a random moment, 20 times; after every kill the
# checkpoint file loads, its checksum verifies, and its content is whole: every
# weight and optimiser value of checkpoint k equals k (a mix of two
# checkpoints or a half-written one would fail). Counts the kills that landed
# during a write (a .tmp was left behind) and how many of those .tmp files
# are broken: what a writer without the tmp-and-rename would have left.
set -e
ECGWB=${ECGWB:-build/ecgwb}
TRIALS=${TRIALS:-20}
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
ckpt="$dir/ckpt.h5"

cat > "$dir/writer.lua" <<'LUA'
-- writes checkpoint k = 1, 2, ... with every tensor filled with k
local wb = require "ecgwb"
local path = ...
local nn = wb.nn
local model = nn.Sequential(nn.Linear(256, 512), nn.GELU(), nn.Linear(512, 256)) -- 263k params
local opt = wb.optim.AdamW(model:parameters())
local loss = model(wb.randn(2, 256)):sum()
loss:backward(); opt:step()
for k = 1, math.huge do
  wb.no_grad(function()
    for _, p in ipairs(model:parameters()) do p:fill_(k) end
    for _, st in pairs(opt.state) do st.exp_avg:fill_(k); st.exp_avg_sq:fill_(k) end
  end)
  wb.checkpoint.save(path, { model = model, optimizer = opt, step = k, loader = { k, k }, config = { k = k } })
end
LUA

cat > "$dir/check.lua" <<'LUA'
-- loads the checkpoint and checks that it is whole; prints its step
local wb = require "ecgwb"
local path = ...
local ok, why = wb.checkpoint.verify(path)
if not ok then io.stderr:write("verify failed: " .. why .. "\n"); os.exit(1) end
local r = wb.checkpoint.read(path)
local k = r.meta.step
local n = 0
for name, t in pairs(r.tensors) do
  if name:match("^model/") or name:match("/exp_avg") then
    if t:min():item() ~= k or t:max():item() ~= k then
      io.stderr:write(name .. " is not all " .. k .. "\n"); os.exit(1)
    end
    n = n + 1
  end
end
if n ~= 12 or r.config.k ~= k or r.meta.loader[2] ~= k then io.stderr:write("incomplete checkpoint\n"); os.exit(1) end
print(k)
LUA

mid_write=0
broken_tmp=0
i=1
while [ $i -le "$TRIALS" ]; do
    rm -f "$ckpt"
    "$ECGWB" "$dir/writer.lua" "$ckpt" &
    pid=$!
    # wait for the first checkpoint (it appears whole, by rename)
    n=0
    while [ ! -f "$ckpt" ]; do
        sleep 0.02; n=$((n + 1))
        [ $n -lt 1500 ] || { echo "trial $i: no checkpoint after 30 s"; kill -9 $pid; exit 1; }
    done
    delay=$(awk -v s="$i$$" 'BEGIN { srand(s); printf "%.3f", 0.05 + rand() * 0.6 }')
    sleep "$delay"
    kill -9 $pid
    wait $pid 2>/dev/null || true
    if [ -f "$ckpt.tmp" ]; then
        mid_write=$((mid_write + 1))
        "$ECGWB" "$dir/check.lua" "$ckpt.tmp" >/dev/null 2>&1 || broken_tmp=$((broken_tmp + 1))
    fi
    if ! step=$("$ECGWB" "$dir/check.lua" "$ckpt"); then
        echo "trial $i: the checkpoint left after SIGKILL (at +${delay}s) does not load"
        exit 1
    fi
    echo "trial $i: killed at +${delay}s, checkpoint $step loads and verifies$([ -f "$ckpt.tmp" ] && echo ' (killed during a write)')"
    i=$((i + 1))
done
echo "$TRIALS kills, $mid_write during a write ($broken_tmp left a broken .tmp): every last checkpoint loaded"
# the kills must have hit writes, or the test proves nothing
[ "$mid_write" -ge $((TRIALS / 4)) ] && [ "$broken_tmp" -ge 1 ] ||
    { echo "too few kills landed during a write ($mid_write, $broken_tmp broken)"; exit 1; }
