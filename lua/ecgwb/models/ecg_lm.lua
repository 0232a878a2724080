--[[ ecgwb.models.ecg_lm: an ECG-language model (LLaVA / anyECG-chat style),
the interpretation model of issue 5 (reports, retrieval-augmented reports,
question answering) and stage 1 of issue 6's unified model.

    local L = require "ecgwb.models.ecg_lm"
    local tok = L.train_tokenizer(texts, 1000)               -- byte BPE on reports (+ prompts)
    local m = L.EcgLM({ encoder = "tiny", lm = "tiny", prefix_tokens = 8 }, tok)
    local ev = L.evidence(x, 250)           -- "Measured: HR 72 bpm, PR 160 ms, ..." (x (12, L) or (B, 12, L))
    local loss = m:loss { x = x, prompts = { L.prompt { evidence = ev } , ... }, targets = reports }
    local texts = m:generate(x, { prompt = prompts, greedy = true, max_new_tokens = 96 })
    m:save("runs/report/model"); m = L.load("runs/report/model")

Architecture. The sequence the decoder sees, for one record:

    [ P ECG prefix tokens ] <bos> prompt text   target text <eos>
      |--- from the ECG ---||--- no loss ---||-- LM loss --|

  1. ECG encoder (ecgwb.models.ecg_encoder, objective "none"): x (B, 12, L)
     mV, optional lead mask (B, 12) -> frames (B, T, De) and pooled (B, De).
  2. Adaptive average pooling of the T frames to P tokens (as PyTorch's
     adaptive_avg_pool1d: token p averages frames floor(pT/P) ..
     ceil((p+1)T/P) - 1), so any record length gives P tokens.
  3. Projector into the LM's width Dl: "mlp" (LLaVA-1.5: Linear(De, Dl),
     GELU, Linear(Dl, Dl)) or "linear" (LLaVA: one Linear(De, Dl)).
  4. GPT decoder (ecgwb.models.gpt) with the projected tokens as its
     `prefix`; the prompt and the target are byte-BPE tokens
     (wb.tokenizer, specials <pad> <bos> <eos> <ecg> <gen>).

Loss: next-token cross entropy on the target tokens and the closing <eos>
only (the mean over them); the prefix, <bos>, the prompt and the padding
carry no loss, and the LM head is computed at the target positions only. Batches
are right-padded for training (pads are masked out of attention and take no
position, see gpt.lua) and left-padded for generation.

Evidence-based prompting: L.evidence(x, fs) measures the record with
ecgwb's own signal processing (wb.signal.rpeaks, wb.signal.rhythm,
wb.signal.delineate) and writes the numbers as text the report can cite:
"Measured: HR 61 bpm, RR variability 7%, PR 179 ms, QRS 102 ms, QT 415 ms,
QTc 417 ms, axis 38 deg." A value outside its reference range (M.ranges: HR
60-100 bpm, RR variability <= 10%, PR <= 200 ms, QRS < 120 ms, QTc <= 460
ms, axis -30..90 deg, limb-lead QRS amplitude >= 0.5 mV, measured around
the R peaks) is flagged, as machine statements do: "HR 45 bpm
(low)", "PR 236 ms (long)", "axis -45 deg (left)". A value the delineator
cannot give (NaN, e.g. the PR interval without P waves) is written "PR n/a". L.prompt builds the text
prompt from the evidence, retrieved reports (RAG) and a question (QA).

Optional auxiliary head: cfg.n_labels > 0 adds label_head Linear(De, K) on
the pooled encoder output; loss() then adds cfg.aux_weight times the mean
binary cross entropy against batch.labels (B, K) when the batch has them
(a classification-guided encoder, used by recipes/report.lua).

Save/load: a directory with model.h5 (the state dict, h5py-readable),
config.json and tokenizer.bpe.
]]
local wb = require "ecgwb"
local nn = wb.nn
local gpt = require "ecgwb.models.gpt"
local E = require "ecgwb.models.ecg_encoder"

local M = {}

M.defaults = {
  encoder = "tiny",        -- an ecg_encoder config name or table (objective is forced to "none")
  lm = "tiny",             -- a gpt config name
  lm_over = { block_size = 320 }, -- overrides of the gpt config (vocab_size comes from the tokenizer)
  prefix_tokens = 8,       -- P
  global_token = false,    -- put the pooled embedding's projection before the P tokens
  projector = "mlp",       -- "mlp" | "linear"
  n_labels = 0, aux_weight = 0,
  fs = 250,                -- the sampling rate the model is trained at (informational; evidence uses it)
}
local known = {}
for k in pairs(M.defaults) do known[k] = true end

