--[[ make_sim.lua: the simulated ECG-text corpus (wb.sim.make_corpus).

  ecgwb data/make_sim.lua --n N --fs 500 --seconds 10 --seed S --out FILE.h5
      [--normal 0.3] [--noise 0.3] [--split 80,10,10] [--batch 256]
      [--dtype f32|int16] [--compression 0..9]

Writes N records in the ecgwb dataset layout (data/README.md): signals (N, 12,
fs*seconds) in mV (f32, or int16 at 1 µV), the simulator's labels
(wb.sim.label_names), reports, age, sex, split (1 train, 2 validation, 3 test)
and id "sim-S-i". The ground truth the layout has no place for goes to plain
datasets beside it: truth/hr, truth/pr_ms (NaN without P waves),
truth/qrs_ms, truth/qt_ms, truth/qtc_ms, truth/axis_deg, each (N) f32.

Every record's conditions are drawn from (seed, index) alone
(wb.sim.corpus_record): --normal is the share of normal records; the others
get one to three findings, with incompatible ones (two rhythms, two bundle
branch blocks, left and right axis, LVH and low voltage, LVH with an axis
beyond [-60, 75] deg) excluded. --noise is
the chance of each noise source (SNR 10-30 dB). Records are simulated in
batches by ewb_sim_batch (OpenMP over records), so the file is the same at
any thread count.
]]
local wb = require "ecgwb"

local o, a, i = {}, { ... }, 1
while i <= #a do
  local k = a[i]:match("^%-%-(.+)$")
  if not k or (wb.sim.corpus_defaults[k] == nil and k ~= "out") or k == "progress" then
    error("make_sim: unknown argument '" .. a[i] .. "'")
  end
  o[k] = a[i + 1]
  i = i + 2
end
if not o.out then error("make_sim: --out FILE.h5 is required") end
local out, seconds = wb.sim.make_corpus(o)
local c = wb.sim.corpus_defaults
print(string.format("make_sim: %d records (%g s at %g Hz) in %s, %.1f s", tonumber(o.n or c.n), tonumber(o.seconds or c.seconds),
  tonumber(o.fs or c.fs), out, seconds))
