-- test_ecg_lm.lua: the ECG-language model (lua/ecgwb/models/ecg_lm.lua).
-- The prompt mask (loss = a hand computation over the report tokens only),
-- the ECG prefix reaching the logits, the pooling matrix, evidence() against
-- the delineator, save/load, errors, and a tiny model trained for a few
-- dozen steps on two simulated conditions (bradycardia / tachycardia; the
-- prompt says nothing) that names the right one for held-out records.
local T = dofile("tests/check.lua")
local wb = require "ecgwb"
local L = require "ecgwb.models.ecg_lm"

wb.manual_seed(3)
local FS, SECONDS = 100, 4
local texts = { "Sinus bradycardia.", "Sinus tachycardia.", "Measured: HR 50 bpm. Report: ", "Report: " }
local tok = L.train_tokenizer(texts, 300)
local small = {
  encoder = { base = "tiny", n_conv = 3, conv_channels = 16, d_model = 32, layers = 1, ffn = 64, heads = 2,
              pos_kernel = 4, pos_groups = 2 },
  lm = "tiny", lm_over = { n_layer = 1, n_head = 2, n_embd = 32, block_size = 64 },
  prefix_tokens = 4, global_token = true,
}

------------------------------------------------------------------ pooling matrix
do
  local A = L.pool_matrix(5, 2):totable() -- bins [0, 3) and [2, 5), as adaptive_avg_pool1d
  local want = { 1 / 3, 1 / 3, 1 / 3, 0, 0, 0, 0, 1 / 3, 1 / 3, 1 / 3 }
  local ok = true
  for i = 1, 10 do ok = ok and math.abs(A[i] - want[i]) < 1e-7 end
  T.ok(ok, "pool_matrix(5, 2) has PyTorch's adaptive bins")
end

