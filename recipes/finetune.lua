--[[ recipes/finetune.lua — fine-tuning a pretrained ECG encoder on the 20
labels of the simulated corpus, with label efficiency.

Method. The encoder pretrained by recipes/pretrain_fm.lua (config tiny) and
a linear head are trained end to end with BCE on 1%, 10% or 100% of the
training records' labels of the default corpus (wb.corpus: 250 Hz, train
1599 / validation 182 / test 219, seed 2024; the subsets are
wb.probe.label_fraction's, seeded, with at least one positive per label
where the size allows). The head reads the same pooled embedding as
recipes/linear_probe.lua (wb.probe.pool: mean and max of the transformer's
frames, mean and max of the conv features, log RMS of the first conv's
channels), standardised with the mean and SD over the training subset at
the start. The head starts as the linear probe fitted on the same subset
(LP-FT, Kumar et al. 2022: wb.probe.fit_probe, L2 picked on validation), so
fine-tuning does not distort the features through a random head; head_init =
"zero" starts from zeros. AdamW (weight decay 0.01), warmup-cosine schedule
(steps per fraction: 100 / 200 / 400 at 1 / 10 / 100%), the encoder's
learning rate 10x lower than the head's, gradient clipping at 1; batches of
`batch` random `crop_seconds` crops of the training records; evaluation on
the full 10 s. Every `eval_every` steps the validation macro AUROC is
measured (and once before training) and the best state is kept (early
stopping on validation); each label's F1 threshold is chosen on validation;
the test split is only scored.
The baseline is the same architecture from a random initialisation (seed 1),
trained identically.

If runs/pretrain_fm/encoder.h5 is missing, the recipe first pretrains one
itself (pretrain_fm.lua on the corpus's training records, labels unused,
`pretrain_steps` steps) and saves it there; it says so.

  ecgwb recipes/finetune.lua [--encoder=PATH] [--steps=N] [--pretrain-steps=N]
]]
local wb = require "ecgwb"
local nn, optim = wb.nn, wb.optim
local E = require "ecgwb.models.ecg_encoder"
local P = wb.probe
io.stdout:setvbuf("line")

local opts = ...
if type(opts) ~= "table" then
  opts = {}
  for _, a in ipairs(arg or {}) do
    local k, v = a:match("^%-%-([%w_-]+)=(.*)$")
    if k == "encoder" then opts.encoder = v
    elseif k == "steps" then opts.steps = tonumber(v)
    elseif k == "pretrain-steps" then opts.pretrain_steps = tonumber(v)
    else error("finetune: unknown argument '" .. a .. "' (--encoder=PATH, --steps=N, --pretrain-steps=N)") end
  end
end

local cfg = {
  seed = 1,
  fs = 250,
  corpus = opts.corpus,                       -- default: wb.sim.default_corpus()
  encoder = opts.encoder or "runs/pretrain_fm/encoder.h5",
  pretrain_steps = opts.pretrain_steps or 600,     -- only when the encoder file is missing
  fractions = opts.fractions or { 0.01, 0.1, 1.0 },
  pool = opts.pool or { "frames_mean", "frames_max", "features_mean", "features_max", "amplitude" },
  steps = opts.steps or { [0.01] = 100, [0.1] = 200, [1.0] = 400 },  -- per fraction (or one number)
  batch = 16, crop_seconds = 5,
  head_init = opts.head_init or "probe",        -- "probe": LP-FT (the head starts as the linear probe); "zero"
  l2 = { 1e-4, 1e-3, 1e-2, 1e-1 },              -- the probe's L2 grid (picked on validation)
  lr_head = 3e-3, lr_encoder = 3e-4, warmup = 20, weight_decay = 0.01, clip = 1.0,
  eval_every = 25,
}
local t_start = wb.now()

