-- test_sediff.lua: lua/ecgwb/models/sediff.lua (SE-Diff condition, beat
-- decoder, record templates, simulator-consistency loss, retrieval, ablation).
-- Checks: token and template shapes; record templates of clean simulated
-- records (R at the centre, RR = the true RR); a decoder trained 300 steps
-- fits the templates of two conditions (60 bpm sinus, 110 bpm LBBB) far
-- better than their mean; consistency_loss is 0 on an ECG tiled from the
-- template (given peaks, grid alignment, both modes) and grows with the
-- perturbation; its gradient against central differences; beat_train
-- reproduces the test's own tiling sample for sample, keeps wave durations
-- at another rate, and its gradient matches central differences; rhythm's
-- spacing and variability; retrieval top-k against a brute-force sort; each
-- ablation flag removes its part; errors.
local T = dofile("tests/check.lua")
local wb = require "ecgwb"
local sd = require "ecgwb.models.sediff"
local optim = require "ecgwb.optim"

wb.manual_seed(7)

------------------------------------------------------------------ shapes and ablation
do
  local B, Dt = 3, 8
  local req = { text = wb.randn(B, Dt), age = { 40, 0 / 0, 80 }, sex = { 1, 0, -1 }, hr = { 50, 75, 140 },
    retrieved = wb.randn(B, 4, Dt) }
  local full = sd.SEDiff { text_dim = Dt, dim = 16, hidden = 32, k = 4 }
  local cond = full:condition(req)
  T.ok(cond:dim() == 3 and cond:size(1) == B and cond:size(2) == 8 and cond:size(3) == 16, "full: (B, 4 + k, Dc) tokens")
  T.ok(full:num_tokens() == 8, "num_tokens = 4 + k")
  local tm, rr = full:templates(cond, req.hr)
  T.ok(tm:dim() == 3 and tm:size(1) == B and tm:size(2) == 12 and tm:size(3) == 128, "templates (B, 12, beat_len)")
  local r = rr:totable()
  local hr = req.hr
  for i = 1, B do
    T.ok(r[i] >= 0.8 * 60 / hr[i] - 1e-6 and r[i] <= 1.2 * 60 / hr[i] + 1e-6, "RR within ±20% of 60/hr, row " .. i)
  end
  local nan = false
  for _, v in ipairs(cond:totable()) do if v ~= v then nan = true end end
  T.ok(not nan, "an unknown (NaN) age gives finite tokens")

  local mean = sd.SEDiff { text_dim = Dt, dim = 16, hidden = 32, k = 4, retrieval_mode = "mean" }
  T.ok(mean:condition(req):size(2) == 5, "retrieval_mode mean: one retrieved token")
  local noret = sd.SEDiff { text_dim = Dt, dim = 16, hidden = 32, retrieval = false }
  local c2 = noret:condition(req)
  T.ok(c2:size(2) == 4 and noret:num_tokens() == 4, "retrieval = false: 4 tokens")
  T.ok(noret.encoder.retrieved == nil, "retrieval = false: no retrieval projection")
  T.ok(noret:num_parameters() < full:num_parameters(), "retrieval = false: fewer parameters")
  local noprior = sd.SEDiff { text_dim = Dt, dim = 16, hidden = 32, prior = false, k = 4 }
  T.ok(noprior.decoder == nil, "prior = false: no beat decoder")
  T.ok(noprior:num_parameters() == full:num_parameters() - full.decoder:num_parameters(), "prior = false: the decoder's parameters are gone")
  T.fails(function() noprior:templates(noprior:condition(req), req.hr) end, "the simulator prior is off")
  local total, parts = noprior:prior_terms(noprior:condition(req), req.hr, wb.randn(B, 12, 500))
  T.ok(total == nil and next(parts) == nil, "prior = false: no prior terms")

  -- errors
  T.fails(function() full:condition { text = wb.randn(B, 5), hr = req.hr, retrieved = req.retrieved } end, "text must be a (B, 8) embedding")
  T.fails(function() full:condition { text = req.text, hr = req.hr } end, "no bank is set")
  T.fails(function() full:condition { text = req.text, hr = req.hr, retrieved = wb.randn(B, 3, Dt) } end, "retrieved must be (3, 4, 8)")
  T.fails(function() full:condition { text = req.text, hr = { 60, 70 }, retrieved = req.retrieved } end, "hr must be (3)")
  T.fails(function() full:templates(c2, req.hr) end, "cond has 4 tokens, this config makes 8")
  T.fails(function() full:templates(cond) end, "requested heart rate hr (B) is needed")
  T.fails(function() full:templates(cond, { 60, 0, 70 }) end, "heart rates must be > 0 bpm")
  T.fails(function() sd.SEDiff { dims = 3 } end, "unknown option 'dims'")
  T.fails(function() sd.SEDiff { beat_len = 127 } end, "beat_len must be even")
