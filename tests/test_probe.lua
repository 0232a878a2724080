-- tests/test_probe.lua: lua/ecgwb/probe.lua — the logistic-regression probe
-- (loss against a hand-computed BCE, AUROC 1 on a separable problem, l2
-- picked on validation), stratified seeded label fractions, F1 thresholds,
-- embeddings of a tiny encoder (batched = unbatched, pools), bad input.
local wb = require "ecgwb"
local T = dofile("tests/check.lua")
local P = wb.probe
local E = require "ecgwb.models.ecg_encoder"

-- logistic_loss against a hand computation
do
  local Z = wb.tensor { { 1, 2 }, { -1, 0.5 }, { 0, -3 } }      -- (3, 2)
  local W = wb.tensor { { 0.3, -0.2 }, { 0.1, 0.4 } }           -- (2, 2)
  local b = wb.tensor { 0.05, -0.1 }
  local Y = wb.tensor { { 1, 0 }, { 0, 1 }, { 1, 1 } }
  local Wt = wb.tensor { { 2, 1 }, { 1, 1 }, { 1, 3 } }        -- weights
  local z, w, bb, y, wt = Z:totable(), W:totable(), b:totable(), Y:totable(), Wt:totable()
  local l2 = { 0.1, 0.01 }
  local s = 0
  for i = 0, 2 do
    for k = 0, 1 do
      local logit = z[i * 2 + 1] * w[k + 1] + z[i * 2 + 2] * w[2 + k + 1] + bb[k + 1]
      local p = 1 / (1 + math.exp(-logit))
      local t = y[i * 2 + k + 1]
      s = s + wt[i * 2 + k + 1] * -(t * math.log(p) + (1 - t) * math.log(1 - p))
    end
  end
  s = s / 3
  for k = 0, 1 do s = s + 0.5 * l2[k + 1] * (w[k + 1] ^ 2 + w[2 + k + 1] ^ 2) end
  local got = P.logistic_loss(W, b, Z, Y, Wt, wb.tensor(l2):reshape(1, 2)):item()
  T.close(got, s, 1e-5, "logistic_loss = hand-computed weighted BCE + L2")
  local got0 = P.logistic_loss(W, b, Z, Y, nil, 0):item()
  local s0 = 0
  for i = 0, 2 do
    for k = 0, 1 do
      local logit = z[i * 2 + 1] * w[k + 1] + z[i * 2 + 2] * w[2 + k + 1] + bb[k + 1]
      local t = y[i * 2 + k + 1]
      s0 = s0 + math.log(1 + math.exp(-logit)) + (1 - t) * logit
    end
  end
  T.close(got0, s0 / 3, 1e-5, "logistic_loss, no weights, no L2")
end

-- a linearly separable two-label problem with a margin: AUROC 1 on held-out points
wb.manual_seed(3)
local function separable(n)
  local Y = wb.rand(n, 2):lt(0.3):to("f32")                    -- (n, 2), about 30% positives
  local Z = wb.rand(n, 6) * 2 - 1                               -- (n, 6) in [-1, 1]
  -- label 1 on z1 - z2 (margin 1 after the shift), label 2 on z3 + z4
  local s1, s2 = Y:narrow(2, 1, 1) * 2 - 1, Y:narrow(2, 2, 1) * 2 - 1
  Z = Z + wb.cat({ s1 * 1.5, s1 * -1.5, s2 * 1.5, s2 * 1.5, wb.zeros(n, 2) }, 2)
  return Z * 3 + 2, Y                                           -- not standardised
