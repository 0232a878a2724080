#!/bin/sh
# tests/test_h5_torch.sh: weights saved by wb.save_state_dict load into the
# PyTorch twin of the model (tests/reference/load_state_dict_torch.py), and
# PyTorch's output on the same ECG batch matches ecgwb's to 1e-5. Skips (exit
# 0) with a notice when /usr/bin/python3 has no torch or h5py.
set -e
ECGWB=${ECGWB:-build/ecgwb}
PY=/usr/bin/python3
if ! [ -x "$PY" ] || ! "$PY" -c "import torch, h5py" 2>/dev/null; then
    echo "SKIP test_h5_torch: /usr/bin/python3 with torch and h5py is not available"
    exit 0
fi
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
"$ECGWB" -e "
local wb = require 'ecgwb'
local nn = wb.nn
local Tiny = nn.class('TinyEncoder')
function Tiny:__init()
  self.conv1 = nn.Conv1d(12, 16, 2, { stride = 2 })
  self.conv2 = nn.Conv1d(16, 16, 2, { stride = 2 })
  self.proj = nn.Linear(16, 32)
  self.layer = nn.TransformerEncoderLayer(32, 4, { dim_feedforward = 64, dropout = 0, activation = 'gelu', norm_first = true })
  self.norm = nn.LayerNorm(32)
  self.head = nn.Linear(32, 5)
end
function Tiny:forward(x)
  local h = wb.gelu(self.conv1(x))
  h = wb.gelu(self.conv2(h))
  h = self.proj(h:transpose(2, 3))
  h = self.norm(self.layer(h))
  return self.head(h:mean(2))
end
wb.manual_seed(4)
local model = Tiny()
-- non-trivial LayerNorm weights and biases (they start at 1 and 0)
wb.no_grad(function() for _, p in ipairs(model:parameters()) do p:add_(wb.randn(unpack(p:size())) * 0.05) end end)
model:eval()
local x = wb.stack({ (wb.sim.ecg { fs = 250, seconds = 1, hr = 70, seed = 1, index = 1 }),
                     (wb.sim.ecg { fs = 250, seconds = 1, hr = 110, seed = 1, index = 2 }) }, 1):narrow(3, 1, 64)
local y = wb.no_grad(function() return model(x) end)
wb.save_state_dict('$dir/weights.h5', model:state_dict())
wb.h5.save('$dir/io.h5', { x = x, y = y })
print(string.format('ecgwb saved %d tensors; output %s', #wb.h5.list('$dir/weights.h5'), table.concat(y:size(), 'x')))
"
"$PY" tests/reference/load_state_dict_torch.py "$dir/weights.h5" "$dir/io.h5" ${TOL:+--tol $TOL}
