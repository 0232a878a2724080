--[[ make_sim.lua: the simulated ECG-text corpus.

  ecgwb data/make_sim.lua --n N --fs 500 --seconds 10 --seed S --out FILE.h5
      [--normal 0.3] [--noise 0.3] [--split 80,10,10] [--batch 256]

Writes N records in the ecgwb dataset layout (data/README.md): signals (N, 12,
fs*seconds) f32 in mV, the simulator's labels (wb.sim.label_names), reports,
age, sex, split (1 train, 2 validation, 3 test) and id "sim-S-i". The ground
truth the layout has no place for goes to plain datasets beside it:
truth/hr, truth/pr_ms (NaN without P waves), truth/qrs_ms, truth/qt_ms,
truth/qtc_ms, truth/axis_deg, each (N) f32.

Every record's conditions are drawn from (seed, index) alone: --normal is the
share of normal records; the others get one to three findings, with
incompatible ones (two rhythms, two bundle branch blocks, left and right axis,
LVH and low voltage) excluded. --noise is the chance of each noise source
(SNR 10-30 dB). Records are simulated in batches by ewb_sim_batch (OpenMP over
records), so the file is the same at any thread count.
]]
local wb = require "ecgwb"

local args = { n = 1000, fs = 500, seconds = 10, seed = 1, out = nil, normal = 0.3, noise = 0.3, split = "80,10,10", batch = 256 }
local a = { ... }
local i = 1
while i <= #a do
  local k = a[i]:match("^%-%-(.+)$")
  if not k or args[k] == nil and k ~= "out" then error("make_sim: unknown argument '" .. a[i] .. "'") end
  args[k] = a[i + 1]
  i = i + 2
end
if not args.out then error("make_sim: --out FILE.h5 is required") end
local N, fs, seconds, seed = tonumber(args.n), tonumber(args.fs), tonumber(args.seconds), tonumber(args.seed)
local p_normal, p_noise, B = tonumber(args.normal), tonumber(args.noise), tonumber(args.batch)
local sp = {}
for x in tostring(args.split):gmatch("[^,]+") do sp[#sp + 1] = tonumber(x) end
local sp_total = sp[1] + sp[2] + sp[3]

-- a generator per record: Park-Miller on a hash of (seed, index)
local function rng(index)
  local x = (seed * 1000003 + index * 7919 + 12345) % 2147483647
  if x <= 0 then x = x + 2147483646 end
  local function u()
    x = (x * 48271) % 2147483647
    return x / 2147483647
  end
  return u, function(lo, hi) return lo + (hi - lo) * u() end
end

local findings = {
  { "SBRAD", "rate", function(o, U) o.hr = U(40, 55) end },
  { "STACH", "rate", function(o, U) o.hr = U(105, 150) end },
  { "AFIB", "rate", function(o, U) o.rhythm = "afib"; o.hr = U(70, 140) end },
  { "AFLT", "rate", function(o, U, u) o.rhythm = "aflt"; local k = ({ 2, 4, nil })[math.floor(u() * 3) + 1]; o.flutter_block = k end },
  { "1AVB", "pr", function(o, U) o.pr_ms = U(220, 320) end },
  { "CLBBB", "bbb", function(o) o.bbb = "left" end },
  { "CRBBB", "bbb", function(o) o.bbb = "right" end },
  { "PVC", "pvc", function(o, U) o.pvc_prob = U(0.1, 0.3) end },
  { "STE", "ste", function(o, U, u) o.st = ({ "anterior", "inferior", "lateral" })[math.floor(u() * 3) + 1]; o.st_mv = U(0.1, 0.35) end },
  { "STD_", "std", function(o, U) o.std_mv = U(0.1, 0.25) end },
  { "INVT", "invt", function(o) o.t_inversion = true end },
  { "LVH", "volt", function(o, U) o.lvh_mv = U(3.6, 5.5) end },
  { "LNGQT", "qt", function(o, U) o.qt_extra_ms = U(80, 200) end },
  { "LAD", "axis", function(o, U) o.axis = U(-80, -35) end },
  { "RAD", "axis", function(o, U) o.axis = U(100, 150) end },
  { "LVOLT", "volt", function(o, U) o.low_voltage_mv = U(0.25, 0.45) end },
}

local function conditions(index)
  local u, U = rng(index)
  local o = { fs = fs, seconds = seconds, seed = seed, index = index, hr = U(60, 95), hr_std = U(1, 4) }
  if u() >= p_normal then
    local want, used, n = 1 + math.floor(u() * 3), {}, 0
    for _ = 1, 20 do
      if n == want then break end
      local f = findings[math.floor(u() * #findings) + 1]
      local blocked = used[f[2]] or (f[2] == "pr" and (o.rhythm ~= nil)) or (f[2] == "rate" and f[1] ~= "SBRAD" and f[1] ~= "STACH" and o.pr_ms)
      if not blocked then
        f[3](o, U, u)
        used[f[2]] = true
        n = n + 1
      end
    end
  end
  local noise = {}
  for _, k in ipairs({ "bw", "pl", "emg", "em" }) do
    if u() < p_noise then noise[k] = U(10, 30) end
  end
  if u() < 0.5 then noise.pl_hz = 60 end
  o.noise = noise
  local r = u() * sp_total
  local split = r < sp[1] and 1 or r < sp[1] + sp[2] and 2 or 3
  return o, split
end

local ds = wb.dataset.create(args.out, { fs = fs, leads = 12, samples = math.floor(fs * seconds + 0.5),
                                        labels = wb.sim.label_names, units = "mV" })
local truth = { hr = {}, pr_ms = {}, qrs_ms = {}, qt_ms = {}, qtc_ms = {}, axis_deg = {} }
local t0 = wb.now()
local done = 0
while done < N do
  local m = math.min(B, N - done)
  local list, splits = {}, {}
  for j = 1, m do list[j], splits[j] = conditions(done + j - 1) end
  local b = wb.sim.batch(list)
  local ids, ages, sexes = {}, {}, {}
  for j = 1, m do
    local t = b.truth[j]
    ids[j] = string.format("sim-%d-%d", seed, done + j - 1)
    ages[j] = t.age
    sexes[j] = t.sex == "male" and 1 or 0
    for k in pairs(truth) do truth[k][done + j] = t[k] or 0 / 0 end
  end
  ds:append { signals = b.ecg, labels = b.labels, ids = ids, reports = b.report, age = ages, sex = sexes, split = splits }
  b.ecg:free(); b.clean:free(); b.rpeaks:free()
  done = done + m
  local w = 30
  local bar = string.rep("#", math.floor(w * done / N)) .. string.rep(" ", w - math.floor(w * done / N))
  io.stderr:write(string.format("\r[%s] %d/%d records, %.0f/s", bar, done, N, done / (wb.now() - t0)))
  io.stderr:flush()
end
io.stderr:write("\n")
ds:close()
for k, v in pairs(truth) do wb.h5.write(args.out, "truth/" .. k, wb.tensor(v)) end
print(string.format("make_sim: %d records (%g s at %g Hz) in %s, %.1f s", N, seconds, fs, args.out, wb.now() - t0))