local function full_config(cfg)
  local c = {}
  for k, v in pairs(M.defaults) do c[k] = v end
  for k, v in pairs(cfg or {}) do
    if not known[k] then error("EcgLM: unknown config key '" .. tostring(k) .. "'", 4) end
    c[k] = v
  end
  if c.projector ~= "mlp" and c.projector ~= "linear" then
    error("EcgLM: projector must be 'mlp' or 'linear', got " .. tostring(c.projector), 4)
  end
  if type(c.prefix_tokens) ~= "number" or c.prefix_tokens < 1 then
    error("EcgLM: prefix_tokens must be a positive number, got " .. tostring(c.prefix_tokens), 4)
  end
  return c
end

------------------------------------------------------------------ tokenizer
-- a byte BPE with the default specials, trained on texts (reports, prompts)
function M.train_tokenizer(texts, vocab_size)
  return wb.tokenizer.train(texts, { vocab_size = vocab_size or 1000 })
end

------------------------------------------------------------------ evidence
local function fmt(x, unit)
  if x == nil or x ~= x or x == math.huge or x == -math.huge then return "n/a" end
  return string.format("%.0f%s", x, unit or "")
end

-- reference ranges of the evidence flags (adult resting ECG, as machine
-- statements use them): a value outside gets "(low)", "(high)", ...
M.ranges = { hr = { 60, 100 }, rr_var = 10, pr = 200, qrs = 120, qtc = 460, axis = { -30, 90 }, limb_mv = 0.5 }

local function flag(x, lo, hi, below, above)
  if x == nil or x ~= x then return "" end
  if lo and x < lo then return " (" .. below .. ")" end
  if hi and x > hi then return " (" .. above .. ")" end
  return ""
end