-- data
local data = {}
for _, s in ipairs { "train", "validation", "test" } do data[s] = wb.corpus.load { path = cfg.corpus, split = s, fs = cfg.fs } end
local names = data.train.label_names
print(string.format("corpus %s: train %d / validation %d / test %d records, 12 x %d samples (%d Hz), %d labels",
  data.train.file, data.train.n, data.validation.n, data.test.n, data.train.samples, cfg.fs, #names))

-- the pretrained encoder's weights (pretrained here if there are none)
local ecfg, ck = P.pretrained_encoder(cfg.encoder, { steps = cfg.pretrain_steps, corpus = cfg.corpus })
print(string.format("pretrained encoder: %s ('%s', %s, %d steps on %s data)", cfg.encoder,
  ck.config.model, ck.config.objective, ck.config.steps, ck.config.data))

local function new_encoder(init)
  local enc
  if init == "pretrained" then
    enc = E.EcgEncoder(ecfg)
    wb.checkpoint.load(cfg.encoder, { model = enc, rng = false })
  else
    wb.manual_seed(cfg.seed)
    enc = E.EcgEncoder(ecfg)
  end
  return enc
end

local Model = nn.class("FinetuneModel")
function Model:__init(enc, mu, sd)
  self.enc = enc
  self.head = nn.Linear(P.pool_dim(enc, cfg.pool), #names)
  self.mu, self.sd = mu, sd                                      -- fixed standardisation (not parameters)
end
function Model:forward(x) return self.head((P.pool(self.enc, x, nil, cfg.pool) - self.mu) / self.sd) end
function Model:trainable()
  local ps = {}
  for _, np in ipairs(self.enc:named_parameters()) do
    -- the pretraining heads are not used here
    if not (np[1]:match("^quantizer%.") or np[1]:match("^project_q%.") or np[1]:match("^final_proj%.")
      or np[1]:match("^recon_head%.") or np[1] == "mask_emb") then ps[#ps + 1] = np[2] end
  end
  return ps
end

-- scores (N, K) for full records, eval mode, no graph
local function scores(model, x)
  model:eval()
  local s = wb.no_grad(function()
    local out = {}
    for i = 1, x:size(1), 64 do
      local n = math.min(64, x:size(1) - i + 1)
      out[#out + 1] = wb.sigmoid(model(x:narrow(1, i, n)))
    end
    return wb.cat(out, 1)
  end)
  model:train()
  return s
end

local function snapshot(model)
  local sd = {}
  for k, v in pairs(model:state_dict()) do sd[k] = v:detach():clone() end
  return sd
end

local crop = cfg.fs * cfg.crop_seconds
local function steps_of(f) return type(cfg.steps) == "table" and (cfg.steps[f] or 200) or cfg.steps end
local function finetune(init, rows, steps)
  local enc = new_encoder(init)
  local idx = P.index(rows)
  local Ztr = P.embed(enc, data.train.x:index_select(1, idx), { pool = cfg.pool })
  local mu, sd = Ztr:mean(1, true), (#rows > 1 and Ztr:std(1, 0, true) or wb.ones(1, Ztr:size(2))) + 1e-6
  wb.manual_seed(cfg.seed + 100)
  local model = Model(enc, mu, sd)
  if cfg.head_init == "probe" then                 -- LP-FT: start from the linear probe (same standardisation)
    local lp = P.fit_probe(Ztr, data.train.labels:index_select(1, idx), P.embed(enc, data.validation.x, { pool = cfg.pool }),
      data.validation.labels, { l2 = cfg.l2 })
    wb.no_grad(function()
      model.head.weight:copy_(lp.model.W:t())
      model.head.bias:copy_(lp.model.b)
    end)
  elseif cfg.head_init == "zero" then
    wb.no_grad(function() model.head.weight:zero_(); model.head.bias:zero_() end)
  else
    error("finetune: head_init must be 'probe' or 'zero', got " .. tostring(cfg.head_init))
  end
  local opt = optim.AdamW({ { params = model:trainable(), lr = cfg.lr_encoder }, { params = model.head:parameters() } },
    { lr = cfg.lr_head, weight_decay = cfg.weight_decay })
  local sched = optim.warmup_cosine { warmup = math.min(cfg.warmup, math.floor(steps / 10)), total = steps, base_lr = cfg.lr_head, min_lr = cfg.lr_head * 0.02 }
  local best = { auroc = wb.metrics.auroc(scores(model, data.validation.x), data.validation.labels), step = 0, state = snapshot(model) }
  local order, pos = {}, 0
  local L = data.train.samples
  model:train()
  for step = 1, steps do
    local xs, ys = {}, {}
    for b = 1, cfg.batch do
      if pos >= #order then order, pos = wb.randperm(#rows):totable(), 0 end
      pos = pos + 1
      local r = rows[order[pos] + 1]
      local start = 1 + math.floor(wb.rand(1):item() * (L - crop + 1))
      xs[b] = data.train.x[r]:narrow(2, start, crop)
      ys[b] = data.train.labels[r]
    end
    local logits = model(wb.stack(xs, 1))
    local loss = wb.bce_with_logits(logits, wb.stack(ys, 1))
    opt:zero_grad()
    loss:backward()
    optim.clip_grad_norm(opt:parameters(), cfg.clip)
    opt:set_lr(sched(step))
    opt:step()
    if step % cfg.eval_every == 0 or step == steps then
      local a = wb.metrics.auroc(scores(model, data.validation.x), data.validation.labels)
      if a > best.auroc then best = { auroc = a, step = step, state = snapshot(model) } end
      wb.report { step = step, loss = loss:item(), val_auroc = a }
    end
  end
  model:load_state_dict(best.state)
  local th = P.f1_thresholds(scores(model, data.validation.x), data.validation.labels)
  local r = P.evaluate(scores(model, data.test.x), data.test.labels, th)
  r.best_step, r.val_auroc, r.n = best.step, best.auroc, #rows
  return r
end

local by, metrics = {}, {}
for _, frac in ipairs(cfg.fractions) do
  local rows = P.label_fraction(data.train.labels, frac, cfg.seed + 1)
  by[frac] = {}
  for _, init in ipairs { "random", "pretrained" } do
    local t0 = wb.now()
    local r = finetune(init, rows, steps_of(frac))
    by[frac][init] = r
    print(string.format("  %5.1f%% (%4d records) %-10s test macro AUROC %.4f  AUPRC %.4f  F1 %.4f  (best val AUROC %.4f at step %d; %.0f s)",
      100 * frac, r.n, init, r.auroc, r.auprc, r.f1, r.val_auroc, r.best_step, wb.now() - t0))
  end
  metrics[frac] = {}
  for init, r in pairs(by[frac]) do metrics[frac][init] = { auroc = r.auroc, auprc = r.auprc, f1 = r.f1 } end
end

local st = {}
for _, f in ipairs(cfg.fractions) do st[#st + 1] = steps_of(f) end
print(string.format("\nfine-tuning (head init: %s; %s steps; batch %d, %g s crops), test split (%d records of %s)",
  cfg.head_init, table.concat(st, " / "), cfg.batch, cfg.crop_seconds, data.test.n, data.test.file))
print(string.format("%-16s | %-16s | %-16s | %-16s", "labels", "AUROC rand/pretr", "AUPRC rand/pretr", "F1 rand/pretr"))
for _, frac in ipairs(cfg.fractions) do
  local a, b = by[frac].random, by[frac].pretrained
  print(string.format("%5.1f%% (%4d rec) | %.4f / %.4f  | %.4f / %.4f  | %.4f / %.4f", 100 * frac, b.n,
    a.auroc, b.auroc, a.auprc, b.auprc, a.f1, b.f1))
end
local full = by[cfg.fractions[#cfg.fractions]]
print(string.format("\nper label, %g%% of the labels, test AUROC / AUPRC / F1 (pretrained), AUROC (random init):", 100 * cfg.fractions[#cfg.fractions]))
for k, n in ipairs(names) do
  print(string.format("  %-8s %.3f / %.3f / %.3f   %.3f", n, full.pretrained.auroc_per[k], full.pretrained.auprc_per[k],
    full.pretrained.f1_per[k], full.random.auroc_per[k]))
end
print(string.format("wall time %.0f s", wb.now() - t_start))
metrics.seconds = wb.now() - t_start
return metrics
