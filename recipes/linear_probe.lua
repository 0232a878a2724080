--[[ recipes/linear_probe.lua — linear probe of a pretrained ECG encoder on
the 20 labels of the simulated corpus, with label efficiency.

Method. The encoder pretrained by recipes/pretrain_fm.lua (ECG-FM's mix:
wav2vec 2.0 masked prediction + CMSC + random lead masking, config tiny) is
frozen. Each record of the default corpus (wb.corpus: 10 s, resampled to
250 Hz, all 12 leads; train 1599 / validation 182 / test 219, seed 2024) is
embedded once (wb.probe.embed), the concatenation of:
  - the mean and the max over time of the transformer's output frames,
  - the mean and the max over time of the conv feature extractor's output,
  - the log RMS of each channel of the first conv layer before its GroupNorm
    (the per-record scale that the encoder's normalisations divide out;
    without it low voltage is near chance, see README).
One logistic regression per label (wb.probe.fit_logistic: standardised
embeddings, BCE + L2, full-batch Adam) is trained on 1%, 10% or 100% of the
training records' labels (wb.probe.label_fraction: seeded subsets with at
least one positive of every label where the size allows; the 1% and 10%
results are means over `subsets` subsets). The L2 strength is picked on the
validation split's macro AUROC, and each label's F1 threshold is the one
that maximises its F1 on validation; the test split is only scored. The
baseline is the same encoder at a random initialisation (seed 1), probed
identically.

If runs/pretrain_fm/encoder.h5 is missing, the recipe first pretrains one
itself (pretrain_fm.lua on the default corpus's training records, labels
unused, `pretrain_steps` steps) and saves it there; it says so.

  ecgwb recipes/linear_probe.lua [--encoder=PATH] [--pretrain-steps=N]
]]
local wb = require "ecgwb"
local E = require "ecgwb.models.ecg_encoder"
local P = wb.probe
io.stdout:setvbuf("line")

local opts = ...
if type(opts) ~= "table" then
  opts = {}
  for _, a in ipairs(arg or {}) do
    local k, v = a:match("^%-%-([%w_-]+)=(.*)$")
    if k == "encoder" then opts.encoder = v
    elseif k == "pretrain-steps" then opts.pretrain_steps = tonumber(v)
    else error("linear_probe: unknown argument '" .. a .. "' (--encoder=PATH, --pretrain-steps=N)") end
  end
end

local cfg = {
  seed = 1,                                   -- random-init baseline, subsets (seed + s)
  fs = 250,
  corpus = opts.corpus,                       -- default: wb.sim.default_corpus()
  encoder = opts.encoder or "runs/pretrain_fm/encoder.h5",
  pretrain_steps = opts.pretrain_steps or 600,    -- only when the encoder file is missing
  fractions = opts.fractions or { 0.01, 0.1, 1.0 },
  subsets = opts.subsets or 3,                -- subsets averaged for fractions < 1
  pool = opts.pool or { "frames_mean", "frames_max", "features_mean", "features_max", "amplitude" },
  l2 = { 1e-4, 1e-3, 1e-2, 1e-1 }, probe_steps = opts.probe_steps or 300, probe_lr = 0.05, balanced = false,
}
local t_start = wb.now()