-- the QRS amplitude of the limb leads (mV): per lead (I, II, III, aVR, aVL,
-- aVF) the median over beats of the peak-to-peak within 60 ms of the R
-- peak, then the largest over the leads
local function limb_qrs_mv(x, peaks, fs)
  local L, pk = x:size(2), peaks:totable()
  if #pk == 0 then return 0 / 0 end
  local v, w, best = x:narrow(1, 1, 6):contiguous():totable(), math.floor(0.06 * fs + 0.5), 0
  for lead = 0, 5 do
    local amps = {}
    for _, r in ipairs(pk) do
      local lo, hi = math.huge, -math.huge
      for t = math.max(0, r - w), math.min(L - 1, r + w) do
        local y = v[lead * L + t + 1]
        if y < lo then lo = y end
        if y > hi then hi = y end
      end
      amps[#amps + 1] = hi - lo
    end
    table.sort(amps)
    best = math.max(best, amps[math.floor((#amps + 1) / 2)])
  end
  return best
end

-- the measurement sentence of one record x (12, L) at fs Hz
local function evidence1(x, fs)
  local ok, m = pcall(wb.signal.delineate, x, fs)
  local peaks, hr = wb.signal.rpeaks(x, fs)
  local limb = limb_qrs_mv(x, peaks, fs)
  local rv = 0 / 0
  if peaks:numel() >= 3 then rv = wb.signal.rhythm(peaks, fs).cv * 100 end
  if not ok then m = {} end
  if m.hr and m.hr == m.hr then hr = m.hr end
  local R = M.ranges
  local limb_s = limb == limb and string.format("%.1f", limb) or "n/a"
  return string.format("Measured: HR %s bpm%s, RR variability %s%s, PR %s ms%s, QRS %s ms%s, QT %s ms, QTc %s ms%s, axis %s deg%s, limb QRS %s mV%s.",
    fmt(hr), flag(hr, R.hr[1], R.hr[2], "low", "high"), fmt(rv, "%"), flag(rv, nil, R.rr_var, "", "irregular"),
    fmt(m.pr), flag(m.pr, nil, R.pr, "", "long"), fmt(m.qrs), flag(m.qrs, nil, R.qrs - 1e-9, "", "wide"),
    fmt(m.qt), fmt(m.qtc_bazett), flag(m.qtc_bazett, nil, R.qtc, "", "long"),
    fmt(m.axis), flag(m.axis, R.axis[1], R.axis[2], "left", "right"), limb_s, flag(limb, R.limb_mv, nil, "low", ""))
end

-- L.evidence(x, fs): x (12, L) -> string; x (B, 12, L) -> list of B strings
function M.evidence(x, fs)
  if not wb.is_tensor(x) or (x:dim() ~= 2 and x:dim() ~= 3) or x:size(-2) ~= 12 then
    error("ecg_lm.evidence: x must be (12, L) or (B, 12, L), got " .. (wb.is_tensor(x) and x:describe() or type(x)), 2)
  end
  if type(fs) ~= "number" or fs <= 0 then error("ecg_lm.evidence: fs must be a positive number", 2) end
  if x:dim() == 2 then return evidence1(x:contiguous(), fs) end
  local out = {}
  for b = 1, x:size(1) do out[b] = evidence1(x[b]:contiguous(), fs) end
  return out
end

-- L.evidence_cached(x, fs, file): the evidence list of x (B, 12, L), read
-- from file (one line per record) when it holds B lines, else computed and
-- written there (recipes cache a corpus split's measurements this way)
function M.evidence_cached(x, fs, file)
  local B = x:size(1)
  local f = io.open(file, "r")
  if f then
    local lines = {}
    for l in f:lines() do lines[#lines + 1] = l end
    f:close()
    if #lines == B then return lines end
  end
  local ev = M.evidence(x, fs)
  local dir = file:match("^(.*)/[^/]*$")
  if dir then os.execute("mkdir -p '" .. dir:gsub("'", "'\\''") .. "'") end
  f = io.open(file, "w")
  if f then
    f:write(table.concat(ev, "\n"), "\n")
    f:close()
  end
  return ev
end

-- the text prompt: o.evidence (string), o.retrieved (list of report texts,
-- RAG, one "Similar ECG i:" line each before the evidence), o.similar (one
-- line of retrieved findings, e.g. M.vote_line's, after the evidence, next
-- to where the report starts; before it with o.similar_first), o.question
-- (QA). The target (report or answer) follows it.
function M.prompt(o)
  o = o or {}
  local parts = {}
  if o.retrieved then
    for i, r in ipairs(o.retrieved) do parts[#parts + 1] = string.format("Similar ECG %d: %s", i, r) end
  end
  if o.similar and o.similar_first then parts[#parts + 1] = o.similar end
  if o.evidence then parts[#parts + 1] = o.evidence end
  if o.similar and not o.similar_first then parts[#parts + 1] = o.similar end
  if o.question then
    parts[#parts + 1] = "Question: " .. o.question .. " Answer:"
  else
    parts[#parts + 1] = "Report:"
  end
  return table.concat(parts, "\n") .. " "
end

-- retrieved findings as short label phrases (RAG): one phrase per finding
-- code of wb.sim (the report's wording without its numbers)
M.finding_phrases = {
  NORM = "normal ECG", SR = "sinus rhythm", SBRAD = "sinus bradycardia", STACH = "sinus tachycardia",
  AFIB = "atrial fibrillation", AFLT = "atrial flutter", ["1AVB"] = "first-degree AV block",
  CLBBB = "left bundle branch block", CRBBB = "right bundle branch block", PVC = "ventricular premature beats",
  STE_ANT = "anterior ST elevation", STE_INF = "inferior ST elevation", STE_LAT = "lateral ST elevation",
  STD_ = "ST depression", INVT = "T-wave inversion", LVH = "left ventricular hypertrophy", LNGQT = "long QT",
  LAD = "left axis deviation", RAD = "right axis deviation", LVOLT = "low QRS voltage",
}
local vote_order = { "NORM", "SR", "SBRAD", "STACH", "AFIB", "AFLT", "1AVB", "CLBBB", "CRBBB", "PVC", "STE_ANT", "STE_INF",
  "STE_LAT", "STD_", "INVT", "LVH", "LNGQT", "LAD", "RAD", "LVOLT" }

-- M.vote_line(lists) -> "Similar ECGs: sinus rhythm 3/3, left axis deviation 2/3."
-- lists: the finding codes of each of the k retrieved records (as
-- wb.sim.parse_report gives them). Every finding any of them has, in the
-- order reports state them, with how many of the k have it (the LM learns
-- how far to trust a finding from its count). SR implied by SBRAD/STACH is
-- dropped, as the reports do.
function M.vote_line(lists)
  if type(lists) ~= "table" or #lists == 0 then error("ecg_lm.vote_line: expected a non-empty list of code lists", 2) end
  local count = {}
  for _, l in ipairs(lists) do
    if type(l) ~= "table" then error("ecg_lm.vote_line: each retrieved record needs a list of codes, got " .. type(l), 2) end
    local has = {}
    for _, c in ipairs(l) do
      if not M.finding_phrases[c] then error("ecg_lm.vote_line: unknown finding code '" .. tostring(c) .. "'", 2) end
      has[c] = true
    end
    if has.SBRAD or has.STACH then has.SR = nil end
    for c in pairs(has) do count[c] = (count[c] or 0) + 1 end
  end
  local parts = {}
  for _, c in ipairs(vote_order) do
    if count[c] then parts[#parts + 1] = string.format("%s %d/%d", M.finding_phrases[c], count[c], #lists) end
  end
  return "Similar ECGs: " .. (#parts > 0 and table.concat(parts, ", ") or "no findings") .. "."
end

------------------------------------------------------------------ the model
local EcgLM = nn.class("EcgLM")
M.EcgLM = EcgLM

-- EcgLM(cfg, tok): cfg as M.defaults; tok a wb.tokenizer (its vocabulary
-- sizes the LM; it must have <pad>, <bos> and <eos>)
function EcgLM:__init(cfg, tok)
  if type(tok) ~= "table" or type(tok.vocab_size) ~= "function" then
    error("EcgLM: needs a tokenizer, e.g. EcgLM(cfg, ecg_lm.train_tokenizer(reports))", 3)
  end
  local c = full_config(cfg)
  self.cfg = c
  rawset(self, "tok", tok)
  self.pad_id, self.bos_id, self.eos_id = tok:special_id("<pad>"), tok:special_id("<bos>"), tok:special_id("<eos>")
  local ec = type(c.encoder) == "table" and c.encoder or { base = c.encoder }
  local ecopy = {}
  for k, v in pairs(ec) do ecopy[k] = v end
  ecopy.objective = "none"
  self.encoder = E.EcgEncoder(ecopy)
  local lc = {}
  for k, v in pairs(c.lm_over or {}) do lc[k] = v end
  lc.vocab_size = tok:vocab_size()
  self.lm = gpt.GPT(gpt.config(c.lm, lc))
  local De, Dl = self.encoder.cfg.d_model, self.lm.cfg.n_embd
  if c.projector == "mlp" then
    self.projector = nn.Sequential(nn.Linear(De, Dl), nn.GELU(), nn.Linear(Dl, Dl))
  else
    self.projector = nn.Linear(De, Dl)
  end
  if c.n_labels > 0 then self.label_head = nn.Linear(De, c.n_labels) end
end

function EcgLM:extra_repr()
  return string.format("prefix_tokens=%d, projector=%s", self.cfg.prefix_tokens, self.cfg.projector)
end

-- the (P, T) adaptive-average-pooling matrix (PyTorch's bin edges)
local pool_cache = {}
function M.pool_matrix(T, P)
  local key = T .. "x" .. P
  if pool_cache[key] then return pool_cache[key] end
  local rows = {}
  for p = 0, P - 1 do
    local a, b = math.floor(p * T / P), math.ceil((p + 1) * T / P)
    local r = {}
    for t = 0, T - 1 do r[t + 1] = (t >= a and t < b) and 1 / (b - a) or 0 end
    rows[p + 1] = r
  end
  local A = wb.tensor(rows)
  pool_cache[key] = A
  return A
end

-- m:features(x, lead_mask) -> { tokens (B, P, De) the frames pooled to P,
-- pooled (B, De) the mean of all frames, frames (B, T, De) }: the encoder side
function EcgLM:features(x, lead_mask)
  if not wb.is_tensor(x) or x:dim() ~= 3 then
    error("EcgLM: x must be (B, 12, L), got " .. (wb.is_tensor(x) and x:describe() or type(x)), 3)
  end
  local out = self.encoder(x, lead_mask)
  local T, P = out.frames:size(2), self.cfg.prefix_tokens
  if T < P then
    error(string.format("EcgLM: the record gives %d frames, fewer than the %d prefix tokens (x %s)", T, P, x:describe()), 3)
  end
  local tokens = wb.linear(out.frames:transpose(2, 3), M.pool_matrix(T, P)):transpose(2, 3) -- (B, P, De)
  return { tokens = tokens, pooled = out.pooled, frames = out.frames }
end

-- m:project(f) -> prefix (B, P', Dl): the projector on the P pooled tokens,
-- after the pooled embedding's token when cfg.global_token (P' = P + 1)
function EcgLM:project(f)
  local t = f.tokens
  if self.cfg.global_token then t = wb.cat({ f.pooled:unsqueeze(2), t }, 2) end -- (B, P + 1, De)
  return self.projector(t)
end

-- m:encode(x, lead_mask) -> { prefix (B, P', Dl), pooled (B, De), tokens, frames }
function EcgLM:encode(x, lead_mask)
  local f = self:features(x, lead_mask)
  f.prefix = self:project(f)
  return f
end

-- token id lists for a batch: ids (B, S) i64 right-padded, mask (B, S) bool,
-- labels (B, S) i64 (-100 on <bos>, the prompt and pads)
function EcgLM:batch_ids(prompts, targets)
  local B = #prompts
  if #targets ~= B then error(string.format("EcgLM: %d prompts for %d targets", B, #targets), 3) end
  local rows, labs, S = {}, {}, 0
  for b = 1, B do
    local p = self.tok:encode(prompts[b], { bos = true }):totable()
    local t = self.tok:encode(targets[b], { eos = true }):totable()
    local r, l = {}, {}
    for _, v in ipairs(p) do r[#r + 1] = v; l[#l + 1] = -100 end
    for _, v in ipairs(t) do r[#r + 1] = v; l[#l + 1] = v end
    rows[b], labs[b] = r, l
    S = math.max(S, #r)
  end
  local ids, mask, labels = {}, {}, {}
  for b = 1, B do
    local r, l, mrow = rows[b], labs[b], {}
    for j = 1, S do
      mrow[j] = j <= #r and 1 or 0
      if j > #r then r[j], l[j] = self.pad_id, -100 end
    end
    ids[b], mask[b], labels[b] = r, mrow, l
  end
  return wb.tensor(ids, "i64"), wb.tensor(mask, "i64"):ne(0), wb.tensor(labels, "i64")
end

-- m:loss { x = (B, 12, L), prompts = {B strings}, targets = {B strings},
--          lead_mask = (B, 12) or nil, labels = (B, K) f32 or nil } -> scalar
-- (the LM loss over target tokens; plus aux_weight * BCE when configured).
-- features = { tokens (B, P, De), pooled (B, De) } may replace x (a frozen
-- encoder's precomputed output; no auxiliary loss then).
function EcgLM:loss(batch)
  if type(batch) ~= "table" or not (batch.x or batch.features) or not batch.prompts or not batch.targets then
    error("EcgLM:loss: needs a batch { x = (B, 12, L), prompts = {...}, targets = {...} }", 2)
  end
  local enc
  if batch.features then -- precomputed encoder side (a frozen encoder), see fit
    enc = { tokens = batch.features.tokens, pooled = batch.features.pooled }
    enc.prefix = self:project(enc)
  else
    enc = self:encode(batch.x, batch.lead_mask)
  end
  local B = enc.prefix:size(1)
  if #batch.prompts ~= B then error(string.format("EcgLM:loss: %d records, %d prompts", B, #batch.prompts), 2) end
  local ids, mask, labels = self:batch_ids(batch.prompts, batch.targets)
  -- hidden state P + j - 1 predicts token j; the head runs on the target positions only
  local h, P = self.lm:hidden_states(ids, { prefix = enc.prefix, mask = mask }) -- (B, P + S, D)
  local S, D = ids:size(2), h:size(3)
  local lab, rows, tgt = labels:totable(), {}, {}
  for b = 1, B do
    for j = 1, S do
      local y = lab[(b - 1) * S + j]
      if y ~= -100 then
        rows[#rows + 1] = (b - 1) * (P + S) + P + j - 2
        tgt[#tgt + 1] = y
      end
    end
  end
  local hs = h:reshape(B * (P + S), D):index_select(1, wb.tensor(rows, "i64")) -- (n, D)
  local loss = wb.cross_entropy(self.lm:head(hs), wb.tensor(tgt, "i64"))
  if self.label_head and self.cfg.aux_weight > 0 and batch.labels and not batch.features then
    local aux = wb.bce_with_logits(self.label_head(enc.pooled), batch.labels)
    loss = loss + aux * self.cfg.aux_weight
  end
  return loss
end

-- m:generate(x, o) -> list of B strings. o: prompt (a string for every
-- record, or a list of B), lead_mask, max_new_tokens (96), greedy (true
-- unless temperature/top_k/top_p are given), temperature, top_k, top_p,
-- seed, batch (records per generate call, 64)
function EcgLM:generate(x, o)
  o = o or {}
  if not wb.is_tensor(x) or x:dim() ~= 3 then
    error("EcgLM:generate: x must be (B, 12, L), got " .. (wb.is_tensor(x) and x:describe() or type(x)), 2)
  end
  local B = x:size(1)
  local prompts = o.prompt or M.prompt {}
  if type(prompts) == "string" then
    local p = prompts
    prompts = {}
    for b = 1, B do prompts[b] = p end
  end
  if #prompts ~= B then error(string.format("EcgLM:generate: %d prompts for %d records", #prompts, B), 2) end
  local greedy = o.greedy
  if greedy == nil then greedy = not (o.temperature or o.top_k or o.top_p) end
  local chunk = o.batch or 64
  local was_training = self.training
  self:eval()
  local out = {}
  local ok, err = pcall(wb.no_grad, function()
    for s = 1, B, chunk do
      local n = math.min(chunk, B - s + 1)
      local ps = {}
      for i = 1, n do ps[i] = prompts[s + i - 1] end
      local xs = x:narrow(1, s, n)
      local lm = o.lead_mask and o.lead_mask:narrow(1, s, n)
      local enc = self:encode(xs, lm)
      local ids, mask = self.tok:encode_batch(ps, { bos = true, pad_left = true })
      local new = self.lm:generate(ids, {
        prefix = enc.prefix, mask = mask, max_new_tokens = o.max_new_tokens or 96, greedy = greedy,
        temperature = o.temperature, top_k = o.top_k, top_p = o.top_p, seed = o.seed, eos_id = self.eos_id,
      })
      local W = new:size(2)
      local flat = new:totable()
      for i = 1, n do
        local row = {}
        for j = 1, W do
          local id = flat[(i - 1) * W + j]
          if id == self.eos_id then break end
          row[#row + 1] = id
        end
        out[s + i - 1] = #row > 0 and self.tok:decode(row, { skip_special = true }) or ""
      end
    end
  end)
  self:train(was_training)
  if not ok then error(err, 0) end
  return out
end

-- pooled encoder embeddings (N, De) of x, in batches, without gradients
function EcgLM:embed(x, o)
  o = o or {}
  local chunk, outs = o.batch or 128, {}
  local was_training = self.training
  self:eval()
  wb.no_grad(function()
    for s = 1, x:size(1), chunk do
      local n = math.min(chunk, x:size(1) - s + 1)
      outs[#outs + 1] = self.encoder(x:narrow(1, s, n), o.lead_mask and o.lead_mask:narrow(1, s, n)).pooled
    end
  end)
  self:train(was_training)
  return #outs == 1 and outs[1] or wb.cat(outs, 1)
end

------------------------------------------------------------------ training
-- m:fit(data, o): AdamW on m:loss over random batches.
-- data: x (N, 12, L); prompt(i) and target(i) give record i's texts (i
-- 1-based; called anew for every batch, so a recipe can vary them);
-- labels (N, K) f32 for the auxiliary head (optional).
-- o: steps, batch (32), lr (1e-3), warmup (steps/20), weight_decay (0.01),
-- clip (1), log_every (50), on_step(step, loss) (optional), freeze_encoder
-- (the encoder's features are computed once and only the projector and the
-- LM learn, as LLaVA with its frozen, pretrained vision encoder)
-- -> { losses = {per-step loss}, seconds }
function EcgLM:fit(data, o)
  o = o or {}
  local N = data.x:size(1)
  local steps, B, lr = o.steps or 500, math.min(o.batch or 32, N), o.lr or 1e-3
  local params, feats = self:parameters(), nil
  if o.freeze_encoder then -- the encoder side once, then the projector and the LM alone
    feats = self:precompute(data.x, { lead_mask = data.lead_mask })
    params = {}
    for _, p in ipairs(self.projector:parameters()) do params[#params + 1] = p end
    for _, p in ipairs(self.lm:parameters()) do params[#params + 1] = p end
  end
  local opt = wb.optim.AdamW(params, { lr = lr, weight_decay = o.weight_decay or 0.01 })
  local sched = wb.optim.warmup_cosine { warmup = o.warmup or math.max(1, math.floor(steps / 20)), total = steps,
    base_lr = lr, min_lr = lr * 0.05 }
  local perm, pos = wb.randperm(N):totable(), 1
  local losses, t0 = {}, wb.now()
  self:train()
  for step = 1, steps do
    if pos + B - 1 > N then perm, pos = wb.randperm(N):totable(), 1 end
    local rows, prompts, targets = {}, {}, {}
    for j = 1, B do
      local i = perm[pos + j - 1] + 1
      rows[j], prompts[j], targets[j] = i - 1, data.prompt(i), data.target(i)
    end
    pos = pos + B
    local idx = wb.tensor(rows, "i64")
    local batch = { prompts = prompts, targets = targets }
    if feats then
      batch.features = { tokens = feats.tokens:index_select(1, idx), pooled = feats.pooled:index_select(1, idx) }
    else
      batch.x = data.x:index_select(1, idx)
      batch.lead_mask = data.lead_mask and data.lead_mask:index_select(1, idx)
      batch.labels = data.labels and data.labels:index_select(1, idx)
    end
    local loss = self:loss(batch)
    opt:zero_grad()
    loss:backward()
    wb.optim.clip_grad_norm(params, o.clip or 1)
    opt:set_lr(sched(step))
    opt:step()
    losses[step] = loss:item()
    if o.on_step then o.on_step(step, losses[step]) end
    local every = o.log_every or 50
    if every > 0 and (step == 1 or step % every == 0 or step == steps) then
      print(string.format("step %4d/%d  loss %.4f  lr %.2e  %.2f s/step", step, steps, losses[step], sched(step),
        (wb.now() - t0) / step))
    end
    wb.report { step = step, total = steps, loss = losses[step] }
  end
  self:eval()
  return { losses = losses, seconds = wb.now() - t0 }
end

-- the encoder side of x (N, 12, L) without gradients, in batches:
-- { tokens (N, P, De), pooled (N, De) }
function EcgLM:precompute(x, o)
  o = o or {}
  local chunk, toks, pools = o.batch or 128, {}, {}
  local was_training = self.training
  self:eval()
  wb.no_grad(function()
    for s = 1, x:size(1), chunk do
      local n = math.min(chunk, x:size(1) - s + 1)
      local f = self:features(x:narrow(1, s, n), o.lead_mask and o.lead_mask:narrow(1, s, n))
      toks[#toks + 1], pools[#pools + 1] = f.tokens, f.pooled
    end
  end)
  self:train(was_training)
  return { tokens = #toks == 1 and toks[1] or wb.cat(toks, 1), pooled = #pools == 1 and pools[1] or wb.cat(pools, 1) }
end

-- m:fit_encoder(data, o): supervised encoder pretraining, the encoder and
-- label_head (cfg.n_labels > 0) on the multi-label BCE alone.
-- data: x (N, 12, L), labels (N, K) f32, lead_mask (optional).
-- o: steps, batch (32), lr (2e-3), weight_decay (0.01), log_every (100)
function EcgLM:fit_encoder(data, o)
  o = o or {}
  if not self.label_head then error("EcgLM:fit_encoder: needs cfg.n_labels > 0 (the label head)", 2) end
  local N = data.x:size(1)
  local steps, B, lr = o.steps or 500, math.min(o.batch or 32, N), o.lr or 2e-3
  local params = self.encoder:parameters()
  for _, p in ipairs(self.label_head:parameters()) do params[#params + 1] = p end
  local opt = wb.optim.AdamW(params, { lr = lr, weight_decay = o.weight_decay or 0.01 })
  local sched = wb.optim.warmup_cosine { warmup = math.max(1, math.floor(steps / 20)), total = steps, base_lr = lr, min_lr = lr * 0.05 }
  local perm, pos, losses, t0 = wb.randperm(N), 1, {}, wb.now()
  self:train()
  for step = 1, steps do
    if pos + B - 1 > N then perm, pos = wb.randperm(N), 1 end
    local idx = perm:narrow(1, pos, B)
    pos = pos + B
    local out = self.encoder(data.x:index_select(1, idx), data.lead_mask and data.lead_mask:index_select(1, idx))
    local loss = wb.bce_with_logits(self.label_head(out.pooled), data.labels:index_select(1, idx))
    opt:zero_grad()
    loss:backward()
    wb.optim.clip_grad_norm(params, 1)
    opt:set_lr(sched(step))
    opt:step()
    losses[step] = loss:item()
    local every = o.log_every or 100
    if every > 0 and (step == 1 or step % every == 0 or step == steps) then
      print(string.format("encoder step %4d/%d  BCE %.4f  %.2f s/step", step, steps, losses[step], (wb.now() - t0) / step))
    end
    wb.report { step = step, total = steps, loss = losses[step] }
  end
  self:eval()
  return { losses = losses, seconds = wb.now() - t0 }
end

-- label probabilities (N, K) from the auxiliary head
function EcgLM:label_probs(x, o)
  local f = self:precompute(x, o)
  return wb.no_grad(function() return wb.sigmoid(self.label_head(f.pooled)) end)
end

-- report metrics of generated texts against reference texts and the true
-- label lists: BLEU-1..4, ROUGE-L, METEOR, label F1 (micro, macro, per
-- label; findings parsed with wb.sim.parse_report)
function M.report_metrics(generated, references, true_labels, label_names)
  local m = wb.metrics
  local out = {}
  local b = m.bleu(generated, references, { max_n = 4 })
  for n = 1, 4 do out["bleu" .. n] = b[n] end
  out.rouge_l = (m.rouge_l(generated, references))
  out.meteor = (m.meteor(generated, references))
  local lf = m.report_label_f1(generated, true_labels, wb.sim.parse_report, { labels = label_names })
  out.label_f1_micro, out.label_f1_macro, out.label_f1 = lf.micro, lf.macro, lf.per_label
  return out
end

-- the label lists of a multi-hot (N, K) tensor
function M.label_lists(labels, names)
  local K, flat, out = labels:size(2), labels:totable(), {}
  for i = 1, labels:size(1) do
    local l = {}
    for k = 1, K do if flat[(i - 1) * K + k] > 0.5 then l[#l + 1] = names[k] end end
    out[i] = l
  end
  return out
end

-- what recipes that build on recipes/report.lua start from (rag_report, qa):
-- its trained model in dir/model (report.lua is run first when it is
-- missing), the default corpus's train and test splits at fs with the
-- measurements report.lua cached in dir, and the signals resampled to
-- fs_model. Returns model, tr, te, ev_tr, ev_te. eval_split ("test", or
-- "validation" to choose settings on) is the split returned as te.
function M.from_report_recipe(dir, fs, fs_model, eval_split)
  local f = io.open(dir .. "/model/config.json", "r")
  if f then f:close() else
    print("no report model in " .. dir .. ": running recipes/report.lua first")
    assert(loadfile("recipes/report.lua"))({ out = dir })
  end
  local model = M.load(dir .. "/model")
  local tr = wb.corpus.load { split = "train", fs = fs }
  eval_split = eval_split or "test"
  local te = wb.corpus.load { split = eval_split, fs = fs }
  local ev_tr = M.evidence_cached(tr.x, fs, dir .. "/evidence-train.txt")
  local ev_te = M.evidence_cached(te.x, fs, dir .. "/evidence-" .. eval_split .. ".txt")
  tr.x = wb.signal.resample(tr.x, fs, fs_model)
  te.x = wb.signal.resample(te.x, fs, fs_model)
  return model, tr, te, ev_tr, ev_te
end

------------------------------------------------------------------ save / load
function EcgLM:save(dir)
  if type(dir) ~= "string" then error("EcgLM:save: expected a directory name", 2) end
  os.execute("mkdir -p '" .. dir:gsub("'", "'\\''") .. "'")
  wb.save_state_dict(dir .. "/model.h5", self:state_dict())
  self.tok:save(dir .. "/tokenizer.bpe")
  local f = assert(io.open(dir .. "/config.json", "w"))
  f:write(wb.json.encode(self.cfg), "\n")
  f:close()
  return self
end

function M.load(dir)
  if type(dir) ~= "string" then error("ecg_lm.load: expected a directory name", 2) end
  local f = io.open(dir .. "/config.json", "r")
  if not f then error("ecg_lm.load: no config.json in '" .. dir .. "'", 2) end
  local cfg = wb.json.decode(f:read("*a"))
  f:close()
  local tok = wb.tokenizer.load(dir .. "/tokenizer.bpe")
  local m = EcgLM(cfg, tok)
  m:load_state_dict(wb.load_state_dict(dir .. "/model.h5"))
  return m
end

return M
