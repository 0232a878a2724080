-- test_gpt.lua: the decoder LM (lua/ecgwb/models/gpt.lua). Causality, KV
-- cache against recomputing the full forward, prefix embeddings, padding,
-- sampling supports and seeding, the text-encoder mode, errors, and a tiny
-- model memorising 20 clinical sentences (byte-level) then reproducing them
-- greedily. Prints decode tokens/s with and without the KV cache.
-- The tokenizer here is bytes: ids 0..255, then BOS 256, EOS 257, PAD 258.
local T = dofile("tests/check.lua")
local wb = require "ecgwb"
local gpt = require "ecgwb.models.gpt"
local optim = require "ecgwb.optim"

local BOS, EOS, PAD, V = 256, 257, 258, 259
local function encode(s)
  local t = { BOS }
  for i = 1, #s do t[#t + 1] = s:byte(i) end
  return t
end
local function decode(ids)
  local c = {}
  for _, i in ipairs(ids) do
    if i == EOS then break end
    if i < 256 then c[#c + 1] = string.char(i) end
  end
  return table.concat(c)
end
local function row(t, b, n) -- row b of a flat totable() of width n
  local r = {}
  for j = 1, n do r[j] = t[(b - 1) * n + j] end
  return r
end
local function same_list(a, b)
  if #a ~= #b then return false end
  for i = 1, #a do if a[i] ~= b[i] then return false end end
  return true
end

wb.manual_seed(5)
local cfg = gpt.config("tiny", { vocab_size = V, block_size = 128 })
local lm = gpt.GPT(cfg)
lm:eval()

------------------------------------------------------------------ structure
do
  local sd = lm:state_dict()
  T.ok(sd["h.0.attn.c_attn.weight"] ~= nil and sd["h.1.mlp.c_proj.weight"] ~= nil and sd["wpe.weight"] ~= nil,
    "nanoGPT parameter names")
  local n = 0
  for _ in pairs(sd) do n = n + 1 end
  -- wte, wpe, 2 x 12 block tensors, ln_f (2), text_proj (2); no lm_head (tied)
  T.ok(n == 2 + 2 * 12 + 2 + 2, "parameter tensors " .. n)
  local D = 64
  local expect = V * D + 128 * D + 2 * (2 * D + 3 * D * D + 3 * D + D * D + D + 2 * D + 4 * D * D + 4 * D + 4 * D * D + D)
    + 2 * D + D * D + D
  T.ok(lm:num_parameters() == expect, "parameter count " .. lm:num_parameters() .. " = " .. expect)
  print(string.format("tiny GPT (V=%d): %d parameters", V, lm:num_parameters()))
  local ids = wb.randint(0, 256, { 2, 7 })
  local logits, h = lm(ids)
  T.ok(same_list(logits:size(), { 2, 7, V }) and same_list(h:size(), { 2, 7, 64 }), "logits (B,T,V), hidden (B,T,D)")
  T.close(logits, wb.linear(h, lm.wte.weight), 1e-6, "the head is tied to wte")
end

------------------------------------------------------------------ causality
do
  local ids = wb.randint(0, 256, { 2, 12 })
  local a = lm(ids)
  local t = ids:totable()
  t[8], t[12 + 8] = (t[8] + 1) % 256, (t[12 + 8] + 7) % 256 -- change position 8 of both rows
  local ids2 = wb.tensor({ row(t, 1, 12), row(t, 2, 12) }, "i64")
  local b = lm(ids2)
  T.close(b:narrow(2, 1, 7), a:narrow(2, 1, 7), 0, "a future token does not change earlier logits")
  T.ok(T.relerr(b:narrow(2, 8, 5), a:narrow(2, 8, 5)) > 1e-3, "the changed token and later positions do change")
end

------------------------------------------------------------------ KV cache
do
  local ids = wb.randint(0, 256, { 2, 20 })
  local full = lm(ids)
  wb.no_grad(function()
    -- prefill 6, then one at a time
    local cache = lm:new_cache(2)
    local parts = { (lm(ids:narrow(2, 1, 6), { cache = cache })) }
    for t = 7, 14 do parts[#parts + 1] = lm(ids:narrow(2, t, 1), { cache = cache }) end
    -- then a chunk of 6 after 14 cached positions (queries see keys s <= past + t)
    parts[#parts + 1] = (lm(ids:narrow(2, 15, 6), { cache = cache }))
    T.ok(cache.len == 20, "cache length 20")
    T.close(wb.cat(parts, 2), full, 1e-5, "cached step-by-step logits equal the full forward")
  end)
  local prompt = ids:narrow(2, 1, 5)
  local g1 = lm:generate(prompt, { greedy = true, max_new_tokens = 30 })
  local g2 = lm:generate(prompt, { greedy = true, max_new_tokens = 30, use_cache = false })
  T.ok(same_list(g1:size(), { 2, 30 }), "generate returns (B, max_new_tokens)")
  T.ok(same_list(g1:totable(), g2:totable()), "greedy ids with the KV cache equal recomputing the full forward")
  -- and each greedy id is the argmax of the full forward on the sequence so far
  local seq = wb.cat({ prompt, g1 }, 2)
  local am = lm(seq):narrow(2, 5, 30):argmax(-1)
  T.ok(same_list(am:totable(), g1:totable()), "greedy ids are the full forward's argmax")
  T.fails(function() lm(ids, { cache = lm:new_cache(2) }) end, "wb.no_grad", "a cache under autograd")
  T.fails(function() wb.no_grad(function() lm(ids, { cache = lm:new_cache(2, 10) }) end) end, "max_len 10",
    "a cache too short")
end

------------------------------------------------------------------ prefix embeddings
do
  local A, Bt = wb.randint(0, 256, { 2, 4 }), wb.randint(0, 256, { 2, 9 })
  local prefix = wb.embedding(lm.wte.weight, A):detach() -- (2, 4, D)
  local lp, hp = lm(Bt, { prefix = prefix })
  local lf, hf = lm(wb.cat({ A, Bt }, 2))
  T.ok(same_list(lp:size(), { 2, 9, V }), "with a prefix, logits for the token positions only")
  T.close(lp, lf:narrow(2, 5, 9), 1e-5, "prefix logits equal the forward of the concatenation")
  T.close(hp, hf:narrow(2, 5, 9), 1e-5, "prefix hidden states equal those of the concatenation")
  local g1 = lm:generate(Bt, { prefix = prefix, greedy = true, max_new_tokens = 12 })
  local g2 = lm:generate(wb.cat({ A, Bt }, 2), { greedy = true, max_new_tokens = 12 })
  local g3 = lm:generate(Bt, { prefix = prefix, greedy = true, max_new_tokens = 12, use_cache = false })
  T.ok(same_list(g1:totable(), g2:totable()) and same_list(g1:totable(), g3:totable()), "generation from a prefix")
  local g4 = lm:generate(nil, { prefix = prefix, greedy = true, max_new_tokens = 12 })
  local g5 = lm:generate(A, { greedy = true, max_new_tokens = 12 })
  local g6 = lm:generate(nil, { prefix = prefix, greedy = true, max_new_tokens = 12, use_cache = false })
  T.ok(same_list(g4:totable(), g5:totable()) and same_list(g4:totable(), g6:totable()), "generation from a prefix alone")
  -- the loss: the last prefix position predicts the first token
  local l1 = lm:lm_loss(Bt, { prefix = prefix })
  local lab = wb.cat({ wb.full({ 2, 4 }, -100, "i64"), Bt }, 2)
  local l2 = lm:lm_loss(wb.cat({ A, Bt }, 2), { labels = lab })
  T.close(l1, l2, 1e-5, "lm_loss with a prefix")
  local l3 = wb.cross_entropy(lf:narrow(2, 1, 12):reshape(24, V), wb.cat({ A, Bt }, 2):narrow(2, 2, 12):reshape(24))
  T.close(lm:lm_loss(wb.cat({ A, Bt }, 2)), l3, 1e-5, "lm_loss is the shifted cross entropy")
end

------------------------------------------------------------------ padding
do
  local a, b = wb.randint(0, 256, { 1, 8 }), wb.randint(0, 256, { 1, 5 })
  local pads = wb.full({ 1, 3 }, PAD, "i64")
  local ids = wb.cat({ a, wb.cat({ pads, b }, 2) }, 1) -- row 2 left-padded
  local mask = wb.tensor({ { 1, 1, 1, 1, 1, 1, 1, 1 }, { 0, 0, 0, 1, 1, 1, 1, 1 } }, "i64")
  local l = lm(ids, { mask = mask })
  T.close(l:narrow(1, 1, 1), lm(a), 1e-5, "an unpadded row is unaffected by the mask")
  T.close(l:narrow(1, 2, 1):narrow(2, 4, 5), lm(b), 1e-5, "a left-padded row equals the row alone")
  T.ok(T.relerr(lm(ids):narrow(1, 2, 1):narrow(2, 4, 5), lm(b)) > 1e-3, "without the mask the pads do matter")
  -- right padding
  local r = wb.cat({ b, pads }, 2)
  local lr = lm(r, { mask = wb.tensor({ { 1, 1, 1, 1, 1, 0, 0, 0 } }) })
  T.close(lr:narrow(2, 1, 5), lm(b), 1e-5, "a right-padded row equals the row alone")
  -- batched generation with left padding, cached and not, equals each row alone
  local g = lm:generate(ids, { mask = mask, greedy = true, max_new_tokens = 10 })
  local gnc = lm:generate(ids, { mask = mask, greedy = true, max_new_tokens = 10, use_cache = false })
  local ga = lm:generate(a, { greedy = true, max_new_tokens = 10 })
  local gb = lm:generate(b, { greedy = true, max_new_tokens = 10 })
  local gt = g:totable()
  T.ok(same_list(row(gt, 1, 10), ga:totable()) and same_list(row(gt, 2, 10), gb:totable()),
    "left-padded batched generation equals each row alone")
  T.ok(same_list(gt, gnc:totable()), "padded generation: cache equals no cache")
  T.fails(function() lm:generate(r, { mask = wb.tensor({ { 1, 1, 1, 1, 1, 0, 0, 0 } }) }) end, "left",
    "generation with right padding is refused")
  -- loss ignores pads: the padded row's loss equals the row alone
  local lp = lm:lm_loss(wb.cat({ b, pads }, 2), { mask = wb.tensor({ { 1, 1, 1, 1, 1, 0, 0, 0 } }) })
  T.close(lp, lm:lm_loss(b), 1e-5, "lm_loss ignores pads")
end

------------------------------------------------------------------ sampling
do
  -- probabilities in a shuffled id order, so the supports are not a prefix of the ids
  local probs = { 0.05, 0.3, 0.01, 0.15, 0.1, 0.2, 0.03, 0.1, 0.05, 0.01 }
  local lg = {}
  for i, p in ipairs(probs) do lg[i] = math.log(p) + 2 end -- logits up to a constant
  local N = 4000
  local logits = wb.tensor({ lg }):expand(N, #lg):contiguous()
  local function freq(o)
    wb.manual_seed(11)
    local ids = gpt.sample(logits, o)
    local c = {}
    for i = 0, #lg - 1 do c[i] = 0 end
    for _, id in ipairs(ids) do c[id] = c[id] + 1 / N end
    return c
  end
  local function check(name, o, support)
    local c = freq(o)
    local inside, total = true, 0
    for _, id in ipairs(support) do total = total + probs[id + 1] end
    local set = {}
    for _, id in ipairs(support) do set[id] = true end
    local worst = 0
    for id = 0, #lg - 1 do
      local want = set[id] and probs[id + 1] / total or 0
      if (c[id] > 0) ~= (want > 0) then inside = false end
      worst = math.max(worst, math.abs(c[id] - want))
    end
    T.ok(inside, name .. ": samples fall exactly on the support")
    T.ok(worst < 0.03, name .. ": frequencies match the renormalised probabilities (max error " .. worst .. ")")
  end
  check("no filter", {}, { 0, 1, 2, 3, 4, 5, 6, 7, 8, 9 })
  check("top_k=3", { top_k = 3 }, { 1, 5, 3 })
  check("top_p=0.45", { top_p = 0.45 }, { 1, 5 }) -- 0.3 + 0.2 >= 0.45
  check("top_p=0.55", { top_p = 0.55 }, { 1, 5, 3 }) -- 0.5 < 0.55 <= 0.65
  check("top_k=4, top_p=0.7", { top_k = 4, top_p = 0.7 }, { 1, 5, 3 }) -- of 0.85: 0.5/.85 < 0.7 <= 0.65/.85
  -- top_k keeps ties with the k-th logit
  local tie = gpt.sample(wb.tensor({ { 1, 3, 3, 0 } }):expand(500, 4):contiguous(), { top_k = 1 })
  local seen = {}
  for _, id in ipairs(tie) do seen[id] = true end
  T.ok(seen[1] and seen[2] and not seen[0] and not seen[3], "top_k keeps ties")
  -- temperature: T=2 flattens p^(1/2); T -> 0 is greedy
  local c = freq({ temperature = 2 })
  local z = 0
  for _, p in ipairs(probs) do z = z + math.sqrt(p) end
  T.ok(math.abs(c[1] - math.sqrt(0.3) / z) < 0.03 and math.abs(c[2] - math.sqrt(0.01) / z) < 0.03,
    "temperature 2 samples p^(1/2)")
  local g = gpt.sample(logits:narrow(1, 1, 50), { temperature = 1e-6 })
  local all1 = true
  for _, id in ipairs(g) do all1 = all1 and id == 1 end
  T.ok(all1, "temperature 1e-6 samples the argmax")

  local prompt = wb.randint(0, 256, { 2, 4 })
  local greedy = lm:generate(prompt, { greedy = true, max_new_tokens = 20 }):totable()
  T.ok(same_list(lm:generate(prompt, { temperature = 1e-6, seed = 3, max_new_tokens = 20 }):totable(), greedy),
    "generate: temperature -> 0 equals greedy")
  T.ok(same_list(lm:generate(prompt, { temperature = 0, max_new_tokens = 20 }):totable(), greedy),
    "generate: temperature 0 is greedy")
  local st = wb.rng_state()
  local s1 = lm:generate(prompt, { seed = 7, top_k = 50, top_p = 0.95, max_new_tokens = 20 }):totable()
  local st2 = wb.rng_state()
  T.ok(st.seed == st2.seed and st.offset == st2.offset, "seeded generation leaves the global RNG where it was")
  local s2 = lm:generate(prompt, { seed = 7, top_k = 50, top_p = 0.95, max_new_tokens = 20 }):totable()
  local s3 = lm:generate(prompt, { seed = 8, top_k = 50, top_p = 0.95, max_new_tokens = 20 }):totable()
  local s4 = lm:generate(prompt, { seed = 7, top_k = 50, top_p = 0.95, max_new_tokens = 20, use_cache = false }):totable()
  T.ok(same_list(s1, s2), "the same seed gives the same samples")
  T.ok(not same_list(s1, s3), "another seed gives other samples")
  T.ok(same_list(s1, s4), "seeded sampling: cache equals no cache")
  -- eos: a row that emits it keeps emitting it; generation stops when all rows have
  local eos = greedy[3]
  local function first(b) -- the step at which row b's greedy path emits eos, or 20
    for j = 1, 20 do if greedy[(b - 1) * 20 + j] == eos then return j end end
    return 20
  end
  local e1 = lm:generate(prompt:narrow(1, 1, 1), { greedy = true, max_new_tokens = 20, eos_id = eos }):totable()
  T.ok(#e1 == first(1) and #e1 <= 3 and e1[#e1] == eos, "eos stops a single row")
  local e = lm:generate(prompt, { greedy = true, max_new_tokens = 20, eos_id = eos }):totable()
  local n = #e / 2
  local ok = n == math.max(first(1), first(2))
  for b = 1, 2 do
    for j = 1, n do ok = ok and e[(b - 1) * n + j] == (j <= first(b) and greedy[(b - 1) * 20 + j] or eos) end
  end
  T.ok(ok, "eos: a finished row emits eos until every row has finished")
end

------------------------------------------------------------------ text encoder
do
  local b = wb.randint(0, 256, { 1, 6 })
  local pads = wb.full({ 1, 2 }, PAD, "i64")
  local ids = wb.cat({ wb.cat({ b, pads }, 2), wb.cat({ pads, b }, 2) }, 1)
  local mask = wb.tensor({ { 1, 1, 1, 1, 1, 1, 0, 0 }, { 0, 0, 1, 1, 1, 1, 1, 1 } })
  local z = lm:encode_text(ids, { mask = mask })
  local z1 = lm:encode_text(b)
  T.ok(same_list(z:size(), { 2, 64 }), "encode_text gives (B, proj_dim)")
  T.close(z:narrow(1, 1, 1), z1, 1e-5, "mean pooling: right padding ignored")
  T.close(z:narrow(1, 2, 1), z1, 1e-5, "mean pooling: left padding ignored")
  local h = select(2, lm(b))
  T.close(z1, lm.text_proj(h:mean(2)), 1e-6, "mean pooling is the mean of the final hidden states")
  local zl = lm:encode_text(ids, { mask = mask, pool = "last" })
  T.close(zl:narrow(1, 1, 1), lm.text_proj(h:narrow(2, 6, 1):reshape(1, 64)), 1e-5, "last pooling: last real token (right pad)")
  T.close(zl:narrow(1, 2, 1), lm.text_proj(h:narrow(2, 6, 1):reshape(1, 64)), 1e-5, "last pooling: last real token (left pad)")
  lm:zero_grad()
  z:sum():backward()
  T.ok(lm.text_proj.weight.grad ~= nil and lm.wte.weight.grad ~= nil, "encode_text is differentiable")
  lm:zero_grad()
end

------------------------------------------------------------------ errors
do
  T.fails(function() lm(wb.zeros(2, 3)) end, "i64", "f32 ids")
  T.fails(function() lm(wb.zeros(2, 200):to("i64")) end, "block_size", "too long")
  T.fails(function() lm(wb.zeros(2, 3):to("i64"), { mask = wb.ones(2, 4) }) end, "mask must be (B, T)", "mask shape")
  T.fails(function() lm(wb.zeros(2, 3):to("i64"), { prefix = wb.zeros(2, 1, 32) }) end, "prefix must be", "prefix width")
  T.fails(function() lm(wb.zeros(2, 3):to("i64"), { prefix = wb.zeros(3, 1, 64) }) end, "batch size", "prefix batch")
  T.fails(function() lm:generate(wb.zeros(1, 100):to("i64"), { max_new_tokens = 40 }) end, "block_size", "generate too long")
  T.fails(function() gpt.GPT({ n_layer = 1 }) end, "vocab_size", "config without vocab")
  T.fails(function() gpt.config("huge") end, "unknown config", "unknown config")
  T.fails(function() wb.no_grad(function() lm(wb.zeros(3, 2):to("i64"), { cache = lm:new_cache(2) }) end) end,
    "cache is for batch 2", "cache batch")
end

-- 20 short clinical sentences: the tokenizer's corpus and the LM's memorisation task
local SENTENCES = {
  "sinus rhythm. normal ecg.",
  "sinus bradycardia, heart rate 48 bpm.",
  "sinus tachycardia at 112 bpm.",
  "atrial fibrillation with rapid ventricular response.",
  "first degree av block, pr 240 ms.",
  "left bundle branch block.",
  "right bundle branch block, qrs 130 ms.",
  "left ventricular hypertrophy by voltage criteria.",
  "anterior st elevation, consider acute infarction.",
  "inferior q waves, old myocardial infarction.",
  "prolonged qt interval, qtc 510 ms.",
  "premature ventricular complexes, bigeminy.",
  "low voltage qrs in limb leads.",
  "t wave inversion in v1 to v3.",
  "atrial flutter with 2:1 block.",
  "junctional rhythm, rate 55 bpm.",
  "paced rhythm, ventricular pacing.",
  "wolff-parkinson-white pattern, short pr.",
  "borderline ecg, nonspecific st changes.",
  "hyperkalemia: peaked t waves, wide qrs.",
}

------------------------------------------------------------------ with the BPE tokenizer
-- ids and the left-padded bool mask of tokenizer:encode_batch feed the LM
-- directly; batched generation equals each row alone
do
  local tok = wb.tokenizer.train(SENTENCES, { vocab_size = 300 })
  local texts = { "sinus rhythm", "left bundle branch block, qrs" }
  local x, m = tok:encode_batch(texts, { bos = true, pad_left = true })
  local tlm = gpt.GPT(gpt.config("tiny", { vocab_size = tok:vocab_size(), block_size = 64 }))
  local g = tlm:generate(x, { mask = m, greedy = true, max_new_tokens = 6 }):totable()
  local ok = true
  for b = 1, 2 do
    local alone = tlm:generate(tok:encode(texts[b], { bos = true }):reshape(1, -1), { greedy = true, max_new_tokens = 6 })
    ok = ok and same_list(row(g, b, 6), alone:totable())
  end
  T.ok(ok, "tokenizer batch (left padded) generation equals each row alone")
  T.ok(type(tok:decode(wb.tensor(row(g, 1, 6), "i64"))) == "string", "generated ids decode")
end

------------------------------------------------------------------ training: memorise 20 sentences
do
  wb.manual_seed(2024)
  local mem = gpt.GPT(gpt.config("tiny", { vocab_size = V, n_embd = 128, block_size = 64 }))
  local maxlen = 0
  local rows = {}
  for i, s in ipairs(SENTENCES) do
    rows[i] = encode(s)
    rows[i][#rows[i] + 1] = EOS
    maxlen = math.max(maxlen, #rows[i])
  end
  local ids, mask = {}, {}
  for i, r in ipairs(rows) do -- right padding for training
    ids[i], mask[i] = {}, {}
    for j = 1, maxlen do
      ids[i][j], mask[i][j] = r[j] or PAD, r[j] and 1 or 0
    end
  end
  ids, mask = wb.tensor(ids, "i64"), wb.tensor(mask, "i64")
  -- the lowest loss any model can reach here: the entropy of the next byte
  -- given the text so far, over the training set (several sentences share
  -- their first bytes, so it is not 0)
  local count = {}
  for _, r in ipairs(rows) do
    for j = 1, #r do
      local k = table.concat(r, ",", 1, j)
      count[k] = (count[k] or 0) + 1
    end
  end
  local floor, ntok = 0, 0
  for _, r in ipairs(rows) do
    for j = 2, #r do
      floor = floor - math.log(count[table.concat(r, ",", 1, j)] / count[table.concat(r, ",", 1, j - 1)])
      ntok = ntok + 1
    end
  end
  floor = floor / ntok
  local lr = 5e-3
  local opt = optim.AdamW(mem:parameters(), { lr = lr, weight_decay = 0, betas = { 0.9, 0.98 } })
  local t0, c0 = wb.now(), os.clock()
  local first, loss
  local steps = 100
  for step = 1, steps do
    opt.config.lr = lr * math.min(1, step / 20)
    local l = mem:lm_loss(ids, { mask = mask })
    loss = l:item()
    first = first or loss
    opt:zero_grad()
    l:backward()
    opt:step()
  end
  local secs, cpu = wb.now() - t0, os.clock() - c0
  print(string.format("memorise 20 sentences (%d bytes at most): loss %.3f -> %.4f (floor %.4f) in %d steps, %.1f s (%.1f s of CPU)",
    maxlen, first, loss, floor, steps, secs, cpu))
  -- observed: 5.63 -> 0.082 against the floor 0.0801 (5-10 s of CPU); chance is ln(259) = 5.56
  T.ok(first > 5, "the untrained model is at chance: " .. first)
  T.ok(loss < floor + 0.01, string.format("memorised: loss %.4f < floor %.4f + 0.01", loss, floor))
  -- (the time is printed, not checked: timings never gate the tests; make bench measures speed)
  local PROMPT = 10 -- characters; no two sentences share their first 10
  local starts = {}
  for _, s in ipairs(SENTENCES) do
    T.ok(not starts[s:sub(1, PROMPT)], "the prompt determines the sentence: " .. s)
    starts[s:sub(1, PROMPT)] = true
  end
  local good, bad = 0, {}
  for _, s in ipairs(SENTENCES) do
    local prompt = encode(s:sub(1, PROMPT))
    local out = mem:generate(wb.tensor({ prompt }, "i64"), { greedy = true, max_new_tokens = 50, eos_id = EOS })
    local text = s:sub(1, PROMPT) .. decode(out:totable())
    if text == s then good = good + 1 else bad[#bad + 1] = text end
  end
  print(string.format("greedy generation from the first %d characters reproduces %d/20 sentences", PROMPT, good))
  T.ok(good == 20, "every sentence reproduced; wrong: " .. table.concat(bad, " | "))

  ---------------------------------------------------------------- decode tokens/s
  -- tokens per wall second (printed) and per CPU second (compared: the
  -- machine is shared, and CPU time does not count other people's work)
  local function tps(model, prompt_len, n, use_cache)
    local prompt = wb.randint(0, 256, { 1, prompt_len })
    model:generate(prompt, { greedy = true, max_new_tokens = n, use_cache = use_cache }) -- warm the primitive cache
    local t, c = wb.now(), os.clock()
    model:generate(prompt, { greedy = true, max_new_tokens = n, use_cache = use_cache })
    return n / (wb.now() - t), n / (os.clock() - c)
  end
  local a, ac = tps(mem, 8, 48, true)
  local b, bc = tps(mem, 8, 48, false)
  print(string.format("decode, tiny (2 x 128) batch 1, 8 + 48 tokens: %.0f tokens/s with the KV cache, %.0f without "
    .. "(per CPU second: %.0f, %.0f)", a, b, ac, bc))
  local small = gpt.GPT(gpt.config("small", { vocab_size = V, block_size = 256 }))
  local c1, c1c = tps(small, 32, 96, true)
  local c2, c2c = tps(small, 32, 96, false)
  print(string.format("decode, small (6 x 384) batch 1, 32 + 96 tokens: %.0f tokens/s with the KV cache, %.0f without "
    .. "(per CPU second: %.0f, %.0f)", c1, c2, c1c, c2c))
end

T.done()
