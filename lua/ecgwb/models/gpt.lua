--[[ ecgwb.models.gpt: a GPT-2 style causal decoder LM, the text side of
issue 5 (report generation, RAG prompts, QA, the text tower of ECG-text
contrastive training, and the hidden states issue 6 aligns).

    local gpt = require "ecgwb.models.gpt"
    local lm = gpt.GPT(gpt.config("tiny", { vocab_size = 259 }))
    local logits, hidden = lm(ids, { prefix = ecg_tokens, mask = m })   -- ids (B, T) i64
    local loss = lm:lm_loss(ids, { mask = m })
    local new = lm:generate(ids, { max_new_tokens = 64, top_p = 0.9, seed = 1, eos_id = 2 })
    local z = lm:encode_text(ids, { mask = m })                          -- (B, proj_dim)

The model takes token ids and knows nothing about the tokenizer.

Architecture (GPT-2, names as nanoGPT's so weights can move by name):
  wte (V, D) token embedding, wpe (block_size, D) LEARNED absolute positions
  (not RoPE); h.i = pre-LN blocks: x += attn(ln_1(x)), x += mlp(ln_2(x)),
  attn a causal multi-head self-attention through wb.sdpa (c_attn D -> 3D,
  c_proj D -> D), mlp c_fc D -> 4D, GELU (tanh approximation, as GPT-2),
  c_proj 4D -> D; ln_f the final LayerNorm. The LM head is TIED to wte:
  logits = ln_f(x) wteᵀ (no separate lm_head weight, no bias). Init as GPT-2:
  N(0, 0.02) weights, zero biases, residual projections N(0, 0.02/sqrt(2L)).

Prefix embeddings (LLaVA style): opts.prefix (B, P, D), e.g. projected ECG
encoder tokens, is put before the token embeddings; the prefix takes
positions 0..P-1 (wpe is added to it too, as GPT-2 does for inputs_embeds)
and the tokens P..P+T-1, so a prefix made of token embeddings gives exactly
the forward of the concatenated ids. Logits and hidden states are returned
for the token positions only.

Padding: opts.mask (B, T), 1 (or true) = real token, 0 = pad; it covers the
tokens, the prefix always counts as real. Pads are hidden from every query,
and a token's position counts only the real tokens before it (as HF's
position_ids from the attention mask), so a left-padded row gives the same
logits as the same row unpadded. Batched generation needs LEFT padding.

KV cache: lm:new_cache(B, max_len) preallocates kv (B, max_len, 2D) per
layer (k then v of each position, with (B, H, max_len, hd) views k and v);
forward(ids, {cache = c}) writes the new k/v into it with one
narrow():copy_() and attends to everything cached, so a decode step
computes q/k/v for its own token only. The cache is for inference: it must run under wb.no_grad.

Text encoder (METS/MERL style): encode_text pools the final hidden states,
by default the MEAN over the real (non-pad) tokens ("last" = the last real
token, which in a causal model is the only one that saw the whole text),
then text_proj (Linear D -> proj_dim). Not normalised; the contrastive loss
normalises.

Sampling order (as HF's warpers): temperature, then top-k (ties with the
k-th logit are kept), then top-p (the smallest set of most likely tokens
whose probability reaches top_p). temperature = 0 or greedy = true is
argmax. Uniforms come from wb.rand; with opts.seed the draws are seeded and
the global RNG stream is restored afterwards.
]]
local wb = require "ecgwb"
local nn = require "ecgwb.nn"

local M = {}

------------------------------------------------------------------ configs
-- base has GPT-2 small's shapes (124M parameters with the 50257 vocab)
M.configs = {
  tiny = { n_layer = 2, n_head = 4, n_embd = 64, block_size = 256 },
  small = { n_layer = 6, n_head = 8, n_embd = 384, block_size = 512 },
  base = { n_layer = 12, n_head = 12, n_embd = 768, block_size = 1024 },
}
local DEFAULTS = { dropout = 0, layer_norm_eps = 1e-5, gelu = "tanh", pool = "mean" }

-- gpt.config("tiny", {vocab_size = 259, ...}) -> a full config table
function M.config(name, over)
  local base = M.configs[name]
  if not base then error("gpt.config: unknown config '" .. tostring(name) .. "' (tiny, small, base)", 2) end
  local c = {}
  for k, v in pairs(DEFAULTS) do c[k] = v end
  for k, v in pairs(base) do c[k] = v end
  for k, v in pairs(over or {}) do c[k] = v end
  return c
