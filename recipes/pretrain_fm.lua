--[[ recipes/pretrain_fm.lua — ECG-FM self-supervised pretraining.

Method. An ECG-FM-shaped encoder (lua/ecgwb/models/ecg_encoder.lua: strided
conv feature extractor, convolutional positional embedding, pre-LayerNorm
transformer) is pretrained on unlabelled 12-lead ECGs from ecgwb's ECGSYN
simulator with ECG-FM's mix of objectives:
  - masked prediction: 65% span masking of the frames (wav2vec 2.0:
    contrastive against Gumbel-quantised targets with K distractors from the
    same record, κ = 0.1, + 0.1 × codebook diversity; or, with
    objective = "reconstruct", MSE on the raw signal under masked frames);
  - CMSC: each 10 s record is cut into two adjacent 5 s segments, which are
    positives for each other; the other segments of the batch are
    negatives (InfoNCE, τ = 0.1);
  - random lead masking: each segment loses each lead with p = 0.5 (at
    least one kept).
Records are simulated on the fly (heart rate uniform in [hr_min, hr_max]
bpm), so no record is seen twice; or, with data = "corpus", they are the
training split of the default corpus (wb.corpus, 250 Hz, 10 s: every
condition of the simulator, its labels unused), reshuffled every epoch.
AdamW with a warmup-cosine schedule.

Evaluation. A ridge-regression linear probe on the frozen pooled embedding
predicts the heart rate of held-out records (probe fitted on n_probe_train
records, λ picked on a validation split, MAE in bpm on n_probe_test others),
with all 12 leads and with lead II alone, for the pretrained encoder and for
the same encoder at its random initialisation.

  ecgwb recipes/pretrain_fm.lua [steps] [config: tiny|small|base] [objective: contrastive|reconstruct]
        [--data=sim|corpus] [--out=runs/pretrain_fm/encoder.h5] [--no-probe]

--out saves the pretrained encoder with wb.checkpoint (model/<name>, and the
config attribute: model, objective, data, steps, fs, segment_seconds), which
recipes/linear_probe.lua and recipes/finetune.lua load. From Lua:
  local r = loadfile("recipes/pretrain_fm.lua")({ steps = 300, data = "corpus", out = "...", probe = false })
or wb.run("recipes/pretrain_fm.lua", { ... }); r.encoder is the trained
encoder, r.loss_first / r.loss_last the losses, r.random_init / r.pretrained
the HR probe results (when probe ~= false).

On a shared machine set OMP_WAIT_POLICY=passive: spinning OpenMP threads
made the tiny run 7x slower when other jobs held the cores.
]]
local wb = require "ecgwb"
local optim = wb.optim
local E = require "ecgwb.models.ecg_encoder"
io.stdout:setvbuf("line")