------------------------------------------------------------------ the prompt mask
local m = L.EcgLM(small, tok)
local x = wb.randn(2, 12, FS * SECONDS) * 0.5
do
  local prompts = { "Measured: HR 50 bpm. Report: ", "Report: " }
  local targets = { "Sinus bradycardia.", "Sinus tachycardia." }
  local loss = m:loss { x = x, prompts = prompts, targets = targets }:item()
  -- by hand: full logits over the concatenated ids, NLL of the target tokens and <eos>
  local prefix = m:encode(x).prefix
  local P = prefix:size(2)
  local rows, nll, n = {}, 0, 0
  for b = 1, 2 do
    local p = tok:encode(prompts[b], { bos = true }):totable()
    local t = tok:encode(targets[b], { eos = true }):totable()
    local ids = {}
    for _, v in ipairs(p) do ids[#ids + 1] = v end
    for _, v in ipairs(t) do ids[#ids + 1] = v end
    local logits = m.lm(wb.tensor({ ids }, "i64"), { prefix = prefix:narrow(1, b, 1) }) -- (1, S, V)
    local V = logits:size(3)
    local lt = logits:totable()
    for j = #p + 1, #ids do -- token j is predicted by token position j - 1
      local off = (j - 2) * V
      local mx = -math.huge
      for k = 1, V do mx = math.max(mx, lt[off + k]) end
      local z = 0
      for k = 1, V do z = z + math.exp(lt[off + k] - mx) end
      nll = nll - (lt[off + ids[j] + 1] - mx - math.log(z))
      n = n + 1
    end
    rows[b] = #ids
  end
  T.ok(P == 5, "P prefix tokens and the global token")
  T.close(loss, nll / n, 1e-4, "loss = mean NLL of the report tokens (prompt masked, right padding)")
  -- the prompt's tokens carry no loss: a different prompt of the same length changes the loss only through context
  local ids, mask, labels = m:batch_ids(prompts, targets)
  local lab = labels:totable()
  local S = ids:size(2)
  local p1 = tok:encode(prompts[1], { bos = true }):numel()
  local masked = true
  for j = 1, p1 do masked = masked and lab[j] == -100 end
  for j = rows[2] + 1, S do masked = masked and lab[S + j] == -100 end
  T.ok(masked and lab[p1 + 1] ~= -100, "labels: -100 on <bos>, the prompt and the pads only")
  T.ok(mask:to("f32"):sum():item() == rows[1] + rows[2], "attention mask covers the real tokens")
end

------------------------------------------------------------------ the prefix reaches the logits
do
  local ids = tok:encode("Report: ", { bos = true }):reshape(1, -1)
  local a = wb.no_grad(function() return m.lm(ids, { prefix = m:encode(x:narrow(1, 1, 1)).prefix }) end)
  local b = wb.no_grad(function() return m.lm(ids, { prefix = m:encode(x:narrow(1, 2, 1)).prefix }) end)
  T.ok((a - b):abs():max():item() > 1e-4, "a different ECG gives different logits")
  local c = wb.no_grad(function() return m.lm(ids, { prefix = m:encode(x:narrow(1, 1, 1)).prefix }) end)
  T.close(a, c, 1e-6, "the same ECG, the same logits")
end

------------------------------------------------------------------ evidence = the delineator's numbers
do
  local r = wb.sim.record { fs = 250, seconds = 10, hr = 72, seed = 11, index = 0 }
  local ev = L.evidence(r.ecg, 250)
  local d = wb.signal.delineate(r.ecg, 250)
  local function num(key) return tonumber(ev:match(key .. " (%-?%d+)")) end
  T.ok(ev:find("^Measured: HR") ~= nil, "evidence sentence: " .. ev)
  T.ok(num("HR") == tonumber(string.format("%.0f", d.hr)) and num("PR") == tonumber(string.format("%.0f", d.pr))
    and num("QRS") == tonumber(string.format("%.0f", d.qrs)) and num("QT") == tonumber(string.format("%.0f", d.qt))
    and num("QTc") == tonumber(string.format("%.0f", d.qtc_bazett)) and num("axis") == tonumber(string.format("%.0f", d.axis)),
    "evidence numbers are wb.signal.delineate's: " .. ev)
  T.ok(math.abs(num("HR") - 72) <= 3 and math.abs(num("PR") - r.truth.pr_ms) <= 20, "and close to the truth")
  local slow = L.evidence(wb.sim.record { fs = 250, seconds = 10, hr = 45, pr_ms = 260, seed = 11, index = 1 }.ecg, 250)
  T.ok(slow:find("bpm %(low%)") and slow:find("PR %d+ ms %(long%)"), "out-of-range values are flagged: " .. slow)
  local evs = L.evidence(wb.stack({ r.ecg, r.ecg }, 1), 250)
  T.ok(#evs == 2 and evs[1] == ev, "batched evidence")
  T.fails(function() L.evidence(wb.zeros(3, 100), 250) end, "(12, L)")
end

------------------------------------------------------------------ retrieved findings in the prompt (RAG)
do
  local line = L.vote_line { { "SR", "LAD" }, { "SBRAD", "SR", "LAD", "1AVB" }, { "SR", "LVH" } }
  -- SR of the 2nd is implied by its bradycardia (not counted); order = the reports' order
  T.ok(line == "Similar ECGs: sinus rhythm 2/3, sinus bradycardia 1/3, first-degree AV block 1/3, " ..
    "left ventricular hypertrophy 1/3, left axis deviation 2/3.", "vote line: " .. line)
  T.ok(L.vote_line { { "NORM", "SR" }, { "NORM", "SR" } } == "Similar ECGs: normal ECG 2/2, sinus rhythm 2/2.", "unanimous")
  T.ok(L.vote_line { {} } == "Similar ECGs: no findings.", "a neighbour without findings")
  for code in pairs(wb.sim.phrases) do
    if code ~= "intervals" and code ~= "intervals_nop" and code ~= "abnormal" then
      T.ok(L.finding_phrases[code] ~= nil, "a short phrase for " .. code)
    end
  end
  T.fails(function() L.vote_line {} end, "non-empty list")
  T.fails(function() L.vote_line { { "SR", "XYZ" } } end, "unknown finding code 'XYZ'")
  T.fails(function() L.vote_line { "SR" } end, "list of codes")
  local p = L.prompt { evidence = "Measured: HR 50 bpm.", similar = line }
  T.ok(p == "Measured: HR 50 bpm.\n" .. line .. "\nReport: ", "similar goes between the evidence and Report:")
  local p1 = L.prompt { evidence = "Measured: HR 50 bpm.", similar = line, similar_first = true }
  T.ok(p1 == line .. "\nMeasured: HR 50 bpm.\nReport: ", "similar_first puts it before the evidence")
  local p2 = L.prompt { evidence = "Measured: HR 50 bpm.", retrieved = { "Sinus rhythm.", "LBBB." } }
  T.ok(p2 == "Similar ECG 1: Sinus rhythm.\nSimilar ECG 2: LBBB.\nMeasured: HR 50 bpm.\nReport: ", "retrieved reports go first")
end

------------------------------------------------------------------ errors
T.fails(function() L.EcgLM(small) end, "needs a tokenizer")
T.fails(function() L.EcgLM({ projector = "conv" }, tok) end, "projector must be")
T.fails(function() L.EcgLM({ bogus = 1 }, tok) end, "unknown config key 'bogus'")
T.fails(function() m:encode(wb.zeros(12, 400)) end, "x must be (B, 12, L)")
T.fails(function() m:encode(wb.zeros(1, 12, 16)) end, "fewer than the 4 prefix tokens")
T.fails(function() m:loss { x = x, prompts = { "a" }, targets = { "b" } } end, "2 records, 1 prompts")

------------------------------------------------------------------ a tiny model learns two conditions
do
  local function make(n, first)
    local list, texts_, labels = {}, {}, {}
    for i = 1, n do
      local brady = i % 2 == 1
      list[i] = { fs = FS, seconds = SECONDS, hr = brady and 45 + (i % 7) or 130 + (i % 11), seed = 5, index = first + i }
      texts_[i] = brady and "Sinus bradycardia." or "Sinus tachycardia."
      labels[i] = brady and { 1, 0 } or { 0, 1 }
    end
    return wb.sim.batch(list).ecg, texts_, wb.tensor(labels)
  end
  local xtr, ytr, ltr = make(64, 0)
  local xte, yte = make(12, 1000)
  wb.manual_seed(7)
  local cfg = {}
  for k, v in pairs(small) do cfg[k] = v end
  cfg.n_labels = 2
  local model = L.EcgLM(cfg, tok)
  -- the recipes' two stages: the encoder as a classifier, then the projector and LM on its frozen features
  local fe = model:fit_encoder({ x = xtr, labels = ltr }, { steps = 30, batch = 16, lr = 5e-3, log_every = 0 })
  local enc_before = model.encoder:state_dict()["post_extract_proj.weight"]:clone()
  local fit = model:fit({ x = xtr, prompt = function() return "Report: " end, target = function(i) return ytr[i] end },
    { steps = 60, batch = 16, lr = 5e-3, log_every = 0, freeze_encoder = true })
  T.close(model.encoder:state_dict()["post_extract_proj.weight"], enc_before, 0, "freeze_encoder leaves the encoder alone")
  T.ok(fe.losses[30] < 0.5 * fe.losses[1], string.format("encoder BCE %.3f -> %.3f", fe.losses[1], fe.losses[30]))
  local gen = model:generate(xte, { prompt = "Report: ", max_new_tokens = 8 })
  local right = 0
  for i = 1, #gen do if gen[i] == yte[i] then right = right + 1 end end
  print(string.format("tiny EcgLM: LM loss %.3f -> %.3f in 30 + 60 steps (%.1f s); %d/%d held-out reports right ('%s')",
    fit.losses[1], fit.losses[60], fe.seconds + fit.seconds, right, #gen, gen[1]))
  T.ok(right >= 10, string.format("the right finding for most held-out records: %d/12", right))

  -- save / load: the same generation and the same loss
  local dir = os.tmpname()
  os.remove(dir)
  model:save(dir)
  local back = L.load(dir)
  local gen2 = back:generate(xte, { prompt = "Report: ", max_new_tokens = 8 })
  T.ok(table.concat(gen2, "|") == table.concat(gen, "|"), "save/load: the same reports")
  local b1 = { x = xte:narrow(1, 1, 2), prompts = { "Report: ", "Report: " }, targets = { yte[1], yte[2] } }
  T.close(back:loss(b1), model:loss(b1), 1e-6, "save/load: the same loss")
  os.execute("rm -rf '" .. dir .. "'")

  -- a frozen encoder: precomputed features give the same loss as the encoder
  local f = model:precompute(b1.x)
  local b2 = { features = f, prompts = b1.prompts, targets = b1.targets }
  T.close(model:loss(b2), model:loss(b1), 1e-5, "precomputed features = the encoder's")
end

T.done()