end

local function init_linear(l, std)
  l.weight:normal_(0, std)
  if l.bias then l.bias:zero_() end
  return l
end

------------------------------------------------------------------ blocks
local Attention = nn.class("CausalSelfAttention")
function Attention:__init(c)
  if c.n_embd % c.n_head ~= 0 then
    error(string.format("gpt: n_embd %d must be divisible by n_head %d", c.n_embd, c.n_head), 4)
  end
  self.n_head, self.n_embd, self.head_dim = c.n_head, c.n_embd, c.n_embd / c.n_head
  self.c_attn = init_linear(nn.Linear(c.n_embd, 3 * c.n_embd), 0.02)
  self.c_proj = init_linear(nn.Linear(c.n_embd, c.n_embd), 0.02 / math.sqrt(2 * c.n_layer))
  self.resid_dropout = nn.Dropout(c.dropout)
end

-- x (B, N, D); ctx = {mask = bool broadcast to (B, H, N, S) or nil, causal,
-- past = cached positions}; kv = this layer's cache {k, v} or nil
function Attention:forward(x, ctx, kv)
  local B, N, D = x:size(1), x:size(2), x:size(3)
  local H, hd = self.n_head, self.head_dim
  local qkv = self.c_attn(x) -- (B, N, 3D)
  -- (B, N, H, hd) -> (B, H, N, hd); with one position (a decode step) the
  -- same view is a plain reshape (fewer ops per step)
  local function heads(i)
    if N == 1 then return qkv:narrow(3, i * D + 1, D):reshape(B, H, 1, hd) end
    return qkv:narrow(3, i * D + 1, D):reshape(B, N, H, hd):permute(1, 3, 2, 4)
  end
  local q, k, v = heads(0) -- (B, H, N, hd)
  if kv then -- the new k and v side by side in one copy; k, v are views of the cache
    local past = ctx.past
    kv.kv:narrow(2, past + 1, N):copy_(qkv:narrow(3, D + 1, 2 * D))
    k, v = kv.k:narrow(3, 1, past + N), kv.v:narrow(3, 1, past + N) -- (B, H, S, hd)
  else
    k, v = heads(1), heads(2)
  end
  local y = wb.sdpa(q, k, v, { mask = ctx.mask, causal = ctx.causal, scale = 1 / math.sqrt(hd) }) -- (B, H, N, hd)
  y = N == 1 and y:reshape(B, 1, D) or y:transpose(2, 3):reshape(B, N, D)
  return self.resid_dropout(self.c_proj(y))
end

local MLP = nn.class("MLP")
function MLP:__init(c)
  self.c_fc = init_linear(nn.Linear(c.n_embd, 4 * c.n_embd), 0.02)
  self.c_proj = init_linear(nn.Linear(4 * c.n_embd, c.n_embd), 0.02 / math.sqrt(2 * c.n_layer))
  self.dropout = nn.Dropout(c.dropout)
  self.approximate = c.gelu
end
function MLP:forward(x)
  return self.dropout(self.c_proj(wb.gelu(self.c_fc(x), self.approximate)))
end

local Block = nn.class("Block")
function Block:__init(c)
  self.ln_1 = nn.LayerNorm(c.n_embd, { eps = c.layer_norm_eps })
  self.attn = Attention(c)
  self.ln_2 = nn.LayerNorm(c.n_embd, { eps = c.layer_norm_eps })
  self.mlp = MLP(c)
end
function Block:forward(x, ctx, kv)
  x = x + self.attn(self.ln_1(x), ctx, kv)
  return x + self.mlp(self.ln_2(x))
end

------------------------------------------------------------------ the model
local GPT = nn.class("GPT")
M.GPT = GPT

