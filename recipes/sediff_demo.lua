--[[ recipes/sediff_demo.lua: SE-Diff's simulator prior, end to end at small
scale, with a stand-in denoiser (the U-Net and diffusion.lua were not on
main when this was written; swap them in for the real run in two_stage.lua).

Method. Requests are the corpus records' reports (text embedding: a fixed
hashed bag of words, 64 dims, L2-normalised), age, sex and heart rate (the
simulator's true HR). models/sediff.lua turns them into condition tokens;
with the prior on, its beat decoder predicts ECGSYN wave parameters and the
differentiable beat synthesiser makes template beats. A DDPM (linear β,
`T` steps, ε-prediction) trains a small dilated-conv denoiser conditioned
by FiLM on the mean condition token and the step. Loss:
  ε-MSE + [prior] λ ᾱ_t·consistency(x̂0, templates) + template MSE to the
  records' own mean beats (record_templates),
where x̂0 is the denoiser's predicted clean ECG, cut into beats at the
training record's R peaks. Sampling: DDIM; with the prior, each step also
moves x̂0 down the consistency loss's gradient (grid-aligned beats at the
decoder's RR), `guide` steps of size `eta`. Metrics on test requests: HR
MAE of the samples with wb.signal.rpeaks (wb.metrics.hr_mae), Einthoven
error. Run with prior = true and prior = false and compare.

  ecgwb recipes/sediff_demo.lua               -- both arms, prints the table
  wb.run("recipes/sediff_demo.lua", { minutes = 1, arms = { true } })
]]
local wb = require "ecgwb"
local nn = require "ecgwb.nn"
local optim = require "ecgwb.optim"
local sd = require "ecgwb.models.sediff"

local opts = ... or {}
local cfg = {
  fs = 100, seconds = 5, n_train = 600, n_test = 32, Dt = 64, T = 100,
  steps = 100000, minutes = 3, batch = 16, lr = 2e-3, ddim = 25, lambda = 1.0,
  guide = 3, eta = 0.5, seed = 0, arms = { false, true },
}
for k, v in pairs(opts) do cfg[k] = v end

------------------------------------------------------------------ data
local tr = wb.corpus.load { split = "train", fs = cfg.fs, seconds = cfg.seconds, max = cfg.n_train }
local te = wb.corpus.load { split = "test", fs = cfg.fs, seconds = cfg.seconds, max = cfg.n_test }

-- the text encoder: hashed bag of words (FNV-1a), L2-normalised
local function embed(texts)
  local rows = {}
  for i, s in ipairs(texts) do
    local v = {}
    for d = 1, cfg.Dt do v[d] = 0 end
    for _, tok in ipairs(wb.metrics.tokenize(s)) do
      local h = 2166136261
      for c = 1, #tok do h = bit.tobit(bit.bxor(h, tok:byte(c)) * 16777619) end
      local d = h % cfg.Dt + 1
      v[d] = v[d] + 1
    end
    rows[i] = v
  end
  return wb.normalize(wb.tensor(rows), 2)
end
local function request(c)
  return { text = embed(c.reports), age = c.age, sex = c.sex, hr = c.truth.hr }
end
local req_tr, req_te = request(tr), request(te)
local peaks = {}
for i = 1, tr.n do peaks[i] = wb.signal.rpeaks(tr.x:select(1, i):contiguous(), cfg.fs):totable() end
local beat_len = 64
local tmpl_tr, _, valid_tr = sd.record_templates(tr.x, cfg.fs, beat_len, { peaks = peaks })
local L, S = tr.x:size(2), tr.x:size(3)
local scale = 1 / tr.x:std():item() -- the denoiser sees unit-variance signals

------------------------------------------------------------------ the stand-in denoiser
local Denoiser = nn.class("StandInDenoiser")
function Denoiser:__init(dc, ch)
  self.inp = nn.Conv1d(L, ch, 9, { padding = 4 })
  self.emb = nn.Sequential(nn.Linear(dc + 16, 128), nn.SiLU(), nn.Linear(128, 2 * ch))
  self.blocks = nn.ModuleList()
  for _, d in ipairs { 1, 2, 4, 8, 16, 1 } do self.blocks:append(nn.Conv1d(ch, ch, 9, { padding = 4 * d, dilation = d })) end
  self.out = nn.Conv1d(ch, L, 9, { padding = 4 })
  self.ch = ch