-- options: a table from wb.run / dofile, else the command line
local opts = ...
if type(opts) ~= "table" then
  opts = {}
  local pos = {}
  local a = arg or {}
  local i = 1
  while i <= #a do
    local k, v = a[i]:match("^%-%-([%w_-]+)=(.*)$")
    if not k and a[i]:match("^%-%-") then
      k = a[i]:sub(3)
      if k == "out" or k == "data" then v = a[i + 1]; i = i + 1 end
    end
    if k == "out" then opts.out = v
    elseif k == "data" then opts.data = v
    elseif k == "no-probe" then opts.probe = false
    elseif k then error("pretrain_fm: unknown flag --" .. k)
    else pos[#pos + 1] = a[i] end
    i = i + 1
  end
  opts.steps, opts.model, opts.objective = tonumber(pos[1]), pos[2], pos[3]
end

local cfg = {
  seed = opts.seed or 1,
  model = opts.model or "tiny",
  objective = opts.objective or "contrastive",
  data = opts.data or "sim",                                -- "sim" (on the fly) | "corpus" (default corpus, train split)
  corpus = opts.corpus,                                     -- data = "corpus": another file than the default corpus
  out = opts.out,                                           -- save the encoder here (wb.checkpoint)
  probe = opts.probe ~= false,                              -- the HR probe before and after
  fs = 250, segment_seconds = 5, segments_per_record = 2,   -- ECG-FM: 500 Hz, 5 s segments
  hr_min = 45, hr_max = 150, hr_std = 2,
  records_per_batch = 16,                                   -- 32 segments
  steps = opts.steps or 800,
  lr = 1e-3, warmup = 80, weight_decay = 0.01, clip = 1.0,
  lead_mask_p = 0.5, num_negatives = 50, temperature = 0.1,
  diversity_weight = 0.1, cmsc_weight = 1.0, cmsc_temperature = 0.1,
  gumbel_tau = { 2.0, 0.5 },                                -- annealed geometrically over the run
  n_probe_train = 384, n_probe_few = 32, n_probe_test = 256, -- labelled records for the probe (all / few)
}
wb.manual_seed(cfg.seed)
local seg_len = cfg.fs * cfg.segment_seconds

-- data: one simulated record per call, cut into adjacent segments
local rng_index = 0
local function draw_record(index_base, hr)
  rng_index = rng_index + 1
  return wb.sim.ecg { fs = cfg.fs, seconds = cfg.segment_seconds * cfg.segments_per_record, hr = hr,
    hr_std = cfg.hr_std, seed = cfg.seed, index = index_base + rng_index }
end
if cfg.data ~= "sim" and cfg.data ~= "corpus" then error("pretrain_fm: data must be 'sim' or 'corpus', got " .. tostring(cfg.data)) end
local corpus, order, pos = nil, nil, 0
if cfg.data == "corpus" then
  corpus = wb.corpus.load { path = cfg.corpus, split = "train", fs = cfg.fs, seconds = cfg.segment_seconds * cfg.segments_per_record }
  print(string.format("pretraining data: %d training records of the default corpus (%s), labels unused", corpus.n, corpus.file))
end
local function corpus_batch()
  local segs, groups = {}, {}
  for r = 1, cfg.records_per_batch do
    if not order or pos >= #order then order, pos = wb.randperm(corpus.n):totable(), 0 end
    pos = pos + 1
    local x = corpus.x[order[pos] + 1]                         -- (12, L)
    for s = 1, cfg.segments_per_record do
      segs[#segs + 1] = x:narrow(2, (s - 1) * seg_len + 1, seg_len)
      groups[#groups + 1] = r
    end
  end
  return wb.stack(segs, 1), groups
end
local function pretrain_batch()
  if corpus then return corpus_batch() end
  local hrs = wb.rand(cfg.records_per_batch):totable()
  local segs, groups = {}, {}
  for r = 1, cfg.records_per_batch do
    local x = draw_record(0, cfg.hr_min + (cfg.hr_max - cfg.hr_min) * hrs[r])
    for s = 1, cfg.segments_per_record do
      segs[#segs + 1] = x:narrow(2, (s - 1) * seg_len + 1, seg_len)
      groups[#groups + 1] = r
    end
  end
  return wb.stack(segs, 1), groups                           -- (N, 12, seg_len)
end
-- labelled held-out sets for the probe: first segment of records from another index range
local function probe_set(n, index_base)
  local xs, hrs = {}, {}
  for i = 1, n do
    local hr = cfg.hr_min + (cfg.hr_max - cfg.hr_min) * ((i * 0.6180339887) % 1)
    xs[i] = wb.sim.ecg { fs = cfg.fs, seconds = cfg.segment_seconds, hr = hr, hr_std = cfg.hr_std,
      seed = cfg.seed, index = index_base + i }
    hrs[i] = hr
  end
  return wb.stack(xs, 1), hrs
end

-- model
local enc = E.EcgEncoder { base = cfg.model, objective = cfg.objective }
print(string.format("encoder '%s' (%s): %d parameters (formula: %d), %d frames per %d s segment",
  cfg.model, cfg.objective, enc:num_parameters(), E.count_parameters { base = cfg.model, objective = cfg.objective },
  enc:frames_for(seg_len), cfg.segment_seconds))
local init_state = enc:state_dict()                          -- the random initialisation, for the baseline
for k, v in pairs(init_state) do init_state[k] = v:detach():clone() end

-- evaluation: ridge linear probe of the pooled embedding -> heart rate
local function embed(x, leads)
  enc:eval()
  local lm = wb.zeros(x:size(1), 12)
  for _, l in ipairs(leads) do lm:narrow(2, l, 1):fill_(1) end
  local z = wb.no_grad(function()
    local out = {}
    for i = 1, x:size(1), 64 do
      local n = math.min(64, x:size(1) - i + 1)
      out[#out + 1] = enc(x:narrow(1, i, n), lm:narrow(1, i, n)).pooled
    end
    return wb.cat(out, 1)
  end)
  enc:train()
  return z
end
-- solve A w = b (A symmetric positive definite, Lua tables) by Gaussian elimination
local function solve(A, b)
  local n = #b
  for i = 1, n do
    for j = i + 1, n do
      local f = A[j][i] / A[i][i]
      for k = i, n do A[j][k] = A[j][k] - f * A[i][k] end
      b[j] = b[j] - f * b[i]
    end
  end
  local w = {}
  for i = n, 1, -1 do
    local s = b[i]
    for k = i + 1, n do s = s - A[i][k] * w[k] end
    w[i] = s / A[i][i]
  end
  return w
end
local function ridge_fit(Z, y, lambda)                       -- Z (N, D) standardised, y Lua list
  local N, D = Z:size(1), Z:size(2)
  local X = wb.cat({ Z, wb.ones(N, 1) }, 2)
  local G, Xty = wb.matmul(X:t(), X):tolist(), wb.matmul(X:t(), wb.tensor(y):reshape(N, 1)):totable()
  for i = 1, D do G[i][i] = G[i][i] + lambda * N end
  return solve(G, Xty)
end
local function ridge_mae(Z, y, w)
  local pred = wb.matmul(wb.cat({ Z, wb.ones(Z:size(1), 1) }, 2), wb.tensor(w):reshape(-1, 1)):totable()
  local s = 0
  for i = 1, #y do s = s + math.abs(pred[i] - y[i]) end
  return s / #y
end
local x_ptr, hr_ptr, x_pte, hr_pte
if cfg.probe then
  x_ptr, hr_ptr = probe_set(cfg.n_probe_train, 2e6)
  x_pte, hr_pte = probe_set(cfg.n_probe_test, 3e6)
end
-- probe fitted on the first n labelled records (λ picked on a quarter of them)
local function probe_fit(Ztr, Zte, n)
  local Zn = Ztr:narrow(1, 1, n)
  local mu, sd = Zn:mean(1, true), Zn:std(1, 0, true) + 1e-6
  Zn, Zte = (Zn - mu) / sd, (Zte - mu) / sd
  local y = { unpack(hr_ptr, 1, n) }
  local nv = math.floor(n / 4)
  local Zfit, Zval = Zn:narrow(1, nv + 1, n - nv), Zn:narrow(1, 1, nv)
  local yfit, yval = { unpack(y, nv + 1) }, { unpack(y, 1, nv) }
  local best, best_l = math.huge, nil
  for _, l in ipairs { 1e-4, 1e-3, 1e-2, 1e-1, 1, 10 } do
    local e = ridge_mae(Zval, yval, ridge_fit(Zfit, yfit, l))
    if e < best then best, best_l = e, l end
  end
  return ridge_mae(Zte, hr_pte, ridge_fit(Zn, y, best_l))
end
local function probe(leads)
  local Ztr, Zte = embed(x_ptr, leads), embed(x_pte, leads)
  return { full = probe_fit(Ztr, Zte, cfg.n_probe_train), few = probe_fit(Ztr, Zte, cfg.n_probe_few) }
end
local function evaluate()
  return { all = probe { 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12 }, lead2 = probe { 2 } }
end
local function report(name, r)
  print(string.format("%-12s probe HR MAE (bpm), %d / %d labels: 12 leads %.2f / %.2f, lead II only %.2f / %.2f", name,
    cfg.n_probe_train, cfg.n_probe_few, r.all.full, r.all.few, r.lead2.full, r.lead2.few))
end
local random_init = cfg.probe and evaluate() or nil
if cfg.probe then report("random init", random_init) end

-- training loop
local opt = optim.AdamW(enc:parameters(), { lr = cfg.lr, weight_decay = cfg.weight_decay })
local schedule = optim.warmup_cosine { warmup = math.min(cfg.warmup, math.floor(cfg.steps / 10)), total = cfg.steps, base_lr = cfg.lr, min_lr = cfg.lr * 0.05 }
local objective_opts = {
  lead_mask_p = cfg.lead_mask_p, num_negatives = cfg.num_negatives, temperature = cfg.temperature,
  diversity_weight = cfg.diversity_weight, cmsc_weight = cfg.cmsc_weight, cmsc_temperature = cfg.cmsc_temperature,
  losses = { w2v_contrastive = wb.losses.w2v_contrastive, diversity = wb.losses.diversity,
             masked_mse = wb.losses.masked_mse, cmsc = wb.losses.cmsc },   -- swap any of these
}
local t0, first, last = wb.now(), nil, {}
local function fmt(p)
  local keys, s = { "total", "w2v", "diversity", "recon", "cmsc", "acc", "perplexity" }, {}
  for _, k in ipairs(keys) do if p[k] then s[#s + 1] = string.format("%s %.3f", k, p[k]) end end
  return table.concat(s, "  ")
end
for step = 1, cfg.steps do
  if enc.quantizer then
    enc.quantizer.tau = cfg.gumbel_tau[1] * (cfg.gumbel_tau[2] / cfg.gumbel_tau[1]) ^ ((step - 1) / cfg.steps)
  end
  local x, groups = pretrain_batch()
  local loss, parts = E.ssl_objective(enc, x, groups, objective_opts)
  opt:zero_grad()
  loss:backward()
  optim.clip_grad_norm(enc:parameters(), cfg.clip)
  opt:set_lr(schedule(step))
  opt:step()
  first = first or parts
  for k, v in pairs(parts) do last[k] = (last[k] or 0) + v / 20 end
  if step % 20 == 0 then
    print(string.format("step %4d/%d  %s  lr %.2e  %.2f steps/s", step, cfg.steps, fmt(last), schedule(step),
      step / (wb.now() - t0)))
    if step < cfg.steps then last = {} end
  end
end
print(string.format("pretraining: %d steps in %.0f s; loss %.3f (step 1) -> %.3f (mean of the last 20 steps)",
  cfg.steps, wb.now() - t0, first and first.total or 0, last.total or 0))

local result = { encoder = enc, steps = cfg.steps, seconds = wb.now() - t0,
  loss_first = first and first.total, loss_last = last.total, config = cfg }
if cfg.out then
  local dir = cfg.out:match("^(.*)/[^/]*$")
  if dir then os.execute("mkdir -p '" .. dir .. "'") end
  wb.checkpoint.save(cfg.out, { model = enc, step = cfg.steps, config = {
    model = cfg.model, objective = cfg.objective, data = cfg.data, steps = cfg.steps, seed = cfg.seed,
    fs = cfg.fs, segment_seconds = cfg.segment_seconds, loss_last = last.total } })
  print("encoder saved to " .. cfg.out)
end
if not cfg.probe then return result end

local pretrained = evaluate()
print(string.format("held-out: %d records, seed %d", cfg.n_probe_test, cfg.seed))
report("random init", random_init)
report("pretrained", pretrained)
local function mean_mae()
  local m, s = 0, 0
  for _, v in ipairs(hr_ptr) do m = m + v / #hr_ptr end
  for _, v in ipairs(hr_pte) do s = s + math.abs(v - m) / #hr_pte end
  return s
end
print(string.format("predicting the mean: %.2f", mean_mae()))
result.random_init, result.pretrained, result.mean_mae = random_init, pretrained, mean_mae()
return result
