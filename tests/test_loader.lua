-- tests/test_loader.lua: wb.loader (lua/ecgwb/loader.lua over core/loader.c).
-- Each augmentation does what it says (crop window, masked leads zero with at
-- least one kept, noise sigma and SNR measured, wander a sinusoid in range,
-- scale range, circular and padded shift), augmentations are the same for a
-- (seed, epoch, record) whatever the workers, prefetch and batch size, and
-- differ per epoch; the dataset source with a split filter and labels; and
-- clear errors.
local wb = require "ecgwb"
local T = dofile("tests/check.lua")

local N, L, S = 40, 4, 200

-- record n, lead l, time t -> n*1e4 + l*1e3 + t (exact in f32)
local ramp = wb.zeros(N, L, S)
do
  local p = wb.ffi.cast("float*", wb.C.ewb_tensor_data(ramp.ptr))
  for n = 0, N - 1 do for l = 0, L - 1 do for t = 0, S - 1 do p[(n * L + l) * S + t] = n * 1e4 + l * 1e3 + t end end end
end

-- all batches of one epoch as one (N, L, S') tensor in record order (rows by index)
local function epoch_by_record(src, opts)
  opts.epochs = opts.epochs or 1
  local ld = wb.loader.new(src, opts)
  local out = {}
  for _ = 1, opts.epochs do
    for b in ld:epoch() do
      local idx = b.index:totable()
      for k = 1, b.size do out[#out + 1] = { idx[k], b.signals:select(1, k):clone(), b.epoch } end
    end
  end
  ld:close()
  table.sort(out, function(a, b) return a[3] < b[3] or a[3] == b[3] and a[1] < b[1] end)
  return out
end

local function p(t) return wb.ffi.cast("float*", wb.C.ewb_tensor_data(t.ptr)) end

-- crop: a window of consecutive samples, at varying starts
do
  local recs = epoch_by_record(ramp, { batch = 7, seed = 1, augment = { { "crop", length = 50 } } })
  T.ok(#recs == N, "crop: one epoch")
  local ok, starts = true, {}
  for _, r in ipairs(recs) do
    local n, x = r[1], p(r[2])
    T.ok(r[2]:size(2) == 50, "crop length")
    local t0 = x[0] - n * 1e4
    starts[t0] = true
    ok = ok and t0 >= 0 and t0 <= S - 50
    for l = 0, L - 1 do for t = 0, 49 do ok = ok and x[l * 50 + t] == n * 1e4 + l * 1e3 + t0 + t end end
  end
  local nstarts = 0
  for _ in pairs(starts) do nstarts = nstarts + 1 end
  T.ok(ok, "crop: each row is the window [t0, t0 + 50) of the record, same t0 for all leads")
  T.ok(nstarts > 20, "crop: starts vary (" .. nstarts .. " distinct of 40)")
end

-- lead masking: zero or untouched leads, at least one kept, about p dropped
do
  local ones = wb.ones(400, 12, 8)
  for _, pr in ipairs { 0.5, 1.0 } do
    local recs = epoch_by_record(ones, { batch = 32, seed = 2, augment = { { "lead_mask", p = pr } } })
    local ok, dropped, minkept = true, 0, 12
    for _, r in ipairs(recs) do
      local x, kept = p(r[2]), 0
      for l = 0, 11 do
        local v = x[l * 8]
        for t = 0, 7 do ok = ok and x[l * 8 + t] == v end
        ok = ok and (v == 0 or v == 1)
        kept = kept + v
      end
      dropped = dropped + 12 - kept
      minkept = math.min(minkept, kept)
    end
    T.ok(ok, "lead_mask: whole leads zeroed, others untouched")
    T.ok(minkept >= 1, "lead_mask p=" .. pr .. ": at least one lead kept")
    local frac = dropped / (400 * 12)
    if pr == 1 then T.ok(dropped == 400 * 11, "lead_mask p=1: exactly one lead kept per record")
    else T.ok(math.abs(frac - 0.5) < 0.04, "lead_mask p=0.5: dropped fraction " .. frac) end
  end
end

-- noise: sigma measured; SNR measured against a sine
do
  local z = wb.zeros(20, 12, 1000)
  local recs = epoch_by_record(z, { batch = 8, seed = 3, augment = { { "noise", sigma = 0.05 } } })
  local s = wb.stack((function() local l = {} for i, r in ipairs(recs) do l[i] = r[2] end return l end)())
  local sd = s:std():item()
  T.ok(math.abs(sd - 0.05) / 0.05 < 0.01, "noise sigma 0.05: measured " .. sd)
  T.ok(math.abs(s:mean():item()) < 0.001, "noise mean 0")
  local kurt = (s / sd):pow(4):mean():item()
  T.ok(math.abs(kurt - 3) < 0.1, "noise is Gaussian: kurtosis " .. kurt)
  local tail = (s:abs() / sd):gt(3):to("f32"):mean():item()
  T.ok(math.abs(tail - 0.0027) < 0.0006, "noise: P(|z| > 3) = " .. tail .. ", want 0.0027")
  local t = wb.arange(0, 1000, 1):mul(2 * math.pi / 50):sin() -- amplitude 1: power 1/2
  local sine = t:view(1, 1, 1000):expand(20, 12, 1000):contiguous()
  recs = epoch_by_record(sine, { batch = 8, seed = 3, augment = { { "noise", snr_db = 20 } } })
  local res = {}
  for i, r in ipairs(recs) do res[i] = r[2] - sine:select(1, r[1] + 1) end
  sd = wb.stack(res):std():item()
  local want = math.sqrt(0.5 / 100)
  T.ok(math.abs(sd - want) / want < 0.02, "noise snr 20 dB: sigma " .. sd .. " want " .. want)
end

-- baseline wander: one component at 0.5 Hz (fs 100: period 200 samples), amplitude <= 0.2
do
  local z = wb.zeros(10, 3, 1000)
  local recs = epoch_by_record({ signals = z, fs = 100 },
    { batch = 4, seed = 4, augment = { { "wander", amplitude = 0.2, fmin = 0.5, fmax = 0.5, count = 1 } } })
  local ok, maxabs, amps = true, 0, {}
  for _, r in ipairs(recs) do
    local x = p(r[2])
    for l = 0, 2 do
      local a = 0
      for t = 0, 999 do a = math.max(a, math.abs(x[l * 1000 + t])) end
      amps[#amps + 1] = a
      maxabs = math.max(maxabs, a)
      for t = 0, 799 do ok = ok and math.abs(x[l * 1000 + t + 200] - x[l * 1000 + t]) < 1e-4 end
      -- a sinusoid: x[t-1] + x[t+1] = 2 cos(w) x[t]
      local c = 2 * math.cos(2 * math.pi * 0.5 / 100)
      for t = 1, 998 do ok = ok and math.abs(x[l * 1000 + t - 1] + x[l * 1000 + t + 1] - c * x[l * 1000 + t]) < 1e-5 end
    end
  end
  T.ok(ok, "wander: a 0.5 Hz sinusoid (period 200 samples at 100 Hz)")
  T.ok(maxabs <= 0.2 + 1e-6, "wander: amplitude <= 0.2, got " .. maxabs)
  table.sort(amps)
  T.ok(amps[1] < amps[#amps] * 0.8, "wander: amplitudes vary per lead")
end

-- scale: one factor per record in [lo, hi]
do
  local recs = epoch_by_record(wb.ones(200, 3, 5), { batch = 16, seed = 5, augment = { { "scale", lo = 0.5, hi = 2 } } })
  local ok, lo, hi = true, math.huge, -math.huge
  for _, r in ipairs(recs) do
    local x = p(r[2])
    for i = 1, 14 do ok = ok and x[i] == x[0] end
    lo, hi = math.min(lo, x[0]), math.max(hi, x[0])
  end
  T.ok(ok, "scale: one factor per record")
  T.ok(lo >= 0.5 and hi <= 2 and lo < 0.6 and hi > 1.9, "scale: factors span [0.5, 2]: " .. lo .. " .. " .. hi)
end

-- shift: circular rotation, or zero fill, by k in [-10, 10]
for _, circ in ipairs { true, false } do
  local recs = epoch_by_record(ramp, { batch = 8, seed = 6, augment = { { "shift", max = 10, circular = circ } } })
  local ok, ks = true, {}
  for _, r in ipairs(recs) do
    local n, x = r[1], p(r[2])
    -- find k from lead 0: y[t] = x[t - k]
    local k
    for kk = -10, 10 do
      local t = 20
      if x[t] == n * 1e4 + (t - kk) then k = kk end
    end
    ok = ok and k ~= nil
    if k then
      ks[k] = true
      for l = 0, L - 1 do
        for t = 0, S - 1 do
          local j = t - k
          local want
          if circ then want = n * 1e4 + l * 1e3 + (j % S)
          else want = (j >= 0 and j < S) and n * 1e4 + l * 1e3 + j or 0 end
          ok = ok and x[l * S + t] == want
        end
      end
    end
  end
  local nk = 0
  for _ in pairs(ks) do nk = nk + 1 end
  T.ok(ok, "shift (circular=" .. tostring(circ) .. "): rows shifted by one k in [-10, 10]")
  T.ok(nk >= 10, "shift: k varies (" .. nk .. " distinct)")
end

-- determinism: per (seed, epoch, record), whatever workers, prefetch and batch size
do
  local aug = { { "crop", length = 120 }, { "lead_mask", p = 0.3 }, { "noise", sigma = 10 }, { "wander", amplitude = 50 },
    { "scale", lo = 0.9, hi = 1.1 }, { "shift", max = 5, circular = false } }
  local src = { signals = ramp, fs = 100 }
  local a = epoch_by_record(src, { batch = 5, seed = 9, epochs = 2, workers = 1, prefetch = 1, augment = aug })
  local b = epoch_by_record(src, { batch = 5, seed = 9, epochs = 2, workers = 2, prefetch = 6, augment = aug })
  local c = epoch_by_record(src, { batch = 13, seed = 9, epochs = 2, workers = 3, augment = aug })
  local same_ab, same_ac, diff_epoch = true, true, 0
  for i = 1, 2 * N do
    same_ab = same_ab and a[i][1] == b[i][1] and T.relerr(a[i][2], b[i][2]) == 0
    same_ac = same_ac and a[i][1] == c[i][1] and T.relerr(a[i][2], c[i][2]) == 0
  end
  for i = 1, N do
    if T.relerr(a[i][2], a[N + i][2]) > 1e-3 then diff_epoch = diff_epoch + 1 end
  end
  T.ok(same_ab, "augmented records identical at 1 worker / prefetch 1 and 2 workers / prefetch 6")
  T.ok(same_ac, "augmented records identical with batch 13 and 3 workers (independent of the batch position)")
  T.ok(diff_epoch == N, "each epoch augments each record differently (" .. diff_epoch .. " of " .. N .. ")")
  local d = epoch_by_record(src, { batch = 5, seed = 10, augment = aug })
  T.ok(T.relerr(a[1][2], d[1][2]) > 1e-3, "another seed, other augmentations")
end

-- a dataset file: split filter, labels, fields, ownership of the tensors
do
  local file = os.tmpname() .. ".h5"
  local ds = wb.dataset.create(file, { fs = 100, leads = 2, samples = 30, labels = { "A", "B" } })
  local x = wb.randn(25, 2, 30)
  local labels, split, age = {}, {}, {}
  for i = 1, 25 do labels[i] = i % 2 == 0 and { "A" } or { "B" }; split[i] = i % 5 == 0 and 2 or 1; age[i] = i end
  ds:append { signals = x, labels = labels, split = split, age = age }
  local ld = wb.loader.new(ds, { batch = 4, seed = 1, split = 1, epochs = 1, drop_last = true })
  ds:close()
  T.ok(ld.n == 20 and ld.batches == 5 and ld.samples == 30 and ld.leads == 2 and ld.fs == 100, "loader sizes: " .. tostring(ld))
  local seen, ok = 0, true
  for b in ld:epoch() do
    T.ok(b.signals:size(1) == 4 and b.labels:size(2) == 2 and b.labels.dtype == "bool", "batch shapes")
    local idx, lab, ag, sp = b.index:totable(), b.labels:totable(), b.age:totable(), b.split:totable()
    for k = 1, 4 do
      local r = idx[k] + 1
      ok = ok and sp[k] == 1 and ag[k] == r and T.relerr(b.signals:select(1, k), x:select(1, r)) == 0
      ok = ok and lab[2 * k - 1] == (r % 2 == 0 and 1 or 0) and lab[2 * k] == (r % 2 == 1 and 1 or 0)
    end
    seen = seen + b.size
  end
  T.ok(ok and seen == 20, "dataset batches hold the split-1 records their index names, with labels and age")
  T.ok(ld:next() == nil, "after the last epoch next() is nil")
  local st = ld:stats()
  T.ok(st.taken == 5 and st.max_ahead <= 4, "stats: taken " .. st.taken .. ", max ahead " .. st.max_ahead)
  ld:close()
  ld:close()
  T.fails(function() ld:next() end, "loader.next: the loader is closed")

  -- errors
  T.fails(function() wb.loader.new("/no/such/file.h5", { batch = 4 }) end, "/no/such/file.h5")
  T.fails(function() wb.loader.new(file, { batch = 30, drop_last = true }) end, "batch_size 30 is larger than the 25 records")
  T.fails(function() wb.loader.new(file, { batch = 4, augment = { { "jitter", p = 1 } } }) end,
    "augment[1]: unknown augmentation 'jitter' (known: crop, lead_mask")
  T.fails(function() wb.loader.new(file, { batch = 4, augment = { { "crop", len = 3 } } }) end, "unknown option 'len' (it takes: length)")
  T.fails(function() wb.loader.new(file, { batch = 4, augment = { { "crop" } } }) end, "option 'length' is required")
  T.fails(function() wb.loader.new(file, { batch = 4, augment = { { "noise" } } }) end, "exactly one of sigma (mV) or snr_db")
  T.fails(function() wb.loader.new(file, { batch = 4, augment = { { "crop", length = 31 } } }) end, "length 31 must be in 1..30")
  T.fails(function() wb.loader.new(file, { batch = 4, augment = { { "lead_mask", p = 2 } } }) end, "p = 2 must be in [0, 1]")
  T.fails(function() wb.loader.new(file, { batch = 4, shufle = false }) end, "unknown option 'shufle'")
  T.fails(function() wb.loader.new(file, {}) end, "option batch")
  os.remove(file)
end

T.done()