end
function Denoiser:forward(x, t, cond) -- x (B, L, S), t (B) in [0, 1], cond (B, Sc, dc)
  local B = x:size(1)
  local f = {}
  for j = 0, 7 do
    local w = t * (math.pi * 2 ^ j)
    f[#f + 1] = w:sin():unsqueeze(2); f[#f + 1] = w:cos():unsqueeze(2)
  end
  local e = self.emb(wb.cat({ cond:mean(2), wb.cat(f, 2) }, 2)) -- (B, 2ch)
  local g, b = e:narrow(2, 1, self.ch):unsqueeze(3), e:narrow(2, self.ch + 1, self.ch):unsqueeze(3)
  local h = self.inp(x) * (g + 1) + b
  for i = 1, #self.blocks do h = h + self.blocks[i](h:gelu()) end
  return self.out(h:gelu())
end

-- DDPM, linear β from 1e-4 to 0.02 over T steps
local abar = {}
do
  local p = 1
  for i = 1, cfg.T do
    p = p * (1 - (1e-4 + (0.02 - 1e-4) * (i - 1) / (cfg.T - 1)))
    abar[i] = p
  end
end

------------------------------------------------------------------ one arm
local function run_arm(prior)
  wb.manual_seed(cfg.seed)
  local m = sd.SEDiff { text_dim = cfg.Dt, dim = 32, hidden = 64, fs = cfg.fs, beat_len = beat_len, prior = prior,
    retrieval = true, k = 4, lambda = cfg.lambda }
  m:set_bank(req_tr.text)
  local den = Denoiser(32, 48)
  local params = m:parameters()
  for _, p in ipairs(den:parameters()) do params[#params + 1] = p end
  local opt = optim.AdamW(params, { lr = cfg.lr, weight_decay = 0 })
  local t0, step, last = wb.now(), 0, {}
  while step < cfg.steps and wb.now() - t0 < cfg.minutes * 60 do
    step = step + 1
    local idx = wb.randint(0, tr.n, { cfg.batch })
    local il = idx:totable()
    local x0 = tr.x:index_select(1, idx) * scale
    local sub = function(v) return v:index_select(1, idx) end
    local ex = {}
    for i, r in ipairs(il) do ex[i] = r end
    local cond = m:condition { text = sub(req_tr.text), age = sub(req_tr.age), sex = sub(req_tr.sex), hr = sub(req_tr.hr), exclude = ex }
    local ts, ab, sa, sb = {}, {}, {}, {}
    for i = 1, cfg.batch do
      ts[i] = math.random(cfg.T)
      ab[i] = abar[ts[i]]
      sa[i], sb[i] = math.sqrt(ab[i]), math.sqrt(1 - ab[i])
    end
    local eps = wb.randn(cfg.batch, L, S)
    local col = function(v) return wb.tensor(v):view(cfg.batch, 1, 1) end
    local xt = x0 * col(sa) + eps * col(sb)
    local tt = wb.tensor(ts) / cfg.T
    local pe = den(xt, tt, cond)
    local loss = wb.mse_loss(pe, eps)
    last.eps = loss:item()
    if prior then
      local x0p = (xt - pe * col(sb)) / col(sa) / scale -- back in mV
      -- trust x̂0 by ᾱ_t: weight the rows' windows by scaling their deviation
      local w = col(ab):sqrt()
      local pk, tg, vl = {}, sub(tmpl_tr), {}
      for i, r in ipairs(il) do pk[i], vl[i] = peaks[r + 1], valid_tr[r + 1] end
      local tm, rr = m:templates(cond, sub(req_tr.hr))
      local cons = sd.consistency_loss(x0p * w, tm:detach() * w, rr:detach(), cfg.fs, { peaks = pk })
      local pl = wb.mse_loss(tm, tg)
      loss = loss + cons * cfg.lambda + pl
      last.cons, last.prior = cons:item(), pl:item()
    end
    opt:zero_grad(); loss:backward(); opt:step()
  end
  local train_s = wb.now() - t0

  -- DDIM sampling on the test requests (with prior: consistency guidance on x̂0)
  local B = te.n
  local cond = wb.no_grad(function() return m:condition(req_te) end)
  local tm, rr
  if prior then tm, rr = wb.no_grad(function() return m:templates(cond, req_te.hr) end) end
  wb.manual_seed(cfg.seed + 1)
  local x = wb.randn(B, L, S)
  local seq = {}
  for i = 0, cfg.ddim - 1 do seq[#seq + 1] = math.floor(cfg.T - i * cfg.T / cfg.ddim + 0.5) end
  for j, t in ipairs(seq) do
    local a, an = abar[t], seq[j + 1] and abar[seq[j + 1]] or 1
    local e = wb.no_grad(function() return den(x, wb.full({ B }, t / cfg.T), cond) end)
    local x0 = (x - e * math.sqrt(1 - a)) / math.sqrt(a)
    if prior then
      for _ = 1, cfg.guide do
        local v = (x0 / scale):detach():requires_grad_()
        local l = sd.consistency_loss(v, tm, rr, cfg.fs)
        l:backward()
        x0 = x0 - v.grad * (cfg.eta * scale * B)
      end
      e = (x - x0 * math.sqrt(a)) / math.sqrt(1 - a)
    end
    x = (x0 * math.sqrt(an) + e * math.sqrt(1 - an)):detach()
  end
  local gen = x / scale
  local hr = wb.metrics.hr_mae(gen, req_te.hr, cfg.fs)
  local real_hr = wb.metrics.hr_mae(te.x, req_te.hr, cfg.fs)
  local e1, e2 = wb.metrics.einthoven(gen)
  return { prior = prior, steps = step, train_s = train_s, hr_mae = hr.mae, hr_failed = hr.failed,
    real_hr_mae = real_hr.mae, einthoven = e1, einthoven_aug = e2, last = last, params = m:num_parameters() + den:num_parameters() }
end

local results = {}
for _, prior in ipairs(cfg.arms) do
  local r = run_arm(prior)
  results[#results + 1] = r
  print(string.format("prior %-5s  steps %4d (%.0f s)  HR MAE %.2f bpm (%d undetected of %d)  [real ECGs: %.2f]  Einthoven %.3f mV  eps %.3f%s",
    tostring(prior), r.steps, r.train_s, r.hr_mae, r.hr_failed, te.n, r.real_hr_mae, r.einthoven, r.last.eps or 0,
    prior and string.format("  cons %.4f  template %.4f", r.last.cons, r.last.prior) or ""))
end
return results
