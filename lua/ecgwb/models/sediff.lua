--[[ ecgwb.models.sediff: the SE-Diff parts of text-to-ECG generation (issue 6):
the condition, a physiological simulator prior and experience retrieval.
The denoiser and the diffusion process are elsewhere (unet1d.lua,
diffusion.lua); this module gives them condition tokens and a loss.

    local sediff = require "ecgwb.models.sediff"
    local m = sediff.SEDiff { text_dim = 64, dim = 64, fs = 250 }   -- prior and retrieval on
    m:set_bank(train_text_emb)                  -- (N, Dt) the training reports' embeddings
    local req = { text = emb, age = age, sex = sex, hr = hr }        -- (B, Dt), (B), (B), (B)
    local cond = m:condition(req)               -- (B, S, Dc) condition tokens for cross-attention
    local tmpl, rr = m:templates(cond, req.hr)  -- (B, 12, beat_len) template beats, (B) RR in s
    local l = sediff.consistency_loss(x0_pred, tmpl, rr, fs)       -- differentiable w.r.t. x0_pred

The idea (SE-Diff): a physiological simulator whose parameters are predicted
from the condition is a prior that the generated ECG must agree with. Here the
simulator is ECGSYN's beat in closed form (wb.beat_synth, kernels/beat.c,
differentiable), and agreement is the distance between the generated ECG's
beats and the simulated template beat.

The condition encoder (ConditionEncoder) turns a request into tokens (B, S, Dc):
  token 1      the text embedding (B, Dt) (any text encoder: gpt.lua's
               encode_text, or stage 2's aligned LM hidden states), Linear Dt -> Dc;
  tokens 2..4  age, sex and heart rate, each through Fourier features of the
               normalised value (age/100, sex +1 male / -1 female / 0 unknown,
               (hr - 30)/170) and a small MLP (SiLU) to Dc; an unknown
               (NaN) age or heart rate is the value 0 with a learned
               "unknown" flag feature;
  tokens 5..   retrieval on: the k retrieved reports' embeddings through one
               Linear Dt -> Dc, as k tokens (retrieval_mode "tokens") or their
               mean as one token ("mean").
So S = 4 (+ k or + 1). The null condition for classifier-free guidance is
nil (the denoiser's own learned null), not produced here.

The beat decoder (BeatDecoder): an MLP from the condition (the four base
tokens flattened, plus the mean retrieved token) to ECGSYN wave parameters,
`wave_sets` sets of the five waves P Q R S T (the synthesiser takes five;
a second set adds five free Gaussians for what ECGSYN's five do not cover:
ST shifts, wide or notched QRS, the simulator's separate P/T components).
Parameters are predicted in TIME, as core/sim.c defines its waves (a wave
keeps its duration when RR changes): centre t (s from the R peak), width σ
(s) and peak amplitude A (mV) per lead; with the RR interval they become the
synthesiser's phase parameters θ = 2π t/RR, b = 2π σ/RR and
a = A·2π/(RR b²), so each Gaussian peaks at A mV. t = t0 + 0.15 tanh(.) and
σ = σ0 exp(clamp(., ±2)) start at ECGSYN's morphology (t0 = θ_ECGSYN/2π s,
σ0 = b_ECGSYN/2π s); set 2 starts shifted. The RR interval is 60/hr times
exp(0.2 tanh(.)) (the requested rate, with a learned correction within
±20%; rr_free = true predicts it from the condition alone, for requests
without a rate).
The template is one RR long, beat_len samples, R at sample beat_len/2
(0-based), the synthesiser's grid: sample k is at time (k - n/2)·RR/n from R.

Template beats of real records (record_templates): the mean over a record's
beats of the window of one RR (the record's median RR) centred on each R
peak, linearly resampled to beat_len samples. R peaks are given or found by
wb.signal.rpeaks. The decoder is trained to these (prior_loss, MSE).

The simulator-consistency loss (consistency_loss): the generated ECG
x0_pred (B, L, T) is cut into beats at R peaks, each window resampled as
above (linear interpolation: index_select on the flattened signal, so the
gradient reaches x0_pred), and compared with the template (B, L, n):
mode "mean" (default): MSE between the mean generated beat and the template;
mode "each": the mean over beats of each beat's MSE. R peaks: opts.peaks
(a list of B lists of 0-based samples, or an i64 (B, M) tensor padded with
-1, e.g. the training record's true peaks), else align = "grid" (default):
peaks every RR·fs samples from a phase chosen by cross-correlating the
signal with the template (no gradient through the choice: assumes a
regular rhythm), or align = "detect": wb.signal.rpeaks on the detached
signal. Only windows wholly inside the signal count; a row without one is
left out of the mean (all rows without: a zero that still backpropagates).

Experience retrieval (Retriever): exact top-k cosine neighbours of the
request's text embedding among the bank's, via one matmul of the
L2-normalised embeddings and a selection per row; `exclude` (0-based bank
rows, one per request) leaves the request's own record out in training.

Ablation: cfg.prior = false builds no decoder (templates() and prior_loss()
error, loss() skips the consistency term); cfg.retrieval = false builds no
retrieval projection and gives S = 4 tokens.
]]
local wb = require "ecgwb"
local nn = require "ecgwb.nn"

local M = {}

M.defaults = {
  text_dim = 64,          -- Dt, the text embedding's width
  dim = 64,               -- Dc, the condition tokens' width
  hidden = 128,           -- MLP width (scalar encoders, beat decoder)
  fourier = 6,            -- Fourier frequencies per scalar (features 2F + 2)
  leads = 12,
  beat_len = 128,         -- template samples (one RR)
  fs = 250,               -- sampling rate of the ECGs the templates are compared with
  wave_sets = 2,          -- sets of five Gaussian waves in the template
  prior = true,           -- beat decoder + simulator-consistency loss
  retrieval = true,       -- retrieved reports as condition tokens
  k = 4,                  -- neighbours retrieved
  retrieval_mode = "tokens", -- "tokens" (k tokens) or "mean" (one token)
  rr_free = false,        -- RR from the condition alone (no requested rate)
  lambda = 1.0,           -- weight of the consistency loss in loss()
}

function M.config(over)
  local c = {}
  for k, v in pairs(M.defaults) do c[k] = v end
  for k, v in pairs(over or {}) do
    if M.defaults[k] == nil then error("sediff.config: unknown option '" .. tostring(k) .. "'", 3) end
    c[k] = v
  end
  if c.retrieval_mode ~= "tokens" and c.retrieval_mode ~= "mean" then
    error("sediff.config: retrieval_mode must be 'tokens' or 'mean', got '" .. tostring(c.retrieval_mode) .. "'", 3)
  end
  if c.beat_len % 2 ~= 0 then error("sediff.config: beat_len must be even (R at beat_len/2), got " .. c.beat_len, 3) end
  return c
end

------------------------------------------------------------------ helpers

local function shape(t) return "[" .. table.concat(t:size(), ", ") .. "]" end

-- a (B) f32 tensor from a tensor, a Lua list or a number repeated B times
local function vec(x, B, what, op)
  if type(x) == "number" then return wb.full({ B }, x) end
  if type(x) == "table" then x = wb.tensor(x) end
  if not wb.is_tensor(x) then error(op .. ": " .. what .. " must be a number, a list or a tensor", 3) end
  if x:dim() ~= 1 or x:size(1) ~= B then
    error(op .. ": " .. what .. " must be (" .. B .. "), got " .. shape(x), 3)
  end
  return x:type() == "f32" and x or x:to("f32")
end

-- NaN -> 0 and a (B) 0/1 tensor flagging them
local function nan_split(v)
  local t, flag = v:totable(), {}
  for i = 1, #t do
    if t[i] ~= t[i] then t[i], flag[i] = 0, 1 else flag[i] = 0 end
  end
  return wb.tensor(t), wb.tensor(flag)
end

------------------------------------------------------------------ condition encoder

-- one scalar -> Dc: [v, unknown, sin(2^j π v), cos(2^j π v)] -> MLP
local ScalarEncoder = nn.class("ScalarEncoder")
M.ScalarEncoder = ScalarEncoder

function ScalarEncoder:__init(fourier, hidden, dim)
  self.fourier = fourier
  self.net = nn.Sequential(nn.Linear(2 * fourier + 2, hidden), nn.SiLU(), nn.Linear(hidden, dim))
end

function ScalarEncoder:forward(v) -- v (B) normalised, NaN = unknown
  local x, unk = nan_split(v)
  local feats = { x:unsqueeze(2), unk:unsqueeze(2) }
  for j = 0, self.fourier - 1 do
    local w = x * (math.pi * 2 ^ j)
    feats[#feats + 1] = w:sin():unsqueeze(2)
    feats[#feats + 1] = w:cos():unsqueeze(2)
  end
  return self.net(wb.cat(feats, 2)) -- (B, Dc)
end

local ConditionEncoder = nn.class("ConditionEncoder")
M.ConditionEncoder = ConditionEncoder

function ConditionEncoder:__init(cfg)
  self.cfg = cfg
  self.text = nn.Linear(cfg.text_dim, cfg.dim)
  self.age = ScalarEncoder(cfg.fourier, cfg.hidden, cfg.dim)
  self.sex = ScalarEncoder(cfg.fourier, cfg.hidden, cfg.dim)
  self.hr = ScalarEncoder(cfg.fourier, cfg.hidden, cfg.dim)
  if cfg.retrieval then self.retrieved = nn.Linear(cfg.text_dim, cfg.dim) end
end

-- number of condition tokens
function ConditionEncoder:num_tokens()
  local c = self.cfg
  if not c.retrieval then return 4 end
  return 4 + (c.retrieval_mode == "tokens" and c.k or 1)
end

-- the request's normalised scalars: age/100, sex (corpus coding 1 male, 0
-- female, -1 unknown; or "male"/"female") -> +1/-1/NaN, (hr - 30)/170
local function norm_scalars(req, B, op)
  local age = vec(req.age == nil and 0 / 0 or req.age, B, "age", op) / 100
  local sex = req.sex
  if type(sex) == "string" then sex = sex == "male" and 1 or sex == "female" and 0 or -1 end
  local s = vec(sex == nil and -1 or sex, B, "sex", op):totable()
  for i = 1, B do s[i] = s[i] == 1 and 1 or s[i] == 0 and -1 or 0 / 0 end
  local hr = (vec(req.hr == nil and 0 / 0 or req.hr, B, "hr", op) - 30) / 170
  return age, wb.tensor(s), hr
end

-- req = {text (B, Dt), age, sex, hr, retrieved = (B, k, Dt) when retrieval is on}
function ConditionEncoder:forward(req)
  local op = "sediff.condition"
  local c = self.cfg
  local text = req.text
  if not wb.is_tensor(text) or text:dim() ~= 2 or text:size(2) ~= c.text_dim then
    error(op .. ": text must be a (B, " .. c.text_dim .. ") embedding, got " ..
      (wb.is_tensor(text) and shape(text) or type(text)), 3)
  end
  local B = text:size(1)
  local age, sex, hr = norm_scalars(req, B, op)
  local toks = { self.text(text), self.age(age), self.sex(sex), self.hr(hr) }
  if c.retrieval then
    local r = req.retrieved
    if not wb.is_tensor(r) or r:dim() ~= 3 or r:size(1) ~= B or r:size(2) ~= c.k or r:size(3) ~= c.text_dim then
      error(op .. ": retrieval is on: retrieved must be (" .. B .. ", " .. c.k .. ", " .. c.text_dim ..
        ") (set_bank, or pass it), got " .. (wb.is_tensor(r) and shape(r) or type(r)), 3)
    end
    local e = self.retrieved(r) -- (B, k, Dc)
    if c.retrieval_mode == "mean" then e = e:mean(2, true) end
    for j = 1, e:size(2) do toks[#toks + 1] = e:select(2, j) end
  end
  for i = 1, #toks do toks[i] = toks[i]:unsqueeze(2) end
  return wb.cat(toks, 2) -- (B, S, Dc)
end

------------------------------------------------------------------ beat decoder

-- ECGSYN's P Q R S T in time at 60 bpm: centres (s from R) and widths (s)
local T0 = { -70 / 360, -15 / 360, 0, 15 / 360, 100 / 360 }
local S0 = { 0.25 / (2 * math.pi), 0.1 / (2 * math.pi), 0.1 / (2 * math.pi), 0.1 / (2 * math.pi), 0.4 / (2 * math.pi) }
-- starting points of the extra sets: between the waves (PR, early/late QRS, ST, late T)
local T_EXTRA = { -0.12, -0.03, 0.03, 0.12, 0.35 }
M.wave_t0, M.wave_sigma0 = T0, S0

local BeatDecoder = nn.class("BeatDecoder")
M.BeatDecoder = BeatDecoder

function BeatDecoder:__init(cfg)
  self.cfg = cfg
  local L, sets = cfg.leads, cfg.wave_sets
  local din = 4 * cfg.dim + (cfg.retrieval and cfg.dim or 0)
  self.nout = sets * 5 * (L + 2) + 1 -- amplitudes, centres, widths, RR
  self.net = nn.Sequential(nn.Linear(din, cfg.hidden), nn.SiLU(), nn.Linear(cfg.hidden, cfg.hidden), nn.SiLU(),
    nn.Linear(cfg.hidden, self.nout))
  -- start at ECGSYN's timing: small last layer, so t ≈ t0, σ ≈ σ0, A ≈ 0
  local last = self.net[5]
  last.weight:mul_(0.1)
  last.bias:zero_()
  local t0, s0 = {}, {}
  for s = 1, sets do
    for i = 1, 5 do
      t0[#t0 + 1] = s == 1 and T0[i] or T_EXTRA[i] + 0.01 * (s - 2)
      s0[#s0 + 1] = s == 1 and S0[i] or 0.02
    end
  end
  self:register_buffer("t0", wb.tensor(t0):view(1, sets, 5))
  self:register_buffer("logs0", wb.tensor(s0):log():view(1, sets, 5))
end

-- the condition tokens (B, S, Dc) -> the decoder's input (B, din)
function BeatDecoder:input(cond)
  local c = self.cfg
  local B = cond:size(1)
  local base = cond:narrow(2, 1, 4):reshape(B, 4 * c.dim)
  if not c.retrieval then return base end
  local r = cond:narrow(2, 5, cond:size(2) - 4):mean(2)
  return wb.cat({ base, r }, 2)
end

-- cond (B, S, Dc), hr (B) requested bpm -> wave parameters in time:
-- {A (B, sets, 5, L) mV, t (B, sets, 5) s, sigma (B, sets, 5) s, rr (B) s}
function BeatDecoder:params(cond, hr)
  local c = self.cfg
  local op = "sediff.templates"
  if not wb.is_tensor(cond) or cond:dim() ~= 3 or cond:size(3) ~= c.dim then
    error(op .. ": cond must be (B, S, " .. c.dim .. ") condition tokens, got " .. (wb.is_tensor(cond) and shape(cond) or type(cond)), 3)
  end
  local B, sets, L = cond:size(1), c.wave_sets, c.leads
  local want_s = 4 + (c.retrieval and (c.retrieval_mode == "tokens" and c.k or 1) or 0)
  if cond:size(2) ~= want_s then error(op .. ": cond has " .. cond:size(2) .. " tokens, this config makes " .. want_s, 3) end
  local out = self.net(self:input(cond)) -- (B, nout)
  local na = sets * 5 * L
  local A = out:narrow(2, 1, na):reshape(B, sets, 5, L)
  local t = self.t0 + out:narrow(2, na + 1, sets * 5):reshape(B, sets, 5):tanh() * 0.15
  local sigma = (self.logs0 + out:narrow(2, na + sets * 5 + 1, sets * 5):reshape(B, sets, 5):clamp(-2, 2)):exp()
  local corr = out:narrow(2, self.nout, 1):reshape(B):tanh() * 0.2
  local rr
  if c.rr_free then
    rr = corr:exp() * 0.8 -- around 75 bpm
  else
    if hr == nil then error(op .. ": the requested heart rate hr (B) is needed (or rr_free = true)", 3) end
    local h = vec(hr, B, "hr", op)
    for _, v in ipairs(h:totable()) do
      if not (v > 0) then error(op .. ": heart rates must be > 0 bpm, got " .. tostring(v), 3) end
    end
    rr = corr:exp() * (60 / h)
  end
  return { A = A, t = t, sigma = sigma, rr = rr }
end

-- wave parameters in time -> templates (B, L, n) through wb.beat_synth
function M.synthesise(p, n)
  local A, B = p.A, p.A:size(1)
  local sets, L = A:size(2), A:size(4)
  local rr3 = p.rr:view(B, 1, 1)
  local theta = p.t * (2 * math.pi) / rr3 -- (B, sets, 5)
  local b = p.sigma * (2 * math.pi) / rr3
  local ascale = wb.div(2 * math.pi, b * b * rr3) -- (B, sets, 5): a = A·2π/(RR b²)
  local out
  for s = 1, sets do
    local a = A:select(2, s) * ascale:select(2, s):unsqueeze(3) -- (B, 5, L)
    local z = wb.beat_synth(a:contiguous(), b:select(2, s):contiguous(), theta:select(2, s):contiguous(), p.rr, n)
    out = out and out + z or z
  end
  return out -- (B, L, n)
end

function BeatDecoder:forward(cond, hr)
  local p = self:params(cond, hr)
  return M.synthesise(p, self.cfg.beat_len), p.rr, p
end

------------------------------------------------------------------ retrieval

local Retriever = {}
Retriever.__index = Retriever
M.Retriever = Retriever

-- bank (N, D): the embeddings searched (e.g. the training reports')
function M.retriever(bank)
  if not wb.is_tensor(bank) or bank:dim() ~= 2 then
    error("sediff.retriever: the bank must be an (N, D) tensor, got " .. (wb.is_tensor(bank) and shape(bank) or type(bank)), 2)
  end
  local b = bank:detach():to("f32")
  return setmetatable({ bank = b, unit = wb.normalize(b, 2), n = b:size(1) }, Retriever)
end

-- query (B, D) -> idx i64 (B, k) 0-based bank rows by decreasing cosine,
-- sims (B, k) f32. o.exclude: one 0-based bank row per query (or -1) left out.
function Retriever:topk(query, k, o)
  o = o or {}
  if not wb.is_tensor(query) or query:dim() ~= 2 or query:size(2) ~= self.bank:size(2) then
    error("sediff.retrieve: the query must be (B, " .. self.bank:size(2) .. "), got " ..
      (wb.is_tensor(query) and shape(query) or type(query)), 2)
  end
  local B = query:size(1)
  local kmax = self.n - (o.exclude and 1 or 0)
  if type(k) ~= "number" or k < 1 or k > kmax then
    error("sediff.retrieve: k must be in 1.." .. kmax .. " for a bank of " .. self.n .. ", got " .. tostring(k), 2)
  end
  local sim = wb.no_grad(function()
    return wb.normalize(query:detach():to("f32"), 2):matmul(self.unit:t()) -- (B, N)
  end):totable()
  local ex = o.exclude and (wb.is_tensor(o.exclude) and o.exclude:totable() or o.exclude) or {}
  local idx, sims = {}, {}
  local N = self.n
  for r = 1, B do
    local row, skip = (r - 1) * N, ex[r] or -1
    -- top k by insertion into a sorted list (ties: the lower index first)
    local bi, bv = {}, {}
    for j = 0, N - 1 do
      local v = sim[row + j + 1]
      if j ~= skip and (#bi < k or v > bv[#bi]) then
        local p = math.min(#bi, k - 1) + 1
        while p > 1 and v > bv[p - 1] do p = p - 1 end
        if #bi < k then bi[#bi + 1], bv[#bv + 1] = 0, 0 end
        for q = #bi, p + 1, -1 do bi[q], bv[q] = bi[q - 1], bv[q - 1] end
        bi[p], bv[p] = j, v
      end
    end
    idx[r], sims[r] = bi, bv
  end
  return wb.tensor(idx, "i64"), wb.tensor(sims)
end

-- the k neighbours' bank embeddings (B, k, D)
function Retriever:retrieve(query, k, o)
  local idx, sims = self:topk(query, k, o)
  local B = idx:size(1)
  return self.bank:index_select(1, idx:reshape(B * k)):reshape(B, k, self.bank:size(2)), idx, sims
end

------------------------------------------------------------------ beat windows

-- 0-based R peaks of row r as a Lua list, from a list of lists or an i64 (B, M) padded with -1
local function peaks_of(peaks, r)
  if wb.is_tensor(peaks) then
    local out = {}
    for _, v in ipairs(peaks:select(1, r):totable()) do if v >= 0 then out[#out + 1] = v end end
    return out
  end
  return peaks[r]
end

-- x (B, L, T); peaks: Lua list of B lists (0-based); rr (B) table (s) ->
-- beats (Nb, L, n) by linear interpolation through index_select (so
-- differentiable in x), and owner[i] = the row of beat i, count[r] per row
local function windows(x, peaks, rr, fs, n)
  local B, L, T = x:size(1), x:size(2), x:size(3)
  local lo_idx, w, owner, count = {}, {}, {}, {}
  for r = 1, B do
    count[r] = 0
    local span = rr[r] * fs -- samples per RR
    for _, p in ipairs(peaks[r] or {}) do
      local first = p - span / 2
      local last = first + (n - 1) * span / n
      if first >= 0 and math.floor(last) + 1 <= T - 1 then
        owner[#owner + 1] = r
        count[r] = count[r] + 1
        for l = 0, L - 1 do
          local base = ((r - 1) * L + l) * T
          for k = 0, n - 1 do
            local pos = first + k * span / n
            local f = math.floor(pos)
            lo_idx[#lo_idx + 1] = base + f
            w[#w + 1] = pos - f
          end
        end
      end
    end
  end
  local nb = #owner
  if nb == 0 then return nil, owner, count end
  local flat = x:reshape(B * L * T)
  local i0 = wb.tensor(lo_idx, "i64")
  local wt = wb.tensor(w)
  local v0, v1 = flat:index_select(1, i0), flat:index_select(1, i0 + 1)
  local beats = (v0 + (v1 - v0) * wt):reshape(nb, L, n)
  return beats, owner, count
end

-- (nb, L, n) beats -> (B, L*n) per-row means and a (B) table of counts, via one matmul
local function row_means(beats, owner, count, B)
  local nb = #owner
  local m = {}
  for r = 1, B do
    m[r] = {}
    for i = 1, nb do m[r][i] = 0 end
  end
  for i, r in ipairs(owner) do m[r][i] = 1 / count[r] end
  return wb.tensor(m):matmul(beats:reshape(nb, beats:size(2) * beats:size(3)))
end

-- the phase (0-based sample of the first R peak) of a regular beat train with
-- period span that best matches the template: cross-correlation, no gradient
local function grid_peaks(x, tmpl, rr, fs, n)
  local B, L, T = x:size(1), x:size(2), x:size(3)
  local out = {}
  wb.no_grad(function()
    for r = 1, B do
      local span = rr[r] * fs
      local m = math.floor(span + 0.5)
      if m < 2 or m > T then out[r] = {} else
        -- the template on the signal's grid (m samples, R at m/2)
        local pos = {}
        for j = 0, m - 1 do pos[j + 1] = j * n / m end
        local tr = tmpl:select(1, r) -- (L, n)
        local tv = tr:totable()
        local w = {}
        for l = 0, L - 1 do
          for j = 1, m do
            local p = pos[j]
            local f = math.floor(p)
            local g = p - f
            local a, b = tv[l * n + f + 1], tv[l * n + math.min(f + 1, n - 1) + 1]
            w[#w + 1] = a + (b - a) * g
          end
        end
        local wt = wb.tensor(w):view(1, L, m)
        local xr = x:select(1, r):detach():contiguous():view(1, L, T)
        local c = wb.conv1d(xr, wt, nil):reshape(T - m + 1):totable() -- c[o] = Σ x[o + j] w[j]
        -- score each phase by summing over all whole windows it gives
        local best, bo = -math.huge, 0
        for o = 0, m - 1 do
          local s = 0
          local q = o
          while math.floor(q + 0.5) <= T - m do s = s + c[math.floor(q + 0.5) + 1]; q = q + span end
          if s > best then best, bo = s, o end
        end
        local list, p = {}, bo + span / 2
        while p < T do list[#list + 1] = p; p = p + span end
        out[r] = list
      end
    end
  end)
  return out
end

local function check_pair(x, tmpl, op)
  if not wb.is_tensor(x) or x:dim() ~= 3 then
    error(op .. ": x0 must be (B, leads, samples), got " .. (wb.is_tensor(x) and shape(x) or type(x)), 3)
  end
  if not wb.is_tensor(tmpl) or tmpl:dim() ~= 3 or tmpl:size(1) ~= x:size(1) or tmpl:size(2) ~= x:size(2) then
    error(op .. ": templates must be (" .. x:size(1) .. ", " .. x:size(2) .. ", beat_len) for x0 " .. shape(x) ..
      ", got " .. (wb.is_tensor(tmpl) and shape(tmpl) or type(tmpl)), 3)
  end
end

-- rr as a Lua table of B positive seconds
local function rr_table(rr, B, op)
  local t = rr
  if wb.is_tensor(rr) then
    t = rr:detach():totable()
  elseif type(rr) == "number" then
    t = {}
    for i = 1, B do t[i] = rr end
  end
  if type(t) ~= "table" or #t ~= B then error(op .. ": rr must be a number or " .. B .. " RR intervals (s)", 3) end
  for i = 1, B do
    if not (type(t[i]) == "number" and t[i] > 0 and t[i] < math.huge) then
      error(op .. ": RR intervals must be finite and > 0 s, got " .. tostring(t[i]), 3)
    end
  end
  return t
end

------------------------------------------------------------------ the simulator's ECG

-- templates (B, L, n) laid at R peaks: the simulator's ECG (B, L, T) at fs.
-- rr (B) s is each template's span (R at sample n/2, as the synthesiser's
-- grid); peaks: a list of B lists of 0-based R samples. A sample belongs to
-- its nearest R peak (the later one at a tie, so a template spans [R - n/2,
-- R + n/2) samples when RR·fs = n) and reads the template at its time from that peak (the
-- waves keep their durations when the RR changes, as core/sim.c defines
-- them); beyond the template's span it reads the template's edge. Linear
-- interpolation through index_select, so the result is differentiable in
-- tmpl. A row without peaks reads the template's first sample throughout.
function M.beat_train(tmpl, rr, peaks, fs, T)
  local op = "sediff.beat_train"
  if not wb.is_tensor(tmpl) or tmpl:dim() ~= 3 then
    error(op .. ": templates must be (B, leads, n), got " .. (wb.is_tensor(tmpl) and shape(tmpl) or type(tmpl)), 2)
  end
  local B, L, n = tmpl:size(1), tmpl:size(2), tmpl:size(3)
  if n < 2 then error(op .. ": templates need at least 2 samples, got " .. n, 2) end
  if type(peaks) ~= "table" or #peaks ~= B then error(op .. ": peaks must be a list of " .. B .. " lists of R samples", 2) end
  if type(fs) ~= "number" or fs <= 0 or type(T) ~= "number" or T < 1 then
    error(op .. ": fs (Hz) and T (samples) must be positive numbers", 2)
  end
  local rrt = rr_table(rr, B, op)
  local lo, w = {}, {}
  for r = 1, B do
    local p, k = peaks_of(peaks, r) or {}, 1
    local per = n / (rrt[r] * fs) -- template samples per signal sample
    for t = 0, T - 1 do
      local j = 0
      if #p > 0 then
        while p[k + 1] and t - p[k] >= p[k + 1] - t do k = k + 1 end
        j = math.min(math.max(n / 2 + (t - p[k]) * per, 0), n - 1)
      end
      local f = math.min(math.floor(j), n - 2)
      lo[#lo + 1], w[#w + 1] = (r - 1) * L * n + f, j - f
    end
  end
  local i0 = (wb.tensor(lo, "i64"):view(B, 1, T) + wb.arange(0, L, 1, "i64"):view(1, L, 1) * n):reshape(B * L * T)
  local wt = wb.tensor(w):view(B, 1, T)
  local flat = tmpl:contiguous():reshape(B * L * n)
  local v0, v1 = flat:index_select(1, i0):view(B, L, T), flat:index_select(1, i0 + 1):view(B, L, T)
  return v0 + (v1 - v0) * wt
end

-- R peaks of a rhythm: 0-based samples on T samples at fs, with mean RR rr
-- (s) and beat-to-beat variability cv (the RR intervals' coefficient of
-- variation, independent draws: rr (1 + cv N(0, 1)), kept within
-- [0.4, 1.6] rr), from a uniformly drawn phase. Uses the wb RNG.
function M.rhythm(rr, cv, fs, T)
  for _, a in ipairs { { "rr", rr }, { "fs", fs }, { "T", T } } do
    if type(a[2]) ~= "number" or not (a[2] > 0 and a[2] < math.huge) then
      error("sediff.rhythm: " .. a[1] .. " must be a positive number, got " .. tostring(a[2]), 2)
    end
  end
  if type(cv) ~= "number" or not (cv >= 0 and cv < math.huge) then
    error("sediff.rhythm: cv must be a number >= 0, got " .. tostring(cv), 2)
  end
  local span = rr * fs
  local d = wb.randn(math.ceil(T / (0.4 * span)) + 2):totable()
  local out, p, i = {}, wb.rand(1):item() * span, 1
  while p < T do
    out[#out + 1] = math.floor(p + 0.5)
    p = p + span * math.min(math.max(1 + cv * d[i], 0.4), 1.6)
    i = i + 1
  end
  return out
end

------------------------------------------------------------------ templates of real records

-- x (N, L, T) at fs -> templates (N, L, n) (the mean beat around R peaks) and
-- rr (N) (median RR, s). o.peaks: as consistency_loss's; default wb.signal.rpeaks.
-- Records with fewer than 2 peaks or no whole window get NaN RR and zeros,
-- and valid[i] = false.
function M.record_templates(x, fs, n, o)
  o = o or {}
  local op = "sediff.record_templates"
  if not wb.is_tensor(x) or x:dim() ~= 3 then error(op .. ": x must be (N, leads, samples), got " .. (wb.is_tensor(x) and shape(x) or type(x)), 2) end
  if type(n) ~= "number" or n < 2 or n % 2 ~= 0 then error(op .. ": n must be an even number of samples, got " .. tostring(n), 2) end
  local N, L = x:size(1), x:size(2)
  local peaks, rr, valid = {}, {}, {}
  for r = 1, N do
    local p = o.peaks and peaks_of(o.peaks, r) or wb.signal.rpeaks(x:select(1, r):contiguous(), fs):totable()
    local d = {}
    for i = 2, #p do d[#d + 1] = p[i] - p[i - 1] end
    table.sort(d)
    if #d >= 1 then
      rr[r] = (#d % 2 == 1 and d[(#d + 1) / 2] or (d[#d / 2] + d[#d / 2 + 1]) / 2) / fs
      peaks[r] = p
    else
      rr[r], peaks[r] = 1, {}
    end
  end
  local tm = wb.zeros(N, L, n)
  wb.no_grad(function()
    -- in chunks, to bound the index buffers
    local CH = 64
    for s = 1, N, CH do
      local e = math.min(N, s + CH - 1)
      local sp, sr = {}, {}
      for r = s, e do sp[#sp + 1], sr[#sr + 1] = peaks[r], rr[r] end
      local beats, owner, count = windows(x:narrow(1, s, e - s + 1):contiguous(), sp, sr, fs, n)
      if beats then
        tm:narrow(1, s, e - s + 1):copy_(row_means(beats, owner, count, e - s + 1):reshape(e - s + 1, L, n))
      end
      for i = 1, e - s + 1 do valid[s + i - 1] = count[i] > 0 end
    end
  end)
  for r = 1, N do if not valid[r] then rr[r] = 0 / 0 end end
  return tm, wb.tensor(rr), valid
end

------------------------------------------------------------------ the consistency loss

-- x0_pred (B, L, T), templates (B, L, n), rr (B) s (tensor, list or number), fs Hz
-- o = {peaks =, align = "grid" | "detect", mode = "mean" | "each"} -> scalar tensor
function M.consistency_loss(x0, tmpl, rr, fs, o)
  o = o or {}
  local op = "sediff.consistency_loss"
  for k in pairs(o) do
    if k ~= "peaks" and k ~= "align" and k ~= "mode" then error(op .. ": unknown option '" .. tostring(k) .. "'", 2) end
  end
  check_pair(x0, tmpl, op)
  if type(fs) ~= "number" or fs <= 0 then error(op .. ": fs must be a sampling rate in Hz, got " .. tostring(fs), 2) end
  local B, L, n = x0:size(1), x0:size(2), tmpl:size(3)
  local rrt = rr_table(rr, B, op)
  local mode = o.mode or "mean"
  if mode ~= "mean" and mode ~= "each" then error(op .. ": mode must be 'mean' or 'each', got '" .. tostring(mode) .. "'", 2) end
  local peaks
  if o.peaks then
    peaks = {}
    for r = 1, B do peaks[r] = peaks_of(o.peaks, r) or {} end
  elseif (o.align or "grid") == "grid" then
    peaks = grid_peaks(x0, tmpl:detach(), rrt, fs, n)
  elseif o.align == "detect" then
    peaks = {}
    for r = 1, B do peaks[r] = wb.signal.rpeaks(x0:select(1, r):detach():contiguous(), fs):totable() end
  else
    error(op .. ": align must be 'grid' or 'detect', got '" .. tostring(o.align) .. "'", 2)
  end
  local beats, owner, count = windows(x0:contiguous(), peaks, rrt, fs, n)
  if not beats then return (x0 * 0):sum() end
  local rows, mask = 0, {}
  for r = 1, B do
    mask[r] = count[r] > 0 and 1 or 0
    rows = rows + mask[r]
  end
  local tflat = tmpl:reshape(B, L * n)
  if mode == "mean" then
    local d = row_means(beats, owner, count, B) - tflat -- (B, L*n)
    return ((d * d):mean(2) * wb.tensor(mask)):sum() / rows
  end
  -- each beat against its row's template, averaged per row, then over rows
  local own = {}
  for i, r in ipairs(owner) do own[i] = r - 1 end
  local d = beats:reshape(#owner, L * n) - tflat:index_select(1, wb.tensor(own, "i64"))
  local per_beat = (d * d):mean(2) -- (nb)
  local w = {}
  for i, r in ipairs(owner) do w[i] = 1 / (count[r] * rows) end
  return (per_beat * wb.tensor(w)):sum()
end

------------------------------------------------------------------ the SE-Diff condition module

local SEDiff = nn.class("SEDiff")
M.SEDiff = SEDiff

function SEDiff:__init(cfg)
  cfg = M.config(cfg)
  self.cfg = cfg
  self.encoder = ConditionEncoder(cfg)
  if cfg.prior then self.decoder = BeatDecoder(cfg) end
end

-- the retrieval bank: (N, Dt) embeddings of the training reports
function SEDiff:set_bank(emb)
  rawset(self, "retriever", M.retriever(emb))
end

function SEDiff:num_tokens() return self.encoder:num_tokens() end

-- req = {text, age, sex, hr, [retrieved], [exclude]} -> (B, S, Dc).
-- With retrieval on and no req.retrieved, the bank's k nearest reports to
-- req.text (req.exclude: the requests' own bank rows, in training).
function SEDiff:condition(req)
  if self.cfg.retrieval and req.retrieved == nil then
    if not self.retriever then error("sediff.condition: retrieval is on but no bank is set (set_bank) and no retrieved given", 2) end
    local r = {}
    for k, v in pairs(req) do r[k] = v end
    r.retrieved = self.retriever:retrieve(req.text, self.cfg.k, { exclude = req.exclude })
    req = r
  end
  return self.encoder(req)
end

-- cond (B, S, Dc), hr (B) -> templates (B, L, beat_len), rr (B), params
function SEDiff:templates(cond, hr)
  if not self.decoder then error("sediff.templates: the simulator prior is off (prior = false)", 2) end
  return self.decoder(cond, hr)
end

-- MSE of templates tm (B, L, n) to target (B, L, n); valid (optional list of
-- booleans) leaves records without a target template out
local function template_mse(tm, target, valid)
  if not wb.is_tensor(target) or target:dim() ~= 3 or target:size(1) ~= tm:size(1) or target:size(2) ~= tm:size(2)
    or target:size(3) ~= tm:size(3) then
    error("sediff.prior_loss: target templates must be " .. shape(tm) .. ", got " ..
      (wb.is_tensor(target) and shape(target) or type(target)), 3)
  end
  if not valid then return wb.mse_loss(tm, target) end
  local m, n = {}, 0
  for i = 1, tm:size(1) do
    m[i] = valid[i] and 1 or 0
    n = n + m[i]
  end
  if n == 0 then return (tm * 0):sum() end
  local d = tm - target
  return ((d * d):mean({ 2, 3 }) * wb.tensor(m)):sum() / n
end

-- the decoder's supervised loss: MSE of its templates to target templates
-- (B, L, n) of the records (record_templates)
function SEDiff:prior_loss(cond, hr, target, valid)
  return template_mse(self:templates(cond, hr), target, valid)
end

-- the SE-Diff prior's training terms for one batch: lambda * consistency(x0_pred,
-- templates) + the decoder's supervised loss to target templates (if given).
-- Returns the total (0 with the prior off) and a table of its parts.
function SEDiff:prior_terms(cond, hr, x0_pred, o)
  o = o or {}
  if not self.decoder then return nil, {} end
  local tm, rr = self:templates(cond, hr)
  local parts = {}
  local total
  if x0_pred then
    -- the templates are the target here: the prior pulls the generation, the
    -- generation does not pull the prior
    parts.consistency = M.consistency_loss(x0_pred, tm:detach(), rr:detach(), o.fs or self.cfg.fs,
      { peaks = o.peaks, align = o.align, mode = o.mode })
    total = parts.consistency * self.cfg.lambda
  end
  if o.target then
    parts.prior = template_mse(tm, o.target, o.valid)
    total = total and total + parts.prior or parts.prior
  end
  return total, parts, tm, rr
end

return M