-- data
local data = {}
for _, s in ipairs { "train", "validation", "test" } do data[s] = wb.corpus.load { path = cfg.corpus, split = s, fs = cfg.fs } end
local names = data.train.label_names
print(string.format("corpus %s: train %d / validation %d / test %d records, 12 x %d samples (%d Hz), %d labels",
  data.train.file, data.train.n, data.validation.n, data.test.n, data.train.samples, cfg.fs, #names))

-- the pretrained encoder (pretrained here if there is none)
local ecfg, ck = P.pretrained_encoder(cfg.encoder, { steps = cfg.pretrain_steps, corpus = cfg.corpus })
local pretrained = E.EcgEncoder(ecfg)
wb.checkpoint.load(cfg.encoder, { model = pretrained, rng = false })
print(string.format("pretrained encoder: %s ('%s', %s, %d steps on %s data, final loss %.3f)", cfg.encoder,
  ck.config.model, ck.config.objective, ck.config.steps, ck.config.data, ck.config.loss_last or 0 / 0))
wb.manual_seed(cfg.seed)
local random = E.EcgEncoder(ecfg)

-- frozen embeddings
local Z = {}
for name, enc in pairs { random = random, pretrained = pretrained } do
  Z[name] = {}
  for s, d in pairs(data) do Z[name][s] = P.embed(enc, d.x, { pool = cfg.pool }) end
end
print(string.format("embeddings: %d dims (%s), %.0f s so far", Z.pretrained.train:size(2), table.concat(cfg.pool, " + "),
  wb.now() - t_start))

-- one probe: encoder name, training rows -> test metrics
local function probe(name, rows)
  local idx = P.index(rows)
  local Ztr, Ytr = Z[name].train:index_select(1, idx), data.train.labels:index_select(1, idx)
  local best = P.fit_probe(Ztr, Ytr, Z[name].validation, data.validation.labels,
    { l2 = cfg.l2, steps = cfg.probe_steps, lr = cfg.probe_lr, balanced = cfg.balanced })
  local th = P.f1_thresholds(P.predict(best.model, Z[name].validation), data.validation.labels)
  local r = P.evaluate(P.predict(best.model, Z[name].test), data.test.labels, th)
  r.l2, r.val_auroc, r.n = best.l2, best.val_auroc, #rows
  return r
end

local results = {}
for _, frac in ipairs(cfg.fractions) do
  local runs = frac < 1 and cfg.subsets or 1
  for _, name in ipairs { "random", "pretrained" } do
    local acc = { auroc = {}, auprc = {}, f1 = {} }
    local last
    for s = 1, runs do
      local rows = P.label_fraction(data.train.labels, frac, cfg.seed + s)
      last = probe(name, rows)
      for k in pairs(acc) do acc[k][s] = last[k] end
    end
    local function mean_sd(v)
      local m, q = 0, 0
      for _, x in ipairs(v) do m = m + x / #v end
      for _, x in ipairs(v) do q = q + (x - m) ^ 2 end
      return m, #v > 1 and math.sqrt(q / (#v - 1)) or 0
    end
    local r = { n = last.n, runs = runs, per_label = last }
    for k, v in pairs(acc) do r[k], r[k .. "_sd"] = mean_sd(v) end
    results[#results + 1] = { fraction = frac, init = name, r = r }
    print(string.format("  %5.1f%% (%4d records) %-10s test macro AUROC %.4f  AUPRC %.4f  F1 %.4f  (l2 %g, val AUROC %.4f, %.0f s)",
      100 * frac, r.n, name, r.auroc, r.auprc, r.f1, last.l2, last.val_auroc, wb.now() - t_start))
  end
end

print(string.format("\nlinear probe, test split (%d records of %s); fractions < 100%%: mean ± SD over %d label subsets",
  data.test.n, data.test.file, cfg.subsets))
print(string.format("%-16s | %-26s | %-26s | %-26s", "labels", "macro AUROC random/pretr.", "macro AUPRC random/pretr.", "macro F1 random/pretr."))
local by = {}
for _, e in ipairs(results) do by[e.fraction] = by[e.fraction] or {}; by[e.fraction][e.init] = e.r end
local metrics = {}
for _, frac in ipairs(cfg.fractions) do
  local a, b = by[frac].random, by[frac].pretrained
  local function cell(k)
    if a.runs > 1 then return string.format("%.3f±%.3f / %.3f±%.3f", a[k], a[k .. "_sd"], b[k], b[k .. "_sd"]) end
    return string.format("%.4f / %.4f", a[k], b[k])
  end
  print(string.format("%5.1f%% (%4d rec) | %-26s | %-26s | %-26s", 100 * frac, b.n, cell("auroc"), cell("auprc"), cell("f1")))
  metrics[frac] = { random = { auroc = a.auroc, auprc = a.auprc, f1 = a.f1 }, pretrained = { auroc = b.auroc, auprc = b.auprc, f1 = b.f1 } }
end
local full = by[cfg.fractions[#cfg.fractions]]
print(string.format("\nper label, %g%% of the labels, test AUROC / AUPRC / F1 (pretrained), AUROC (random init):", 100 * cfg.fractions[#cfg.fractions]))
local pl, rl = full.pretrained.per_label, full.random.per_label
for k, n in ipairs(names) do
  print(string.format("  %-8s %3d pos  %.3f / %.3f / %.3f   %.3f", n, data.test.labels:narrow(2, k, 1):sum():item(),
    pl.auroc_per[k], pl.auprc_per[k], pl.f1_per[k], rl.auroc_per[k]))
end
print(string.format("wall time %.0f s", wb.now() - t_start))
metrics.per_label = { names = names, auroc = pl.auroc_per, auprc = pl.auprc_per, f1 = pl.f1_per }
metrics.seconds = wb.now() - t_start
return metrics