-- GPT(cfg) with cfg from gpt.config (vocab_size is required)
function GPT:__init(c)
  if type(c) ~= "table" or type(c.vocab_size) ~= "number" then
    error("GPT: needs a config with vocab_size, e.g. gpt.config('tiny', {vocab_size = 259})", 3)
  end
  for _, k in ipairs { "n_layer", "n_head", "n_embd", "block_size" } do
    if type(c[k]) ~= "number" then error("GPT: config field " .. k .. " is missing", 3) end
  end
  local full = {}
  for k, v in pairs(DEFAULTS) do full[k] = v end
  for k, v in pairs(c) do full[k] = v end
  c = full
  c.proj_dim = c.proj_dim or c.n_embd
  if c.pool ~= "mean" and c.pool ~= "last" then error("GPT: pool must be 'mean' or 'last', got " .. tostring(c.pool), 3) end
  self.cfg = c
  self.wte = nn.Embedding(c.vocab_size, c.n_embd)
  self.wte.weight:normal_(0, 0.02)
  self.wpe = nn.Embedding(c.block_size, c.n_embd)
  self.wpe.weight:normal_(0, 0.02)
  self.drop = nn.Dropout(c.dropout)
  self.h = nn.ModuleList()
  for _ = 1, c.n_layer do self.h:append(Block(c)) end
  self.ln_f = nn.LayerNorm(c.n_embd, { eps = c.layer_norm_eps })
  self.text_proj = init_linear(nn.Linear(c.n_embd, c.proj_dim), 0.02)
end

function GPT:extra_repr()
  local c = self.cfg
  return string.format("vocab_size=%d, n_layer=%d, n_head=%d, n_embd=%d, block_size=%d", c.vocab_size, c.n_layer,
    c.n_head, c.n_embd, c.block_size)
end

-- a KV cache for batch B, holding up to max_len (default block_size) positions
function GPT:new_cache(B, max_len)
  local c = self.cfg
  max_len = max_len or c.block_size
  if max_len < 1 or max_len > c.block_size then
    error(string.format("gpt.new_cache: max_len %d must be in 1..block_size %d", max_len, c.block_size), 2)
  end
  local D, H = c.n_embd, c.n_head
  local cache = { B = B, len = 0, max_len = max_len, layers = {}, valid = nil, counts = nil }
  for i = 1, c.n_layer do
    -- kv (B, max_len, 2D): each position's k then v as c_attn gives them, so
    -- a step writes both with one copy; k and v are (B, H, max_len, hd) views
    local kv = wb.zeros(B, max_len, 2 * D)
    local function heads(j) return kv:narrow(3, j * D + 1, D):view(B, max_len, H, D / H):permute(1, 3, 2, 4) end
    cache.layers[i] = { kv = kv, k = heads(0), v = heads(1) }
  end
  return cache
end

local function shape_str(t) return t:describe() end

-- mask (B, T) any dtype -> bool (1 = real token)
local function as_valid(mask, B, T)
  if mask:dim() ~= 2 or mask:size(1) ~= B or mask:size(2) ~= T then
    error(string.format("gpt: mask must be (B, T) = (%d, %d) like the ids, got %s", B, T, shape_str(mask)), 4)
  end
  if mask.dtype == "bool" then return mask end
  return mask:ne(0)
end

