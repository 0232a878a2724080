-- test_uniecg.lua: the unified model of recipes/two_stage.lua
-- (lua/ecgwb/models/uniecg.lua) at toy size: the <gen> states do not depend
-- on padding, the condition space is centred and normalised and its text
-- head learns to pair reports with their ECGs, x0 is recovered
-- from the true noise, the generator loss has the parts its switches ask for
-- and trains, the alignment head and the <gen> embeddings learn (with
-- gen_embed = the tokenizer's <gen> row the states are the LM's own), the
-- experience prior (the neighbour's beat on given peaks plus its residual),
-- the prior_input path (dropped rows lose it, save/load), sampling that
-- starts from the prior (prior_start) and respond() routes requests.
local T = dofile("tests/check.lua")
local wb = require "ecgwb"
local L = require "ecgwb.models.ecg_lm"
local U = require "ecgwb.models.uniecg"

wb.manual_seed(5)
local reports = { "Sinus bradycardia at 50 bpm.", "Sinus tachycardia at 120 bpm.", "Atrial fibrillation, rate 90/min.",
                  "Left bundle branch block." }
local tok = L.train_tokenizer(reports, 300)
local lm = L.EcgLM({
  encoder = { base = "tiny", n_conv = 3, conv_channels = 16, d_model = 32, layers = 1, ffn = 64, heads = 2,
              pos_kernel = 4, pos_groups = 2 },
  lm = "tiny", lm_over = { n_layer = 1, n_head = 2, n_embd = 32, block_size = 160 }, prefix_tokens = 4,
}, tok)
local tiny = { gen_tokens = 2, align_hidden = 32, unet_channels = 8, unet = "tiny", vae = "tiny",
               sediff = { dim = 16, hidden = 32, k = 2, beat_len = 32 }, sample_steps = 3, fs_model = 100, samples = 512,
               prior_start = false }
local uni = U.UniECG(tiny, lm)
uni:freeze_lm()
T.ok(#lm:parameters() > 0 and not lm:parameters()[1].requires_grad, "freeze_lm leaves the LM without gradients")

-- <gen> states: the last K positions whatever the padding
local reqs = { "Generate an ECG showing atrial fibrillation at 110 bpm.", "Create an ECG with LBBB." }
local both = uni:gen_states(reqs)
T.ok(both:size(1) == 2 and both:size(2) == 2 * 32, "gen_states (2, K * Dl)")
T.close(both:select(1, 2), uni:gen_states({ reqs[2] }):select(1, 1), 1e-4, "left padding does not change the <gen> states")

-- the condition space
T.fails(function() uni:text_embedding(reports) end, "set_center(training texts) first")
uni:set_center(reports)
local f = uni:text_features(reports)
T.ok(f:size(1) == 4 and f:size(2) == 2 * 32, "text features (N, 2 Dl): mean token embedding, mean hidden state")
local off_centre = f:mean(1):abs():max():item()
T.ok(off_centre < 1e-5, string.format("the features are centred on the training texts (|mean| %.1e)", off_centre))
-- the first half is the mean of the text's token embeddings (wte rows, <bos> included), centred: computed row by row here
do
  local rows = {}
  for i, r in ipairs(reports) do
    local ids = tok:encode(r, { bos = true })
    rows[i] = lm.lm.wte.weight:index_select(1, ids):mean(1, true)
  end
  local m = wb.cat(rows, 1)
  T.close(f:narrow(2, 1, 32), m - m:mean(1, true), 1e-5, "text features' first half: the centred mean token embedding")
  local h = U.UniECG({ gen_tokens = 2, align_hidden = 32, unet_channels = 8, unet = "tiny", vae = "tiny", text_features = "hidden",
                       sediff = { dim = 16, hidden = 32, k = 2, beat_len = 32 }, samples = 512 }, lm)
  h:set_center(reports)
  T.close(h:text_features(reports), f:narrow(2, 33, 32), 1e-5, "text_features 'hidden': the second half alone")
  T.fails(function() U.UniECG({ text_features = "words" }, lm) end, "text_features must be 'tokens+hidden' or 'hidden'")
end
local e = uni:text_embedding(reports)
T.ok(e:size(2) == uni.cfg.text_dim, "text embeddings (N, Dt)")
T.close(e:square():sum(2), wb.ones(4), 1e-5, "text embeddings have unit norm")
T.close(uni:text_embedding({ reports[1] }), e:narrow(1, 1, 1), 1e-4, "one text alone embeds as in a batch")
T.close(uni:text_embedding(f), e, 1e-6, "features or texts give the same embedding")
-- the text head learns, contrastively, which ECG each report belongs to:
-- four ECGs of the four reports' conditions, through the frozen encoder
do
  local xs = {}
  for i, o in ipairs { { hr = 50 }, { hr = 120 }, { rhythm = "afib", hr = 90 }, { bbb = "left", hr = 70 } } do
    o.fs, o.seconds, o.seed = 100, 4, i
    xs[i] = wb.sim.ecg(o):unsqueeze(1)
  end
  local pooled = lm:embed(wb.cat(xs, 1))
  local ps = uni.text_head:parameters()
  for _, p in ipairs(uni.ecg_head:parameters()) do ps[#ps + 1] = p end
  local opt = wb.optim.AdamW(ps, { lr = 1e-2, weight_decay = 0 })
  local l0 = uni:contrastive_loss(f, pooled):item()
  T.close(l0, wb.losses.info_nce(uni.text_head(f), uni.ecg_head(pooled), { temperature = uni.cfg.temperature }):item(), 1e-6,
    "contrastive_loss is InfoNCE of the two heads")
  for _ = 1, 60 do
    local l = uni:contrastive_loss(f, pooled)
    opt:zero_grad(); l:backward(); opt:step()
  end
  local l1 = uni:contrastive_loss(f, pooled):item()
  print(string.format("text head InfoNCE %.3f -> %.3f", l0, l1))
  T.ok(l1 < 0.2 * l0, string.format("the text head's InfoNCE falls: %.3f -> %.3f", l0, l1))
  local sim = wb.no_grad(function() return uni:text_embedding(f):matmul(wb.normalize(uni.ecg_head(pooled), -1):t()) end)
  T.ok(table.concat(sim:argmax(2):totable(), ",") == "0,1,2,3", "each report is nearest to its own ECG")
  e = uni:text_embedding(reports)
end

-- x0 from the true noise at any timestep
do
  local x0, noise, t = wb.randn(3, 4, 16), wb.randn(3, 4, 16), wb.tensor({ 0, 500, 999 }, "i64")
  local xt = uni.D:q_sample(x0, t, noise)
  T.ok(uni.D.prediction == "v", "the default denoiser predicts v")
  local got, ab = uni.D:predict_x0(uni.D:target(x0, t, noise), xt, t)
  T.close(got, x0, 1e-3, "predict_x0 with the true v")
  local E = require("ecgwb.models.diffusion").Diffusion { schedule = uni.cfg.schedule, T = uni.cfg.T, prediction = "eps" }
  T.close(E:predict_x0(noise, E:q_sample(x0, t, noise), t), x0, 1e-3, "predict_x0 with the true eps")
  T.close(ab, wb.tensor { uni.D.alphas_cumprod[1], uni.D.alphas_cumprod[501], uni.D.alphas_cumprod[1000] }, 1e-6, "alpha_bar per row")
end

-- the generator loss: parts by switch, and it trains
local N = 4
local x = wb.sim.batch({ fs = 102.4, seconds = 5, hr = 70, seed = 1, index = 0 }, N).ecg      -- (4, 12, 512)
local t0 = wb.now()
local tm, _, valid = require("ecgwb.models.sediff").record_templates(x, 102.4, 32)
uni:set_bank(e)
local function batch()
  return { z0 = wb.no_grad(function() return uni.vae:latent(x) end), emb = e,
           age = wb.full({ N }, 60), sex = wb.ones(N), hr = wb.full({ N }, 70), templates = tm, valid = valid }
end
local params = uni.unet:parameters()
for _, p in ipairs(uni.sediff:parameters()) do params[#params + 1] = p end
local opt = wb.optim.AdamW(params, { lr = 2e-3, weight_decay = 0 })
local first, last
for step = 1, 15 do
  local loss, parts = uni:generator_loss(batch(), { p_uncond = 0 })
  T.ok(loss:item() == loss:item(), "finite loss at step " .. step)
  if step == 1 then
    T.ok(parts.diffusion and parts.template, "prior on: diffusion and template parts")
    first = parts.template
  end
  opt:zero_grad(); loss:backward(); opt:step()
  last = parts.template
end
print(string.format("generator steps: %.1f s", wb.now() - t0))
T.ok(last < first, string.format("the beat decoder's template loss falls: %.4f -> %.4f", first, last))
local off = U.UniECG({ gen_tokens = 2, align_hidden = 32, unet_channels = 8, unet = "tiny", vae = "tiny",
                       sediff = { dim = 16, hidden = 32, prior = false, retrieval = false, beat_len = 32 } }, lm)
off:set_center(reports)
local b = batch()
b.templates, b.valid = nil, nil
local _, parts = off:generator_loss(b)
T.ok(parts.diffusion and not parts.template and not parts.consistency, "prior off: the diffusion loss alone")
T.ok(off.sediff:num_tokens() < uni.sediff:num_tokens(), "retrieval off: fewer condition tokens")

-- alignment: the head and the <gen> embeddings learn to map requests onto
-- their reports; the frozen LM reads gen_embed in place of the <gen> rows
do
  local ids, mask = uni:request_ids(reqs)
  local Kd = uni.gen_embed:size(1)
  local plain = wb.no_grad(function()
    local h = lm.lm:hidden_states(ids, { mask = mask })
    return h:narrow(2, ids:size(2) - Kd + 1, Kd):reshape(2, Kd * h:size(3))
  end)
  local saved = uni.gen_embed:clone()
  uni.gen_embed:copy_(lm.lm.wte.weight:select(1, uni.gen_id + 1):reshape(1, 32):expand(Kd, 32))
  T.close(uni:gen_states(reqs), plain, 1e-5, "gen_embed = the <gen> row: the LM's own states at <gen>")
  uni.gen_embed:copy_(saved)
  T.fails(function() lm.lm:hidden_states(ids, { embeds = wb.zeros(2, 3, 32) }) end, "embeds must be (2, " .. ids:size(2) .. ", 32)")
end
local ids, mask = uni:request_ids(reqs)
local tg = e:narrow(1, 3, 2)
local ge0 = uni.gen_embed:clone()
local aps = uni.align:parameters()
aps[#aps + 1] = uni.gen_embed
local aopt = wb.optim.AdamW(aps, { lr = 1e-2 })
local a0 = wb.losses.align_mse(uni:aligned(uni:gen_states_of(ids, mask)), tg):item()
for _ = 1, 100 do
  local l = wb.losses.align_mse(uni:aligned(uni:gen_states_of(ids, mask)), tg)
  aopt:zero_grad(); l:backward(); aopt:step()
end
local a1 = wb.losses.align_mse(uni:aligned(uni:gen_states(reqs)), tg):item()
T.ok(a1 < 0.1 * a0, string.format("alignment loss %.4f -> %.4f", a0, a1))
T.ok((uni.gen_embed - ge0):abs():max():item() > 1e-3, "the <gen> embeddings trained")
T.ok(not lm:parameters()[1].grad or lm:parameters()[1].grad:abs():max():item() == 0, "the LM stays frozen")

-- prior_input: the denoiser reads the latent of the nearest training
-- record's beat laid on a rhythm; dropped rows lose it
do
  local sd = require "ecgwb.models.sediff"
  local cfg = {}
  for k, v in pairs(tiny) do cfg[k] = v end
  cfg.prior_input = true
  local pu = U.UniECG(cfg, lm)
  pu:set_center(reports)
  pu:set_bank(e)
  local _, rr = sd.record_templates(x, 102.4, 32)
  T.fails(function() pu:prior_latent(e, { 70, 70, 70, 70 }) end, "set_experience first")
  T.fails(function() pu:set_experience(tm, rr, wb.tensor { 0, 0, 0.2, 0 }, wb.zeros(4, 12, 100)) end, "residuals (N, leads, 512) expected")
  local resid = wb.randn(4, 12, 512) * 0.05
  pu:set_experience(tm, rr, wb.tensor { 0, 0, 0.2, 0 }, resid)
  local zp = pu:prior_latent(e, wb.tensor { 70, 0 / 0, 120, 70 }, { exclude = { 0, 1, 2, 3 } })
  T.ok(zp:size(1) == 4 and zp:size(2) == 4 and zp:size(3) == 64, "prior latents (B, 4, samples / 8)")
  -- the same as the neighbour's beat laid on given peaks by hand, plus its residual
  local pk = { { 10, 80, 150 }, { 20, 90 }, { 5 }, { 40, 300 } }
  local nb = pu.sediff.retriever:topk(e, 1, { exclude = { 0, 1, 2, 3 } }):reshape(4)
  local ref = sd.beat_train(tm:index_select(1, nb), rr:index_select(1, nb), pk, 102.4, 512) + resid:index_select(1, nb)
  T.close(pu:prior_ecg(e, { 70, 70, 70, 70 }, { exclude = { 0, 1, 2, 3 }, peaks = pk }), ref, 1e-5, "prior_ecg = the neighbour's beat on the peaks + its residual")
  T.close(pu:prior_latent(e, { 70, 70, 70, 70 }, { exclude = { 0, 1, 2, 3 }, peaks = pk }), pu.vae:latent(ref), 1e-5, "prior_latent = its latent")
  -- the experience by a request's words: the record of its nearest training request
  T.fails(function() pu:experience_rows({ reqs[1] }) end, "set_request_bank first")
  T.fails(function() pu:set_request_bank(wb.randn(3, 5), wb.tensor({ 0, 1, 2 }, "i64")) end,
    "embeddings (M, 64) and record rows (M) i64 expected, got f32[3,5] and i64[3]")
  T.fails(function() pu:set_request_bank(wb.randn(3, 64), wb.tensor { 0, 1, 2 }) end, "record rows (M) i64 expected")
  local bank_req = { reqs[2], "Generate an ECG with low QRS voltage.", reqs[1] }
  pu:set_request_bank(pu:text_embedding(bank_req), wb.tensor({ 1, 0, 3 }, "i64"))
  local got = pu:experience_rows({ reqs[1], reqs[2] }):totable()
  T.ok(got[1] == 3 and got[2] == 1, "a training request retrieves its own record: " .. table.concat(got, ", "))
  local given = wb.tensor({ 3, 1 }, "i64")
  T.close(pu:prior_ecg(e:narrow(1, 1, 2), { 70, 70 }, { rows = given, peaks = { pk[1], pk[2] } }),
    sd.beat_train(tm:index_select(1, given), rr:index_select(1, given), { pk[1], pk[2] }, 102.4, 512) + resid:index_select(1, given),
    1e-5, "prior_ecg of given experience rows")
  local net = U.with_prior(pu.unet, zp)
  local xt, t = wb.randn(4, 4, 64), wb.full({ 4 }, 300)
  T.close(net(xt, t, nil), pu.unet(wb.cat({ xt, zp * 0 }, 2), t, nil), 1e-6, "no condition: no prior")
  local cond = pu:condition(e, { age = wb.full({ 4 }, 60), sex = wb.ones(4), hr = wb.full({ 4 }, 70) })
  local drop = wb.tensor { 1, 0, 0, 0 }
  local both = net(xt, t, cond, { uncond = drop })
  T.close(both:narrow(1, 1, 1), pu.unet(wb.cat({ xt, zp * 0 }, 2), t, nil):narrow(1, 1, 1), 1e-5, "a dropped row loses the prior")
  T.close(both:narrow(1, 2, 3), pu.unet(wb.cat({ xt, zp }, 2), t, cond):narrow(1, 2, 3), 1e-5, "kept rows read it")
  local b = batch()
  b.zp = zp
  local loss, parts = pu:generator_loss(b)
  T.ok(loss:item() == loss:item() and parts.diffusion, "generator_loss with prior latents")
  b.zp = nil
  T.fails(function() pu:generator_loss(b) end, "prior_input needs b.zp")
  local dir = (os.getenv("TMPDIR") or "/tmp") .. "/ecgwb_test_uniecg_prior"
  pu:save(dir)
  local back = U.load(dir)
  T.close(back:generate({ reqs[1] }, { seed = 3 }), pu:generate({ reqs[1] }, { seed = 3 }), 1e-5, "prior_input: loaded, the same generation")
  os.execute("rm -rf '" .. dir .. "'")
  -- prior_start: DDIM starts from the prior's latent noised to prior_start·T.
  -- At 0.05 only DDIM's last timestep (0) is left, where ab ~ 1: the sample
  -- is the prior's VAE round trip (drawn with the same seed), up to the
  -- noise sqrt(1 - ab_0) and one denoiser step
  local meta = U.request_meta({ reqs[1] })
  wb.manual_seed(3)
  local emb = pu:aligned(pu:gen_states({ reqs[1] }))
  -- the experience of a generation request is its nearest training request's record (3)
  local trip = pu.vae:from_latent(pu:prior_latent(emb, meta.hr, { rows = wb.tensor({ 3 }, "i64") }))
  local near = pu:generate({ reqs[1] }, { seed = 3, prior_start = 0.05 })
  local far = pu:generate({ reqs[1] }, { seed = 3, prior_start = false })
  local function rel(a) return ((a - trip):square():mean() / trip:square():mean()):item() end
  T.ok(rel(near) < 0.05 and rel(far) > 4 * rel(near), string.format("prior_start 0.05 keeps the prior (relative error %.4f; from noise %.4f)", rel(near), rel(far)))
  local noexp = U.UniECG(cfg, lm)
  noexp.cfg.prior_start, noexp.cfg.prior_input = 0.3, false
  noexp:set_center(reports)
  T.fails(function() noexp:generate({ reqs[1] }, { seed = 3 }) end, "prior_start samples from the experience prior: set_experience first")
end

-- a generation request's condition reads the reports of the records of its
-- nearest training requests (k = 2 distinct records, nearest first)
do
  local bank_req = { reqs[1], reqs[1] .. " ", reqs[2], "Generate an ECG with low QRS voltage." }
  uni:set_request_bank(uni:text_embedding(bank_req), wb.tensor({ 0, 0, 3, 1 }, "i64"))
  local rows = uni:experience_rows({ reqs[1] }, 2):totable()
  T.ok(#rows == 2 and rows[1] == 0 and rows[2] ~= 0, "experience_rows: k distinct records, nearest first: " .. table.concat(rows, ", "))
  T.fails(function() uni:experience_rows({ reqs[1] }, 4) end, "fewer than k = 4 records")
  local meta = U.request_meta({ reqs[1] })
  meta.retrieved = uni.retrieval_bank:index_select(1, wb.tensor(rows, "i64")):reshape(1, 2, 64)
  local cond = uni:condition(uni:aligned(uni:gen_states({ reqs[1] })), meta)
  local z = uni.D:sample(uni.unet, { 1, 4, 64 }, cond, { steps = uni.cfg.sample_steps, guidance = uni.cfg.guidance, seed = 3,
                                                         rescale = uni.cfg.guidance_rescale })
  T.close(uni:generate({ reqs[1] }, { seed = 3 }), uni.vae:from_latent(z), 1e-5, "generate conditions on the retrieved records' reports")
  meta.retrieved = nil
  local other = uni.vae:from_latent(uni.D:sample(uni.unet, { 1, 4, 64 }, uni:condition(uni:aligned(uni:gen_states({ reqs[1] })), meta),
    { steps = uni.cfg.sample_steps, guidance = uni.cfg.guidance, seed = 3, rescale = uni.cfg.guidance_rescale }))
  T.ok(T.relerr(other, uni.vae:from_latent(z)) > 1e-3, "(and the reports nearest to the aligned states would give another ECG)")
end

-- respond routes the request
local g = uni:respond { text = "Generate an ECG showing atrial fibrillation at 110 bpm", seed = 1 }
T.ok(g.kind == "ecg" and g.ecg:size(1) == 12 and g.ecg:size(2) == 512 and g.fs == 102.4, "a generation request returns an ECG")
local ecg = wb.sim.ecg { fs = 500, seconds = 4, seed = 2 }
local r = uni:respond { ecg = ecg, fs = 500, max_new_tokens = 8 }
T.ok(r.kind == "report" and type(r.text) == "string" and r.evidence:find("Measured: HR", 1, true), "an ECG gets a report")
T.ok(uni:respond({ ecg = ecg, fs = 500, text = "Is the QRS wide?", max_new_tokens = 8 }).kind == "answer", "a question gets an answer")
-- save / load: the same model (condition space, generation, EMA copy)
do
  rawset(uni, "ema_unet", uni.unet:clone())
  local dir = (os.getenv("TMPDIR") or "/tmp") .. "/ecgwb_test_uniecg"
  uni:save(dir)
  local back = U.load(dir)
  T.close(uni:generate({ reqs[1] }, { seed = 3 }), uni:generate({ reqs[1] }, { seed = 3 }), 1e-6, "generation is seeded")
  local g1 = uni:gen_states({ reqs[1] })
  T.close(back:gen_states({ reqs[1] }), g1, 1e-6, "loaded: the same gen states")
  T.close(back:aligned(g1), uni:aligned(g1), 1e-6, "loaded: the same align head")
  T.close(back:text_embedding(reports), uni:text_embedding(reports), 1e-6, "loaded: the same condition space")
  T.close(back:generate({ reqs[1] }, { seed = 3 }), uni:generate({ reqs[1] }, { seed = 3 }), 1e-5, "loaded: the same generation")
  os.execute("rm -rf '" .. dir .. "'")
  T.fails(function() U.load(dir) end, "no config.json")
end
T.fails(function() uni:respond { text = "hello" } end, "does not ask to generate one")
T.fails(function() uni:respond { ecg = wb.zeros(3, 100) } end, "ecg must be (12, L)")
T.fails(function() U.UniECG({}, {}) end, "needs the stage-1 EcgLM")
T.fails(function() U.UniECG({ unett = 1 }, lm) end, "unknown config key 'unett'")
T.done()