end
local Ztr, Ytr = separable(200)
local Zva, Yva = separable(100)
local Zte, Yte = separable(100)
local t0 = wb.now()
local best = P.fit_probe(Ztr, Ytr, Zva, Yva, { l2 = { 1e-4, 1 }, steps = 300 })
local st = P.predict(best.model, Zte)
local auc, per = wb.metrics.auroc(st, Yte)
T.ok(auc == 1, "separable problem: test macro AUROC " .. auc .. " (per label " .. per[1] .. ", " .. per[2] .. ")")
T.ok(best.val_auroc == math.max(best.grid[1], best.grid[2]), "the kept l2 has the best validation AUROC")
-- few noisy examples in many dims: validation picks the strong L2, and it is better on test too
do
  local function noisy(n)
    local Y = wb.rand(n, 1):lt(0.5):to("f32")
    local Z = wb.randn(n, 100)
    Z = Z + wb.cat({ (Y * 2 - 1) * 0.7, wb.zeros(n, 99) }, 2)   -- one weakly informative dim
    return Z, Y
  end
  local a, ya = noisy(30)
  local v, yv = noisy(300)
  local t, yt = noisy(300)
  local bn = P.fit_probe(a, ya, v, yv, { l2 = { 1e-4, 3 }, steps = 300 })
  local weak = P.fit_logistic(a, ya, { l2 = 1e-4 })
  T.ok(bn.l2 == 3, string.format("strong L2 chosen on validation (AUROC %.3f vs %.3f)", bn.grid[2], bn.grid[1]))
  T.ok(wb.metrics.auroc(P.predict(bn.model, t), yt) > wb.metrics.auroc(P.predict(weak, t), yt) + 0.02,
    "the chosen L2 generalises better than the weak one")
end
T.ok(best.model.W:size(2) == 2 and best.model.b:size(1) == 2, "the chosen block has one column per label")
-- the fitted loss is near the minimum: a few thousand more steps barely lower it
local m1 = P.fit_logistic(Ztr, Ytr, { l2 = 0.01, steps = 300 })
local m2 = P.fit_logistic(Ztr, Ytr, { l2 = 0.01, steps = 1500 })
local function loss_of(m) return P.logistic_loss(m.W, m.b, (Ztr - m.mu) / m.sd, Ytr, nil, 0.01):item() end
T.ok(loss_of(m1) < loss_of(m2) * 1.05 + 1e-3, string.format("300 Adam steps reach the optimum: %.4f vs %.4f", loss_of(m1), loss_of(m2)))
-- balanced weights: positives of a rare label get more weight, scores still rank
local mb = P.fit_logistic(Ztr, Ytr, { l2 = 1e-3, balanced = true })
T.ok(wb.metrics.auroc(P.predict(mb, Zte), Yte) > 0.99, "balanced probe also separates")
print(string.format("probe fits: %.1f s", wb.now() - t0))

-- F1 thresholds and evaluate
do
  local s = wb.tensor { { 0.9, 0.2 }, { 0.8, 0.3 }, { 0.4, 0.7 }, { 0.1, 0.6 } }
  local y = wb.tensor { { 1, 0 }, { 1, 0 }, { 0, 1 }, { 0, 0 } }
  local th = P.f1_thresholds(s, y)
  T.ok(th[1] == s:get(2, 1), "label 1: the threshold keeping both positives, got " .. th[1])
  T.ok(math.abs(th[2] - 0.7) < 1e-6, "label 2: threshold 0.7 (F1 1), got " .. th[2])
  local r = P.evaluate(s, y, th)
  T.ok(r.f1 == 1 and r.auroc == 1 and r.auprc == 1, "perfect scores at the chosen thresholds: F1 " .. r.f1)
  local r5 = P.evaluate(s, y)                                   -- 0.5: label 2 gets 0.7 and 0.6 -> 1 TP, 1 FP
  T.close(r5.f1_per[2], 2 / 3, 1e-9, "F1 at 0.5 for label 2")
  local tied = P.f1_thresholds(wb.tensor { { 0.5 }, { 0.5 }, { 0.2 } }, wb.tensor { { 1 }, { 0 }, { 0 } })
  T.ok(tied[1] == 0.5, "tied scores: one threshold")
  T.ok(P.f1_thresholds(wb.tensor { { 0.3 } }, wb.tensor { { 0 } })[1] == 0.5, "no positives: 0.5")
  -- a label without positives is left out of the macro F1
  local r2 = P.evaluate(wb.tensor { { 0.9, 0.1 }, { 0.2, 0.8 } }, wb.tensor { { 1, 0 }, { 0, 0 } })
  T.ok(r2.f1 == 1 and r2.f1_per[2] ~= r2.f1_per[2], "macro F1 over labels with positives: " .. r2.f1)
end