-- the final hidden states ln_f(x) for every position, prefix included:
-- (B, P + T, D). o: prefix (B, P, D), mask (B, T), cache, embeds (B, T, D)
-- (input embeddings used instead of wte(ids)).
function GPT:hidden_states(ids, o)
  o = o or {}
  local c = self.cfg
  local prefix, cache = o.prefix, o.cache
  local parts, B, P, T = {}, nil, 0, 0
  if prefix then
    if not wb.is_tensor(prefix) or prefix:dim() ~= 3 or prefix:size(3) ~= c.n_embd then
      error("gpt: prefix must be (B, P, " .. c.n_embd .. ") f32, got " .. (wb.is_tensor(prefix) and shape_str(prefix) or type(prefix)), 3)
    end
    B, P = prefix:size(1), prefix:size(2)
    parts[1] = prefix
  end
  if ids then
    if not wb.is_tensor(ids) or ids:dim() ~= 2 or ids.dtype ~= "i64" then
      error("gpt: ids must be (B, T) i64, got " .. (wb.is_tensor(ids) and shape_str(ids) or type(ids)), 3)
    end
    if B and ids:size(1) ~= B then
      error(string.format("gpt: prefix %s and ids %s differ in batch size", shape_str(prefix), shape_str(ids)), 3)
    end
    B, T = ids:size(1), ids:size(2)
    if T > 0 then
      local e = o.embeds -- (B, T, D) given input embeddings replace wte(ids) (e.g. trained new tokens)
      if e ~= nil and (not wb.is_tensor(e) or e:dim() ~= 3 or e:size(1) ~= B or e:size(2) ~= T or e:size(3) ~= c.n_embd) then
        error(string.format("gpt: embeds must be (%d, %d, %d) like the ids, got %s", B, T, c.n_embd,
          wb.is_tensor(e) and shape_str(e) or type(e)), 3)
      end
      parts[#parts + 1] = e or self.wte(ids)
    end
  end
  if not B then error("gpt: needs ids or a prefix", 3) end
  local N = P + T
  if N == 0 then error("gpt: empty input (no prefix and no ids)", 3) end
  local x = #parts == 1 and parts[1] or wb.cat(parts, 2) -- (B, N, D)
  local past = 0
  if cache then
    if wb.grad_enabled() then error("gpt: the KV cache is for inference; run under wb.no_grad", 3) end
    if cache.B ~= B then error(string.format("gpt: cache is for batch %d, input has batch %d", cache.B, B), 3) end
    past = cache.len
  end
  if cache and past + N > cache.max_len then
    error(string.format("gpt: %d cached + %d new positions exceed the cache's max_len %d", past, N, cache.max_len), 3)
  end
  if past + N > c.block_size then
    error(string.format("gpt: %d positions (%d cached + %d prefix + %d tokens) exceed block_size %d", past + N, past, P, T,
      c.block_size), 3)
  end

  -- valid (B, N) bool, 1 = real; nil when everything is real
  local valid
  if o.mask then
    valid = as_valid(o.mask, B, T)
    if P > 0 then valid = wb.cat({ wb.full({ B, P }, 1, "bool"), valid }, 2) end
  end

  -- positions: shared (a slice of wpe) unless padding was ever seen
  local counts = cache and cache.counts
  local pos_emb
  if not valid and not counts then
    pos_emb = self.wpe.weight:narrow(1, past + 1, N) -- (N, D)
  else
    local vt = valid and valid:totable()
    local pos = {}
    local new_counts = {}
    for b = 1, B do
      local n = counts and counts[b] or past
      local row = {}
      for j = 1, N do
        if not vt or vt[(b - 1) * N + j] ~= 0 then
          row[j] = n
          n = n + 1
        else
          row[j] = math.min(n, c.block_size - 1) -- a pad: any position, it is never attended to
        end
      end
      pos[b], new_counts[b] = row, n
    end
    pos_emb = wb.embedding(self.wpe.weight, wb.tensor(pos, "i64")) -- (B, N, D)
    if cache then cache.counts = new_counts end
  end
  x = self.drop(x + pos_emb)

  -- which keys each query sees: key validity (B, 1, 1, S) and causality
  local S = past + N
  local kvalid = valid
  if cache and (valid or cache.valid) then
    if not cache.valid then
      cache.valid = wb.full({ B, cache.max_len }, 1, "bool")
    end
    cache.valid:narrow(2, past + 1, N):copy_(valid or wb.full({ B, N }, 1, "bool"))
    kvalid = cache.valid:narrow(2, 1, S)
  end
  local mask = kvalid and kvalid:reshape(B, 1, 1, S)
  local causal = false
  if past == 0 then
    causal = N > 1 -- top-left aligned: query t sees keys s <= t
  elseif N > 1 then -- new queries at positions past..past+N-1 see keys s <= past + t
    local cm = wb.arange(0, S, 1, "i64"):reshape(1, S):le(wb.arange(past, S, 1, "i64"):reshape(N, 1))
    cm = cm:reshape(1, 1, N, S)
    mask = mask and wb.where(mask, cm, 0) or cm
  end
  local ctx = { mask = mask, causal = causal, past = past }
  for i = 1, #self.h do x = self.h[i](x, ctx, cache and cache.layers[i]) end
  if cache then cache.len = S end
  return self.ln_f(x), P
end

-- the tied LM head: h (..., D) -> logits (..., V)
function GPT:head(h) return wb.linear(h, self.wte.weight) end

-- lm(ids, {prefix, mask, cache, logits = true}) -> logits (B, T, V),
-- hidden (B, T, D): final-LN hidden states of the token positions
function GPT:forward(ids, o)
  if ids == nil then error("gpt: forward needs ids (B, T); for a prefix alone use hidden_states", 2) end
  local h, P = self:hidden_states(ids, o)
  if P > 0 then h = h:narrow(2, P + 1, ids:size(2)) end
  if o and o.logits == false then return nil, h end
  return self:head(h), h
end

-- next-token cross entropy over the tokens. o: prefix, mask, labels (B, T)
-- i64 aligned with ids (-100 = no loss; default: ids, pads -100). With a
-- prefix the last prefix position predicts the first token.
function GPT:lm_loss(ids, o)
  o = o or {}
  local h, P = self:hidden_states(ids, o)
  local B, T = ids:size(1), ids:size(2)
  local labels = o.labels or ids
  if o.mask and not o.labels then labels = wb.where(as_valid(o.mask, B, T), ids, -100) end
  local from, n = P, T -- the hidden position (1-based) that predicts labels[1]
  if P == 0 then from, n, labels = 1, T - 1, labels:narrow(2, 2, T - 1) end
  if n <= 0 then error("gpt: lm_loss needs at least 2 tokens (or a prefix)", 2) end
  local logits = self:head(h:narrow(2, from, n)) -- (B, n, V)
  return wb.cross_entropy(logits:reshape(B * n, self.cfg.vocab_size), labels:reshape(B * n))
end

-- text-encoder mode: ids (B, T), o.mask (B, T) -> (B, proj_dim)
function GPT:encode_text(ids, o)
  o = o or {}
  local h = self:hidden_states(ids, { mask = o.mask }) -- (B, T, D)
  local B, T, D = h:size(1), h:size(2), h:size(3)
  local valid = o.mask and as_valid(o.mask, B, T)
  local pooled
  if (o.pool or self.cfg.pool) == "mean" then
    if valid then
      local m = valid:to("f32"):unsqueeze(3) -- (B, T, 1)
      pooled = (h * m):sum(2) / m:sum(2):clamp(1)
    else
      pooled = h:mean(2)
    end
  else -- the last real token of each row
    local last = {}
    local vt = valid and valid:totable()
    for b = 1, B do
      local l = T - 1
      if vt then
        l = 0
        for j = 1, T do if vt[(b - 1) * T + j] ~= 0 then l = j - 1 end end
      end
      last[b] = { { l } }
    end
    local idx = wb.tensor(last, "i64"):expand(B, 1, D)
    pooled = h:gather(2, idx):reshape(B, D)
  end
  return self.text_proj(pooled)
end

------------------------------------------------------------------ sampling
-- one id (0-based) from V logits, p[1..V]; u uniform in [0, 1)
local function sample_row(p, V, o, u)
  local temp = o.temperature or 1
  local mx, bi = p[1], 0
  for i = 2, V do if p[i] > mx then mx, bi = p[i], i - 1 end end
  if o.greedy or temp <= 0 then return bi end
  local keep = {} -- candidate ids, 0-based
  local top_k = o.top_k
  if top_k and top_k > 0 and top_k < V then
    local vals = {}
    for i = 1, V do vals[i] = p[i] end
    table.sort(vals)
    local thr = vals[V - top_k + 1] -- the k-th largest logit
    for i = 1, V do if p[i] >= thr then keep[#keep + 1] = i - 1 end end
  else
    for i = 1, V do keep[i] = i - 1 end
  end
  local w, total = {}, 0
  for j, i in ipairs(keep) do
    w[j] = math.exp((p[i + 1] - mx) / temp)
    total = total + w[j]
  end
  local top_p = o.top_p
  if top_p and top_p < 1 then
    local order = {}
    for j = 1, #keep do order[j] = j end
    table.sort(order, function(a, b) if w[a] ~= w[b] then return w[a] > w[b] end return keep[a] < keep[b] end)
    local k2, w2, cum = {}, {}, 0
    for _, j in ipairs(order) do
      k2[#k2 + 1], w2[#w2 + 1] = keep[j], w[j]
      cum = cum + w[j]
      if cum >= top_p * total then break end
    end
    keep, w, total = k2, w2, cum
  end
  local r, cum = u * total, 0
  for j = 1, #keep do
    cum = cum + w[j]
    if r < cum then return keep[j] end
  end
  return keep[#keep]
end

-- logits (B, V) -> a Lua list of B ids (0-based). o: greedy, temperature,
-- top_k, top_p; u: B uniforms in [0, 1) (drawn from wb.rand when nil and
-- not greedy)
function M.sample(logits, o, u)
  o = o or {}
  if logits:dim() ~= 2 then error("gpt.sample: logits must be (B, V), got " .. shape_str(logits), 2) end
  local B, V = logits:size(1), logits:size(2)
  if o.greedy or (o.temperature or 1) <= 0 then return logits:argmax(2):totable() end -- the first maximum
  if not u then u = wb.rand(B):totable() end
  local flat = logits:totable()
  local out = {}
  for b = 1, B do
    local row = {}
    for i = 1, V do row[i] = flat[(b - 1) * V + i] end
    out[b] = sample_row(row, V, o, u and u[b])
  end
  return out
end

------------------------------------------------------------------ generation
-- lm:generate(ids, o) -> new ids (B, n) i64, n <= max_new_tokens.
-- ids (B, T) i64 or nil (then o.prefix alone starts the text). o: prefix,
-- mask (B, T) left padding only, max_new_tokens (32), greedy, temperature
-- (1), top_k, top_p, eos_id (a row that emitted it emits eos_id from then
-- on; generation stops when every row has), seed, use_cache (true).
function GPT:generate(ids, o)
  o = o or {}
  local max_new = o.max_new_tokens or 32
  local B = ids and ids:size(1) or (o.prefix and o.prefix:size(1))
  if not B then error("gpt.generate: needs ids or a prefix", 2) end
  local T = ids and ids:size(2) or 0
  local P = o.prefix and o.prefix:size(2) or 0
  if P + T == 0 then error("gpt.generate: empty prompt", 2) end
  if P + T + max_new > self.cfg.block_size then
    error(string.format("gpt.generate: %d prompt positions + %d new tokens exceed block_size %d", P + T, max_new,
      self.cfg.block_size), 2)
  end
  if o.mask then
    local v = as_valid(o.mask, B, T):narrow(2, T, 1):totable()
    for b = 1, B do
      if v[b] == 0 then error("gpt.generate: pad the prompts on the left (mask row " .. b .. " ends in a pad)", 2) end
    end
  end
  local greedy = o.greedy or (o.temperature or 1) <= 0
  local u
  if not greedy then -- all uniforms up front, (max_new, B)
    if o.seed then
      local saved = wb.rng_state()
      wb.manual_seed(o.seed)
      u = wb.rand(max_new, B):totable()
      wb.set_rng_state(saved)
    else
      u = wb.rand(max_new, B):totable()
    end
  end
  local was_training = self.training
  self:eval()
  local out = {}
  for b = 1, B do out[b] = {} end
  local ok, err = pcall(wb.no_grad, function()
    local use_cache = o.use_cache ~= false
    local cache = use_cache and self:new_cache(B, P + T + max_new) or nil
    local seq, mask = ids, o.mask -- the whole text so far (no cache)
    local h = self:hidden_states(ids, { prefix = o.prefix, mask = o.mask, cache = cache })
    local done = {}
    for step = 1, max_new do
      local n = h:size(2)
      if n > 1 then h = h:narrow(2, n, 1) end
      local logits = self:head(h:reshape(B, self.cfg.n_embd)) -- (B, V)
      local rowu
      if u then
        rowu = {}
        for b = 1, B do rowu[b] = u[(step - 1) * B + b] end
      end
      local next = M.sample(logits, o, rowu)
      local all_done = true
      for b = 1, B do
        if done[b] then next[b] = o.eos_id end
        out[b][step] = next[b]
        if o.eos_id and next[b] == o.eos_id then done[b] = true end
        all_done = all_done and done[b] == true
      end
      if all_done or step == max_new then break end
      local col = {}
      for b = 1, B do col[b] = { next[b] } end
      local nt = wb.tensor(col, "i64") -- (B, 1)
      if use_cache then
        h = self:hidden_states(nt, { cache = cache })
      else
        seq = seq and wb.cat({ seq, nt }, 2) or nt
        if mask then mask = wb.cat({ as_valid(mask, B, mask:size(2)), wb.full({ B, 1 }, 1, "bool") }, 2) end
        h = self:hidden_states(seq, { prefix = o.prefix, mask = mask })
      end
    end
  end)
  self:train(was_training)
  if not ok then error(err, 0) end
  return wb.tensor(out, "i64")
end

return M