end

------------------------------------------------------------------ record templates; decoder fit
do
  local fs, n = 250, 128
  local specs = { { hr = 60 }, { hr = 110, bbb = "left" } }
  local xs, pk, true_rr = {}, {}, {}
  for i, s in ipairs(specs) do
    local r = wb.sim.record { fs = fs, seconds = 6, hr = s.hr, bbb = s.bbb, hr_std = 0.5, seed = 5, index = i }
    xs[i], pk[i] = r.clean:unsqueeze(1), r.rpeaks:totable()
    local p = pk[i]
    true_rr[i] = (p[#p] - p[1]) / (#p - 1) / fs
  end
  local x = wb.cat(xs, 1)
  local tm, rr, valid = sd.record_templates(x, fs, n, { peaks = pk })
  T.ok(tm:size(1) == 2 and tm:size(2) == 12 and tm:size(3) == n and valid[1] and valid[2], "record templates (N, 12, n)")
  for i = 1, 2 do
    T.close(rr:get(i), true_rr[i], 0.03, "record " .. i .. ": median RR ≈ mean RR of the true peaks")
  end
  local _, at = tm:select(1, 1):select(1, 2):max(1) -- lead II of the normal beat
  T.ok(at:item() == n / 2, "normal beat: lead II peaks at the centre, got " .. at:item())
  -- detected peaks give the same template on the normal record (on the LBBB
  -- one the detector marks the wide QRS's maximum, 40 ms after the simulator's R)
  local tm2 = sd.record_templates(x:narrow(1, 1, 1), fs, n)
  T.ok(wb.mse_loss(tm2, tm:narrow(1, 1, 1)):item() < 1e-6, "detected R peaks give the true-peak template")

  local m = sd.SEDiff { text_dim = 8, dim = 16, hidden = 64, retrieval = false, fs = fs, beat_len = n }
  local text = wb.zeros(2, 8)
  text:set(1, 1, 1); text:set(2, 2, 1)
  local req = { text = text, age = { 50, 50 }, sex = { 1, 1 }, hr = { 60, 110 } }
  local opt = optim.AdamW(m:parameters(), { lr = 3e-3, weight_decay = 0 })
  local mean = (tm:narrow(1, 1, 1) + tm:narrow(1, 2, 1)) / 2
  local base = wb.mse_loss(mean:expand(2, 12, n), tm):item()
  local loss
  for _ = 1, 300 do
    loss = m:prior_loss(m:condition(req), req.hr, tm)
    opt:zero_grad(); loss:backward(); opt:step()
  end
  T.ok(loss:item() < 0.01 * base, string.format("decoder fit: MSE %.3g < 1%% of the mean template's %.3g", loss:item(), base))
  -- per record too: each template is fitted better than by the mean
  local fit = m:templates(m:condition(req), req.hr)
  for i = 1, 2 do
    local e = wb.mse_loss(fit:select(1, i), tm:select(1, i)):item()
    local eb = wb.mse_loss(mean:select(1, 1), tm:select(1, i)):item()
    T.ok(e < 0.05 * eb, string.format("record %d: decoder %.3g vs mean template %.3g", i, e, eb))
  end
  -- prior_terms: consistency of the records with their fitted templates is small, and
  -- the supervised part equals prior_loss
  local total, parts = m:prior_terms(m:condition(req), req.hr, x, { peaks = pk, target = tm })
  T.close(parts.prior:item(), m:prior_loss(m:condition(req), req.hr, tm):item(), 1e-5, "prior_terms: the supervised part")
  T.ok(parts.consistency:item() < 0.05 * base, "prior_terms: the records agree with their fitted templates")
  T.close(total:item(), parts.consistency:item() + parts.prior:item(), 1e-5, "prior_terms: total = lambda*consistency + prior")
end

------------------------------------------------------------------ consistency loss
-- an ECG tiled from a template: n samples per RR exactly (RR·fs = n), R of
-- beat j at off + n/2 + j·n
local function tiled(tmpl, beats, off)
  local L, n = tmpl:size(2), tmpl:size(3)
  local tv, T_ = tmpl:totable(), beats * n + 2 * off
  local x = {}
  for l = 0, L - 1 do
    for t = 0, T_ - 1 do x[l * T_ + t + 1] = tv[l * n + (t - off) % n + 1] end
  end
  local peaks = {}
  for j = 0, beats - 1 do peaks[#peaks + 1] = off + n / 2 + j * n end
  return wb.tensor(x):view(1, L, T_), peaks
end

do
  local fs, n = 100, 64
  local a, b, th = wb.beat.ecgsyn(94)
  local a3 = wb.cat({ a:view(1, 5, 1), (a * -0.5):view(1, 5, 1) }, 3) -- 2 leads
  local tmpl = wb.beat_synth(a3:contiguous(), b, th, 0.64, n) * 10 -- (1, 2, 64), RR·fs = 64
  local x, peaks = tiled(tmpl, 5, 20)
  for _, mode in ipairs { "mean", "each" } do
    local l = sd.consistency_loss(x, tmpl, 0.64, fs, { peaks = { peaks }, mode = mode }):item()
    T.ok(l < 1e-10, mode .. ": zero on an ECG made of the template, got " .. l)
  end
  T.ok(sd.consistency_loss(x, tmpl, 0.64, fs):item() < 1e-10, "grid alignment finds the tiled beats' phase")
  -- peaks as an i64 (B, M) tensor padded with -1
  local pt = wb.tensor({ { peaks[1], peaks[2], -1 } }, "i64")
  T.ok(sd.consistency_loss(x, tmpl, { 0.64 }, fs, { peaks = pt }):item() < 1e-10, "peaks as a padded i64 tensor")
  -- grows with the perturbation
  local noise = wb.randn(1, 2, x:size(3))
  local prev = 0
  for _, s in ipairs { 0.01, 0.1, 0.5 } do
    local l = sd.consistency_loss(x + noise * s, tmpl, 0.64, fs, { peaks = { peaks }, mode = "each" }):item()
    T.ok(l > prev, string.format("each: loss grows with noise %.2f: %.4g", s, l))
    prev = l
  end
  local shifted = sd.consistency_loss(x, tmpl, 0.64, fs, { peaks = { { peaks[2] + 5, peaks[3] + 5 } } }):item()
  T.ok(shifted > 0.01 * (tmpl * tmpl):mean():item(), "misplaced beats cost")
  -- a window that would leave the signal is skipped; a row without windows is out of the mean
  local x2 = wb.cat({ x, x }, 1)
  local t2 = wb.cat({ tmpl, tmpl * 2 }, 1)
  local l2 = sd.consistency_loss(x2, t2, 0.64, fs, { peaks = { peaks, { 1 } } }):item()
  T.ok(l2 < 1e-10, "a row without a whole window is left out")
  local z = sd.consistency_loss(x, tmpl, 0.64, fs, { peaks = { { 1 } } })
  T.ok(z:item() == 0, "no window at all: zero")

  -- errors
  T.fails(function() sd.consistency_loss(x:view(2, x:size(3)), tmpl, 0.64, fs) end, "x0 must be (B, leads, samples)")
  T.fails(function() sd.consistency_loss(x, tmpl:narrow(2, 1, 1), 0.64, fs) end, "templates must be (1, 2, beat_len)")
  T.fails(function() sd.consistency_loss(x, tmpl, { 0.64, 0.5 }, fs) end, "rr must be a number or 1 RR intervals")
  T.fails(function() sd.consistency_loss(x, tmpl, -1, fs) end, "RR intervals must be finite and > 0 s")
  T.fails(function() sd.consistency_loss(x, tmpl, 0.64) end, "fs must be a sampling rate")
  T.fails(function() sd.consistency_loss(x, tmpl, 0.64, fs, { mode = "median" }) end, "mode must be 'mean' or 'each'")
  T.fails(function() sd.consistency_loss(x, tmpl, 0.64, fs, { align = "x" }) end, "align must be 'grid' or 'detect'")
  T.fails(function() sd.consistency_loss(x, tmpl, 0.64, fs, { peak = {} }) end, "unknown option 'peak'")
end

-- gradient w.r.t. x0 against central differences (non-integer sample steps)
do
  local fs, n = 10, 8
  local rr = 1.05 -- 10.5 samples per RR, 1.3125 per template sample
  local x = wb.randn(2, 2, 30)
  local tmpl = wb.randn(2, 2, n)
  local peaks = { { 7.3, 18 }, { 12.6 } }
  for _, mode in ipairs { "mean", "each" } do
    local function f(t) return sd.consistency_loss(t, tmpl, rr, fs, { peaks = peaks, mode = mode }) end
    local xv = x:clone():requires_grad_()
    f(xv):backward()
    local g = xv.grad:totable()
    local xs = x:totable()
    local maxerr, scale, eps = 0, 0, 1e-2
    for i = 1, #xs do
      local p, m = {}, {}
      for j = 1, #xs do p[j], m[j] = xs[j], xs[j] end
      p[i], m[i] = xs[i] + eps, xs[i] - eps
      local fd = (f(wb.tensor(p):view(2, 2, 30)):item() - f(wb.tensor(m):view(2, 2, 30)):item()) / (2 * eps)
      maxerr = math.max(maxerr, math.abs(fd - g[i]))
      scale = math.max(scale, math.abs(fd))
    end
    T.ok(scale > 0 and maxerr / scale < 2e-3, string.format("%s: gradient vs central differences: rel err %.2g", mode, maxerr / scale))
  end
end

------------------------------------------------------------------ the simulator's ECG: beat_train and rhythm
do
  local fs, n = 100, 64
  local tmpl = wb.randn(1, 2, n)
  local x, peaks = tiled(tmpl, 5, 20) -- the test's own tiling: RR·fs = n
  local y = sd.beat_train(tmpl, n / fs, { peaks }, fs, x:size(3))
  T.ok(y:size(1) == 1 and y:size(2) == 2 and y:size(3) == x:size(3), "beat_train: (B, L, T)")
  T.close(y:narrow(3, 21, 5 * n), x:narrow(3, 21, 5 * n), 1e-6, "beat_train: the beats of a tiled ECG, sample for sample")
  T.close(y:narrow(3, 1, 20), tmpl:narrow(3, 1, 1):expand(1, 2, 20), 1e-6, "before the first beat: the template's edge")
  T.ok(sd.consistency_loss(y, tmpl, n / fs, fs, { peaks = { peaks } }):item() < 1e-10, "the consistency loss reads its beats back")
  -- a template keeps its time scale at another rate: a sample 5 template
  -- samples after R reads template sample n/2 + 5 whatever the spacing
  local wide = sd.beat_train(tmpl, n / fs, { { 40, 140 } }, fs, 200)
  T.close(wide:select(3, 46), tmpl:select(3, n / 2 + 6), 1e-6, "waves keep their durations at a slower rate")
  T.close(wide:select(3, 90), tmpl:select(3, n), 1e-6, "beyond the template: its last sample")
  local none = sd.beat_train(tmpl, n / fs, { {} }, fs, 10)
  T.close(none, tmpl:narrow(3, 1, 1):expand(1, 2, 10), 1e-6, "no peaks: the first sample throughout")
  -- gradient in the templates against central differences (irregular peaks, RR·fs not n)
  local tm, rrs, pk = wb.randn(2, 2, 8), { 0.9, 1.3 }, { { 3, 11.5, 17 }, { 9 } }
  local w = wb.randn(2, 2, 24)
  local function f(t) return (sd.beat_train(t, rrs, pk, 10, 24) * w):sum() end
  local tv = tm:clone():requires_grad_()
  f(tv):backward()
  local g, xs = tv.grad:totable(), tm:totable()
  local maxerr, scale = 0, 0
  for i = 1, #xs do
    local pp, mm = {}, {}
    for j = 1, #xs do pp[j], mm[j] = xs[j], xs[j] end
    pp[i], mm[i] = xs[i] + 1e-2, xs[i] - 1e-2
    local fd = (f(wb.tensor(pp):view(2, 2, 8)):item() - f(wb.tensor(mm):view(2, 2, 8)):item()) / 2e-2
    maxerr, scale = math.max(maxerr, math.abs(fd - g[i])), math.max(scale, math.abs(fd))
  end
  T.ok(scale > 0 and maxerr / scale < 2e-3, string.format("beat_train: gradient vs central differences: rel err %.2g", maxerr / scale))
  T.fails(function() sd.beat_train(tmpl:view(2, n), 0.64, { peaks }, fs, 100) end, "templates must be (B, leads, n)")
  T.fails(function() sd.beat_train(tmpl, 0.64, { peaks, peaks }, fs, 100) end, "peaks must be a list of 1 lists")
  T.fails(function() sd.beat_train(tmpl, -1, { peaks }, fs, 100) end, "RR intervals must be finite and > 0 s")
  T.fails(function() sd.beat_train(tmpl:narrow(3, 1, 1), 0.64, { peaks }, fs, 100) end, "at least 2 samples")
  T.fails(function() sd.rhythm(0, 0.1, 100, 100) end, "rr must be a positive number")
  T.fails(function() sd.rhythm(0.8, 0 / 0, 100, 100) end, "cv must be a number >= 0")
  -- rhythm: regular at cv 0; the drawn variability is the asked one
  local r0 = sd.rhythm(0.8, 0, 100, 1000)
  local ok = #r0 >= 12 and r0[1] >= 0 and r0[1] < 80 and r0[#r0] < 1000
  for i = 2, #r0 do ok = ok and math.abs(r0[i] - r0[i - 1] - 80) <= 1 end
  T.ok(ok, "rhythm: cv 0 gives beats every RR from a phase within the first RR")
  local r1 = sd.rhythm(0.5, 0.15, 100, 200000)
  local d, m = {}, 0
  for i = 2, #r1 do d[#d + 1] = r1[i] - r1[i - 1]; m = m + d[#d] end
  m = m / #d
  local v = 0
  for _, q in ipairs(d) do v = v + (q - m) ^ 2 / #d end
  T.ok(math.abs(m - 50) < 1 and math.abs(math.sqrt(v) / m - 0.15) < 0.015,
    string.format("rhythm: mean RR %.1f samples (50), cv %.3f (0.15)", m, math.sqrt(v) / m))
end

------------------------------------------------------------------ retrieval
do
  local N, D, B, k = 50, 6, 4, 5
  local bank, q = wb.randn(N, D), wb.randn(B, D)
  q:select(1, 1):copy_(bank:select(1, 10) * 3) -- query 1 is bank row 9 (0-based), scaled
  local ret = sd.retriever(bank)
  local exclude = { -1, 3, -1, 0 }
  local idx, sims = ret:topk(q, k, { exclude = exclude })
  T.ok(idx:size(1) == B and idx:size(2) == k and idx:type() == "i64", "topk: i64 (B, k)")
  local bv, qv = bank:totable(), q:totable()
  local it, st = idx:totable(), sims:totable()
  local all_ok = true
  for r = 1, B do
    local cand = {}
    for j = 0, N - 1 do
      if j ~= exclude[r] then
        local dot, na, nb = 0, 0, 0
        for d = 1, D do
          local a, b = qv[(r - 1) * D + d], bv[j * D + d]
          dot, na, nb = dot + a * b, na + a * a, nb + b * b
        end
        cand[#cand + 1] = { j, dot / math.sqrt(na * nb) }
      end
    end
    table.sort(cand, function(u, v) return u[2] > v[2] end)
    for j = 1, k do
      if it[(r - 1) * k + j] ~= cand[j][1] or math.abs(st[(r - 1) * k + j] - cand[j][2]) > 1e-5 then all_ok = false end
    end
  end
  T.ok(all_ok, "top-k by cosine equals a brute-force sort (with exclusions)")
  T.ok(it[1] == 9 and math.abs(st[1] - 1) < 1e-5, "a scaled copy of a bank row is its own nearest neighbour")
  local emb = ret:retrieve(q, k)
  T.ok(emb:size(1) == B and emb:size(2) == k and emb:size(3) == D, "retrieve: (B, k, D) embeddings")
  T.close(emb:select(1, 1):select(1, 1), bank:select(1, 10), 0, "retrieve: the nearest row's embedding")
  T.fails(function() ret:topk(q, N, { exclude = exclude }) end, "k must be in 1..49")
  T.fails(function() ret:topk(wb.randn(B, D + 1), 2) end, "the query must be (B, 6)")
  T.fails(function() sd.retriever(wb.randn(N)) end, "the bank must be an (N, D) tensor")

  -- through SEDiff: the bank's neighbours become the retrieved tokens
  local m = sd.SEDiff { text_dim = D, dim = 8, hidden = 16, k = 3, prior = false }
  m:set_bank(bank)
  local req = { text = q, age = { 50, 50, 50, 50 }, sex = { 1, 1, 1, 1 }, hr = { 70, 70, 70, 70 }, exclude = exclude }
  local explicit = { text = q, age = req.age, sex = req.sex, hr = req.hr, retrieved = ret:retrieve(q, 3, { exclude = exclude }) }
  T.close(m:condition(req), m:condition(explicit), 0, "condition() retrieves from the bank")
end

T.done()