-- label fractions: >= 1 positive per label, seeded, size, sorted, no duplicates
do
  wb.manual_seed(11)
  local N, K = 500, 8
  local u = wb.rand(N, K)
  -- label k has prevalence about 0.02 + 0.1 k; label 1 has exactly 2 positives
  local prev = wb.tensor { 0, 0.12, 0.22, 0.32, 0.42, 0.52, 0.62, 0.72 }:reshape(1, K)
  local Y = u:lt(prev):to("f32")
  Y:narrow(2, 1, 1):zero_()
  Y:set(137, 1, 1) Y:set(402, 1, 1)
  local st = wb.rng_state()
  local rows = P.label_fraction(Y, 0.01, 5)
  T.ok(wb.rng_state().offset == st.offset, "label_fraction restores the global RNG")
  T.ok(#rows == 5, "1% of 500 = 5 rows, got " .. #rows)
  local sub = Y:index_select(1, P.index(rows)):sum(1):totable()
  local all = true
  for k = 1, K do all = all and sub[k] >= 1 end
  T.ok(all, "every label has a positive in the 1% subset: " .. table.concat(sub, ","))
  local again = P.label_fraction(Y, 0.01, 5)
  T.ok(table.concat(again, ",") == table.concat(rows, ","), "same seed, same rows")
  local other = P.label_fraction(Y, 0.01, 6)
  T.ok(table.concat(other, ",") ~= table.concat(rows, ","), "another seed, other rows")
  local seen, sorted = {}, true
  local r10 = P.label_fraction(Y, 0.1, 5)
  for i, r in ipairs(r10) do
    T.ok(not seen[r] and r >= 1 and r <= N, "row " .. r .. " valid and unique")
    seen[r] = true
    if i > 1 and r10[i - 1] >= r then sorted = false end
  end
  T.ok(#r10 == 50 and sorted, "10%: 50 sorted rows")
  T.ok(#P.label_fraction(Y, 1, 5) == N, "100%: every row")
  -- too small to cover every label: as many as the size allows, rarest first
  local two = P.label_fraction(Y, 2 / N, 5)
  T.ok(#two == 2, "2 rows asked, 2 given")
  local s2 = Y:index_select(1, P.index(two)):sum(1):totable()
  T.ok(s2[1] >= 1, "the rarest label is covered first")
  T.fails(function() P.label_fraction(Y, 0, 1) end, "fraction must be in (0, 1]")
  T.fails(function() P.label_fraction(Y:reshape(-1), 0.1, 1) end, "labels must be an (N, K) tensor")
end

-- embeddings of a tiny encoder: shapes, pools, batching does not change them, no graph
do
  wb.manual_seed(2)
  local enc = E.EcgEncoder { base = "tiny", objective = "none", layers = 1 }
  local x = wb.randn(5, 12, 256) * 0.5
  local z1 = P.embed(enc, x, { batch = 2, pool = { "frames_mean", "frames_max", "amplitude" } })
  local z2 = P.embed(enc, x, { batch = 64, pool = { "frames_mean", "frames_max", "amplitude" } })
  T.ok(z1:size(1) == 5 and z1:size(2) == 64 + 64 + 64, "3 pools -> 192 dims, got " .. z1:describe())
  T.close(z1, z2, 1e-5, "batches of 2 = one batch")
  T.ok(not z1.requires_grad, "embeddings carry no graph")
  local mean = P.embed(enc, x)
  local direct = wb.no_grad(function() enc:eval(); return enc(x).pooled end)
  T.close(mean, direct, 1e-5, "default pool = the encoder's pooled output")
  -- amplitude: scaling a record by 2 adds log 2 to every channel's log RMS (first conv has no bias)
  local a1 = P.embed(enc, x, { pool = "amplitude" })
  local a2 = P.embed(enc, x * 2, { pool = "amplitude" })
  T.close(a2 - a1, wb.ones(5, 64) * math.log(2), 1e-4, "amplitude pool: log RMS scales with the signal")
  local fm = P.embed(enc, x, { pool = "features_max" })
  local direct_max = wb.no_grad(function() return (enc(x).features:max(2)) end)
  T.close(fm, direct_max, 1e-5, "features_max = max over time of the features")
  T.fails(function() P.embed(enc, x, { pool = "median" }) end, "unknown pool 'median'")
  T.fails(function() P.embed(enc, x:narrow(1, 1, 1):reshape(12, 256)) end, "expected x (N, 12, L)")
  T.fails(function() P.fit_logistic(wb.zeros(3, 2), wb.zeros(4, 1)) end, "expected Z (N, D) and Y (N, K)")
  T.fails(function() P.fit_logistic(wb.zeros(3, 2), wb.zeros(3, 1), { l3 = 1 }) end, "unknown option 'l3'")
end

T.done()
