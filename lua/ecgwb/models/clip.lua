--[[ ecgwb.models.clip: ECG-text contrastive model (CLIP / METS / MERL style),
the zero-shot classifier built on it, and retrieval recall@k.

    local clip = require "ecgwb.models.clip"
    local model = clip.CLIP { ecg = "tiny", text = "tiny", vocab_size = tok:vocab_size(), proj_dim = 128 }
    local ze = model:encode_ecg(x, lead_mask)     -- x (B, 12, L) mV -> (B, P), unit rows
    local zt = model:encode_text(ids, mask)       -- ids (B, T) i64, mask (B, T) -> (B, P), unit rows
    local loss, info = model:loss(x, ids, mask)   -- symmetric InfoNCE; info.acc, info.scale
    model:clamp_logit_scale_()                    -- after each optimiser step, as CLIP
    local scores = clip.zero_shot(model, tok, x, prompts)   -- (N, K) label scores
    local r = clip.recall_at_k(ze, zt, { 1, 5, 10 })        -- r.ecg_to_text[k], r.text_to_ecg[k]
    clip.save(model, tok, "runs/clip"); local model, tok = clip.load("runs/clip")

Towers. ECG: lua/ecgwb/models/ecg_encoder.lua (objective "none"), its mean
pooled embedding through ecg_proj Linear(D, P); with amplitude = true, plus
amp_proj Linear(24, P) of the per-lead log RMS and log peak-to-peak of the
input (the extractor's per-channel GroupNorm divides absolute amplitude
out, which low-voltage and LVH statements are about). Text: the GPT of
lua/ecgwb/models/gpt.lua in text-encoder mode (encode_text: mean over the
real tokens of the final hidden states, then its text_proj Linear to P).
Both are L2-normalised.

Loss (CLIP, Radford et al. 2021): logits = s · ze ztᵀ (B, B) with
s = exp(logit_scale), the target of row i is column i; loss = (CE(logits) +
CE(logitsᵀ)) / 2. logit_scale is a learned scalar, initialised to
log(1 / 0.07); s is clamped to at most 100 in the forward (no gradient past
the bound), and clamp_logit_scale_() clamps the parameter itself to
[0, log 100] after each step, as open_clip does.

Zero-shot (CLIP's prompt ensembling): each label has several prompts; their
normalised text embeddings are averaged and renormalised into one class
vector c_k. With negatives (a list of prompts per label, or one shared
list, e.g. a normal ECG), a negative vector n_k is built the same way and
score_k(x) = cos(ze, c_k) - cos(ze, n_k); without, score_k = cos(ze, c_k).
Scores are per label (multi-label: no softmax across labels), ready for
wb.metrics.auroc.

Recall@k: ECG i's text is i. ECG->text rank of i = the number of texts j
with sim(i, j) > sim(i, i) (ties count in i's favour); recall@k = share of
rows with rank < k. text->ECG the same on the transposed similarities.
]]
local wb = require "ecgwb"
local nn = wb.nn
local E = require "ecgwb.models.ecg_encoder"
local gpt = require "ecgwb.models.gpt"

local M = {}

M.defaults = { ecg = "tiny", text = "tiny", proj_dim = 128, vocab_size = nil,
               logit_scale_init = math.log(1 / 0.07), logit_scale_max = math.log(100), text_block_size = 256,
               input_fs = 100,    -- input_fs: the ECG rate the model was trained at (metadata for its users)
               amplitude = false } -- amplitude: add the per-lead amplitude features (see the header)

------------------------------------------------------------------ the model
local CLIP = nn.class("CLIP")
M.CLIP = CLIP

-- cfg: ecg (a config name or an ecg_encoder config table), text (a gpt
-- config name or a table {base = name, <gpt config overrides>}), vocab_size
-- (required), proj_dim, logit_scale_init, logit_scale_max, text_block_size,
-- input_fs (metadata: model.cfg.input_fs tells a loader's user the rate)
function CLIP:__init(cfg)
  if type(cfg) ~= "table" then error("CLIP: expected a config table, got " .. type(cfg), 3) end
  local c = {}
  for k, v in pairs(M.defaults) do c[k] = v end
  for k, v in pairs(cfg) do
    if M.defaults[k] == nil and k ~= "vocab_size" then error("CLIP: unknown config key '" .. tostring(k) .. "'", 3) end
    c[k] = v
  end
  if type(c.vocab_size) ~= "number" then error("CLIP: config needs vocab_size (the tokenizer's vocab_size())", 3) end
  self.cfg = c
  local ecfg = type(c.ecg) == "table" and c.ecg or { base = c.ecg }
  local e = {}
  for k, v in pairs(ecfg) do e[k] = v end
  e.objective = "none"
  self.ecg = E.EcgEncoder(e)
  self.ecg_proj = nn.Linear(self.ecg.cfg.d_model, c.proj_dim)
  if c.amplitude then self.amp_proj = nn.Linear(2 * self.ecg.cfg.n_leads, c.proj_dim) end
  -- text: a gpt config name, or a table {base = name, n_layer = ..., ...} of overrides
  local over = { vocab_size = c.vocab_size, proj_dim = c.proj_dim, block_size = c.text_block_size }
  local tname = c.text
  if type(c.text) == "table" then
    tname = c.text.base or "tiny"
    for k, v in pairs(c.text) do if k ~= "base" then over[k] = v end end
  end
  self.text = gpt.GPT(gpt.config(tname, over))
  self:register_parameter("logit_scale", wb.full({ 1 }, c.logit_scale_init))
end

-- the amplitude features of x (B, 12, L): per lead log RMS and log
-- peak-to-peak (mV), zero for missing leads -> (B, 24)
function M.amplitude_features(x, lead_mask)
  if x:dim() ~= 3 then error("clip.amplitude_features: expected x (B, leads, L), got " .. x:describe(), 2) end
  return wb.no_grad(function()
    local rms = (x:square():mean(3) + 1e-6):log() * 0.5                  -- (B, 12)
    local p2p = ((x:max(3)) - (x:min(3)) + 1e-3):log()                   -- (B, 12)
    if lead_mask then rms, p2p = rms * lead_mask, p2p * lead_mask end
    return wb.cat({ rms, p2p }, 2)
  end)
end

-- x (B, 12, L), lead_mask (B, 12) or nil -> (B, P) unit rows
function CLIP:encode_ecg(x, lead_mask)
  local z = self.ecg_proj(self.ecg(x, lead_mask).pooled)
  if self.amp_proj then z = z + self.amp_proj(M.amplitude_features(x, lead_mask)) end
  return wb.normalize(z)
end

-- ids (B, T) i64, mask (B, T) bool/f32 or nil -> (B, P) unit rows
function CLIP:encode_text(ids, mask)
  return wb.normalize(self.text:encode_text(ids, { mask = mask }))
end

-- the temperature's inverse s = exp(min(logit_scale, max)) as a (1) tensor
function CLIP:scale()
  return self.logit_scale:clamp(-math.huge, self.cfg.logit_scale_max):exp()
end

-- as open_clip after each optimiser step: logit_scale in [0, log 100]
function CLIP:clamp_logit_scale_()
  wb.no_grad(function() self.logit_scale:copy_(self.logit_scale:clamp(0, self.cfg.logit_scale_max)) end)
end

-- symmetric InfoNCE of unit embeddings ze, zt (B, P) at scale s ((1) tensor
-- or number) -> loss, logits (B, B)
function M.info_nce(ze, zt, s)
  if ze:dim() ~= 2 or zt:dim() ~= 2 or ze:size(1) ~= zt:size(1) or ze:size(2) ~= zt:size(2) then
    error(string.format("clip.info_nce: ECG and text embeddings must both be (B, P), got %s and %s", ze:describe(), zt:describe()), 2)
  end
  local B = ze:size(1)
  local logits = wb.matmul(ze, zt:t()) * s                      -- (B, B)
  local target = wb.arange(0, B, 1, "i64")
  local loss = (wb.cross_entropy(logits, target) + wb.cross_entropy(logits:t(), target)) * 0.5
  return loss, logits
end

-- x (B, 12, L), ids (B, T), mask (B, T) or nil; o.lead_mask -> loss, info
-- {acc = mean of both directions' top-1 accuracy in the batch, scale = s}
function CLIP:loss(x, ids, mask, o)
  o = o or {}
  if not wb.is_tensor(x) or not wb.is_tensor(ids) then error("CLIP:loss: x and ids must be tensors", 2) end
  if x:dim() ~= 3 or ids:dim() ~= 2 then
    error(string.format("CLIP:loss: expected x (B, 12, L) and ids (B, T), got %s and %s", x:describe(), ids:describe()), 2)
  end
  if x:size(1) ~= ids:size(1) then
    error(string.format("CLIP:loss: batch sizes differ: x %s has %d ECGs, ids %s has %d texts", x:describe(), x:size(1),
      ids:describe(), ids:size(1)), 2)
  end
  if mask and (mask:dim() ~= 2 or mask:size(1) ~= ids:size(1) or mask:size(2) ~= ids:size(2)) then
    error(string.format("CLIP:loss: mask %s must have the shape of ids %s", mask:describe(), ids:describe()), 2)
  end
  local ze = self:encode_ecg(x, o.lead_mask)
  local zt = self:encode_text(ids, mask)
  local s = self:scale()
  local loss, logits = M.info_nce(ze, zt, s)
  local info = wb.no_grad(function()
    local B = x:size(1)
    local t = wb.arange(0, B, 1, "i64")
    local a1 = logits:argmax(2):eq(t):to("f32"):mean():item()
    local a2 = logits:argmax(1):eq(t):to("f32"):mean():item()
    return { acc = (a1 + a2) / 2, scale = s:item() }
  end)
  return loss, info
end

------------------------------------------------------------------ text helpers
-- the sentences of a report: split after ". " (a period followed by space),
-- so "0.5 mV" stays whole
function M.sentences(text)
  local out, start = {}, 1
  while true do
    local i = text:find("%.%s", start)
    if not i then break end
    out[#out + 1] = text:sub(start, i)
    start = i + 1
    while text:sub(start, start):match("%s") do start = start + 1 end
  end
  if start <= #text then out[#out + 1] = text:sub(start) end
  return out
end

-- text augmentation: each sentence kept with probability keep (at least one
-- kept); u: a list of uniforms, one per sentence and one more (which
-- sentence to keep when all were dropped)
function M.drop_sentences(text, keep, u)
  local s = M.sentences(text)
  if #u < #s + 1 then error(string.format("clip.drop_sentences: %d sentences need %d uniforms, got %d", #s, #s + 1, #u), 2) end
  local out = {}
  for i = 1, #s do
    if u[i] < keep then out[#out + 1] = s[i] end
  end
  if #out == 0 then out[1] = s[1 + math.floor(u[#s + 1] * #s) % #s] end
  return table.concat(out, " ")
end

------------------------------------------------------------------ zero-shot
-- the unit mean of the unit embeddings of a list of prompts -> (P)
local function class_vector(model, tok, prompts, what)
  if type(prompts) ~= "table" or #prompts == 0 then error("clip.zero_shot: " .. what .. " needs a non-empty list of prompts", 3) end
  local ids, mask = tok:encode_batch(prompts)
  local z = model:encode_text(ids, mask)                           -- (n, P)
  return wb.normalize(z:mean(1))
end

-- ECG embeddings of x in batches (eval mode, no grad) -> (N, P)
function M.embed_ecgs(model, x, o)
  o = o or {}
  local bs = o.batch or 64
  local was = model.training
  model:eval()
  local out = wb.no_grad(function()
    local parts = {}
    for i = 1, x:size(1), bs do
      local n = math.min(bs, x:size(1) - i + 1)
      parts[#parts + 1] = model:encode_ecg(x:narrow(1, i, n):contiguous(), o.lead_mask and o.lead_mask:narrow(1, i, n))
    end
    return #parts == 1 and parts[1] or wb.cat(parts, 1)
  end)
  model:train(was)
  return out
end

-- text embeddings of a list of strings in batches (eval mode, no grad) -> (N, P)
function M.embed_texts(model, tok, texts, o)
  o = o or {}
  local bs = o.batch or 128
  local was = model.training
  model:eval()
  local out = wb.no_grad(function()
    local parts = {}
    for i = 1, #texts, bs do
      local chunk = {}
      for j = i, math.min(i + bs - 1, #texts) do chunk[#chunk + 1] = texts[j] end
      local ids, mask = tok:encode_batch(chunk, { max_len = o.max_len })
      parts[#parts + 1] = model:encode_text(ids, mask)
    end
    return #parts == 1 and parts[1] or wb.cat(parts, 1)
  end)
  model:train(was)
  return out
end

-- class vectors (K, P) from a list of K prompt lists (and negatives: K lists
-- or one list shared by all labels) -> pos (K, P), neg (K, P) or nil
function M.class_vectors(model, tok, prompts, negatives)
  if type(prompts) ~= "table" or #prompts == 0 then error("clip.zero_shot: prompts must be a list of prompt lists, one per label", 2) end
  local was = model.training
  model:eval()
  local pos, neg = wb.no_grad(function()
    local p, n = {}, nil
    for k = 1, #prompts do p[k] = class_vector(model, tok, prompts[k], "label " .. k) end
    if negatives then
      n = {}
      local shared = type(negatives[1]) == "string"
      if not shared and #negatives ~= #prompts then
        error(string.format("clip.zero_shot: %d labels have prompts but %d have negatives", #prompts, #negatives), 4)
      end
      local one = shared and class_vector(model, tok, negatives, "the shared negatives")
      for k = 1, #prompts do n[k] = one or class_vector(model, tok, negatives[k], "the negatives of label " .. k) end
      n = wb.stack(n, 1)
    end
    return wb.stack(p, 1), n
  end)
  model:train(was)
  return pos, neg
end

-- zero-shot label scores (N, K) for ECGs x (N, 12, L) (or their embeddings,
-- o.ecg_emb (N, P)); prompts: K lists of strings; o.negatives (see header)
function M.zero_shot(model, tok, x, prompts, o)
  o = o or {}
  local ze = o.ecg_emb or M.embed_ecgs(model, x, o)
  local pos, neg = M.class_vectors(model, tok, prompts, o.negatives)
  return wb.no_grad(function()
    local s = wb.matmul(ze, pos:t())                               -- (N, K)
    if neg then s = s - wb.matmul(ze, neg:t()) end
    return s
  end)
end

------------------------------------------------------------------ retrieval
-- ze (N, P), zt (N, P) paired by row; ks a list (default {1, 5, 10}) ->
-- { ecg_to_text = {[k] = recall}, text_to_ecg = {[k] = recall} }
function M.recall_at_k(ze, zt, ks)
  ks = ks or { 1, 5, 10 }
  if not (wb.is_tensor(ze) and wb.is_tensor(zt)) or ze:dim() ~= 2 or zt:dim() ~= 2 or ze:size(1) ~= zt:size(1) or ze:size(2) ~= zt:size(2) then
    error(string.format("clip.recall_at_k: ECG and text embeddings must both be (N, P) with the same N and P, got %s and %s",
      wb.is_tensor(ze) and ze:describe() or type(ze), wb.is_tensor(zt) and zt:describe() or type(zt)), 2)
  end
  return wb.no_grad(function()
    local N = ze:size(1)
    local sim = wb.matmul(ze, zt:t())                              -- (N, N)
    -- the diagonal taken from sim itself, so a pair never outranks itself by rounding
    local diag = sim:gather(2, wb.arange(0, N, 1, "i64"):reshape(N, 1)) -- (N, 1) = sim[i, i]
    -- rank = number of strictly better candidates, per direction
    local function recalls(rank)
      local r = rank:totable()
      local out = {}
      for _, k in ipairs(ks) do
        local hit = 0
        for i = 1, #r do if r[i] < k then hit = hit + 1 end end
        out[k] = hit / #r
      end
      return out
    end
    local e2t = sim:gt(diag):to("f32"):sum(2)                     -- (N)
    local t2e = sim:gt(diag:t()):to("f32"):sum(1)                 -- (N): column j against sim[j, j]
    return { ecg_to_text = recalls(e2t), text_to_ecg = recalls(t2e) }
  end)
end

------------------------------------------------------------------ save / load
-- dir/clip.h5 (a wb.checkpoint with the model and its config) and
-- dir/tokenizer.bpe
function M.save(model, tok, dir)
  os.execute("mkdir -p '" .. dir .. "'")
  wb.checkpoint.save(dir .. "/clip.h5", { model = model, config = model.cfg, step = 0 })
  tok:save(dir .. "/tokenizer.bpe")
end

-- -> model (eval mode), tokenizer
function M.load(dir)
  if type(dir) ~= "string" then error("clip.load: expected a directory name, got " .. type(dir), 2) end
  local ok, ck = pcall(wb.checkpoint.read, dir .. "/clip.h5")
  if not ok then error("clip.load: " .. tostring(ck), 2) end
  local model = CLIP(ck.config)
  local sd = {}
  for k, v in pairs(ck.tensors) do
    if k:sub(1, 6) == "model/" then sd[k:sub(7)] = v end
  end
  model:load_state_dict(sd, true)
  model:eval()
  local tok = wb.tokenizer.load(dir .. "/tokenizer.bpe")
  if tok:vocab_size() ~= model.cfg.vocab_size then
    error(string.format("clip.load: tokenizer has %d tokens, the model %d", tok:vocab_size(), model.cfg.vocab_size), 2)
  end
  return model, tok
end

return M
