--[[ ecgwb.losses: self-supervised objectives as plain functions over tensor
ops, so autograd differentiates them and a researcher can swap any one.

  wb.losses.w2v_contrastive(c, y, {num_negatives=100, temperature=0.1})
      wav2vec 2.0's masked prediction: c (B, M, F) the context at the M
      masked frames, y (B, M, F) the quantised targets there. Each c must
      pick its own y among K distractors drawn from the other masked frames
      of the same record (cosine similarity / κ, cross entropy on the
      positive). Distractors identical to the positive are excluded.
  wb.losses.diversity(avg_probs)
      wav2vec 2.0's codebook diversity loss: (G·V - Σ_g exp(H(p̄_g))) / (G·V),
      avg_probs (G, V) the batch-averaged softmax of each group.
  wb.losses.masked_mse(pred, target, weight)
      mean squared error over the entries where weight (broadcastable) is 1:
      masked reconstruction.
  wb.losses.cmsc(z, groups, {temperature=0.1})
      CMSC (Kiyasseh et al. 2021): z (N, D) segment embeddings, groups a Lua
      list of N record ids; segments of the same record are positives, all
      other segments in the batch negatives (multi-positive InfoNCE).

Alignment losses (UniECG stage 2: the LM's generation-token states, mapped to
the generator's condition space, against the condition the generator was
trained on); each takes pred, target (N, D) and returns a scalar:
  wb.losses.align_mse(pred, target)      mean squared error
  wb.losses.align_cosine(pred, target)   mean of 1 - cos(pred_i, target_i)
  wb.losses.info_nce(a, b, {temperature=0.07} or {logit_scale=t})
      symmetric InfoNCE (CLIP): row i of a and row i of b are the positive
      pair, every other row of the batch a negative; logits =
      cos(a_i, b_j) · scale with scale = 1/temperature or exp(logit_scale)
      (a learned tensor).
  wb.losses.align_infonce = info_nce
A new alignment loss is any function(pred, target) -> scalar tensor.
]]
local wb = require "ecgwb"

local M = {}

-- negative ids (B·M·K) as flat 0-based rows of (B·M): for each masked frame
-- of record b, K frames of the same record other than itself
local function sample_negatives(B, Mm, K)
  local u = wb.rand(B * Mm * K):totable()
  local ids, n = {}, 0
  for b = 0, B - 1 do
    for m = 0, Mm - 1 do
      for _ = 1, K do
        n = n + 1
        local r = math.floor(u[n] * (Mm - 1))                    -- 0 .. M-2
        if r >= m then r = r + 1 end
        ids[n] = b * Mm + r
      end
    end
  end
  return wb.tensor(ids, "i64")
end
M.sample_negatives = sample_negatives

function M.w2v_contrastive(c, y, o)
  o = o or {}
  local K, kappa = o.num_negatives or 100, o.temperature or 0.1
  local B, Mm, F = c:size(1), c:size(2), c:size(3)
  if Mm < 2 then error("w2v_contrastive: need at least 2 masked frames per record, got " .. Mm, 2) end
  local neg_ids = o.negatives or sample_negatives(B, Mm, K)
  local negs = y:reshape(B * Mm, F):index_select(1, neg_ids):reshape(B, Mm, K, F)
  local targets = wb.cat({ y:unsqueeze(3), negs }, 3)               -- (B, M, K+1, F)
  local logits = wb.cosine_similarity(c:unsqueeze(3):expand(B, Mm, K + 1, F), targets, -1) / kappa -- (B, M, K+1)
  -- a distractor equal to the positive is not a negative
  local same = wb.no_grad(function()
    local eq = negs:eq(y:unsqueeze(3)):to("f32"):mean(-1):eq(1):to("f32")   -- (B, M, K)
    return wb.cat({ wb.zeros(B, Mm, 1), eq }, 3):gt(0.5)
  end)
  logits = logits:masked_fill(same, -math.huge)
  local target = wb.zeros(B * Mm):to("i64")
  local loss = wb.cross_entropy(logits:reshape(B * Mm, K + 1), target)
  local acc = wb.no_grad(function()
    return logits:detach():reshape(B * Mm, K + 1):argmax(-1):eq(0):to("f32"):mean():item()
  end)
  return loss, acc
end

function M.diversity(avg_probs)
  local G, V = avg_probs:size(1), avg_probs:size(2)
  local perplexity = (avg_probs * (avg_probs + 1e-7):log()):sum(2):neg():exp():sum()
  return (perplexity * -1 + G * V) / (G * V)
end

function M.masked_mse(pred, target, weight)
  local w = weight:expand(pred:size())
  local se = (pred - target):square() * w
  return se:sum() / (w:sum() + 1e-8)
end

function M.cmsc(z, groups, o)
  local tau = (o and o.temperature) or 0.1
  local N = z:size(1)
  if #groups ~= N then error("cmsc: " .. N .. " embeddings but " .. #groups .. " group ids", 2) end
  local pos, self_ = {}, {}
  for i = 1, N do
    pos[i], self_[i] = {}, {}
    for j = 1, N do
      pos[i][j] = (i ~= j and groups[i] == groups[j]) and 1 or 0
      self_[i][j] = i == j and 1 or 0
    end
  end
  local P, E = wb.tensor(pos), wb.tensor(self_):gt(0.5)
  local npos = P:sum(2)                                           -- (N)
  local zn = wb.normalize(z, -1)
  local logits = wb.matmul(zn, zn:t()) / tau                      -- (N, N)
  local logp = wb.log_softmax(logits:masked_fill(E, -math.huge), -1)
  -- only P's entries count (the -inf diagonal is multiplied by 0 there: mask it first)
  local per = (logp:masked_fill(E, 0) * P):sum(2) / npos:clamp(1, math.huge)
  local has = npos:gt(0):to("f32")
  return (per * has):sum():neg() / has:sum():clamp(1, math.huge)
end

local function same_rows(op, a, b)
  if a:dim() ~= 2 or b:dim() ~= 2 or a:size(1) ~= b:size(1) or a:size(2) ~= b:size(2) then
    error(string.format("%s: pred and target must both be (N, D), got (%s) and (%s)", op,
      table.concat(a:size(), ", "), table.concat(b:size(), ", ")), 3)
  end
end

function M.align_mse(pred, target)
  same_rows("align_mse", pred, target)
  return (pred - target):square():mean()
end

function M.align_cosine(pred, target)
  same_rows("align_cosine", pred, target)
  return (wb.cosine_similarity(pred, target, -1) * -1 + 1):mean()
end

function M.info_nce(a, b, o)
  same_rows("info_nce", a, b)
  o = o or {}
  local logits = wb.matmul(wb.normalize(a, -1), wb.normalize(b, -1):t())      -- (N, N)
  if o.logit_scale then logits = logits * o.logit_scale:exp()
  else logits = logits / (o.temperature or 0.07) end
  local targets = wb.arange(0, a:size(1), 1, "i64")
  return (wb.cross_entropy(logits, targets) + wb.cross_entropy(logits:t(), targets)) / 2
end
M.align_infonce = M.info_nce

return M
