--[[ recipes/latent_diffusion.lua: DiffuSETS-style latent diffusion for
12-lead ECGs on the default simulated corpus, conditioned on the label
multi-hot (a stand-in for the text condition of recipes/two_stage.lua).

Method. Records are 10 s at 102.4 Hz (wb.signal.resample of the 500 Hz
corpus: 12 x 1024, in mV). Stage 1: a conv VAE (models/vae.lua) maps
12 x 1024 to a 4 x 128 latent, trained with per-element MSE + beta KL; the
latent scale is 1 / std of the training latents. Stage 2: a 1-D U-Net with
cross-attention (models/unet1d.lua) learns DDPM's epsilon on the scaled
latents (models/diffusion.lua; scaled-linear betas 0.00085..0.012, T = 1000,
as DiffuSETS), the condition being one token, the 20-label multi-hot,
dropped with p = 0.1 for classifier-free guidance; EMA weights with the
usual warm-up min(decay, (1 + n)/(10 + n)). Sampling: DDIM, 50 steps,
guidance 2, from the EMA weights, decoded by the VAE.

We report the VAE's held-out reconstruction (MSE, MSE / signal power, and
the median over records of each record's MSE / power; validation split), and for ECGs generated from the label sets of held-out
records: the share with a plausible rhythm (lead II R peaks by
wb.signal.rpeaks: >= 4 beats and 30..220 bpm), the mean measured heart rate
for STACH and SBRAD prompts against the real records', the RR interval
coefficient of variation for AFIB and SR prompts (AF is irregular), the HR MAE against
the real record whose labels were the prompt, and the Einthoven error
|I + III - II| relative to |II|. Figures (real vs generated pairs) go to
runs/latent_diffusion/.

  ecgwb recipes/latent_diffusion.lua [vae_steps] [diff_steps]     (default 600, 1000)
  wb.run("recipes/latent_diffusion.lua", { vae_steps = 300, diff_steps = 500, diff_minutes = 2 })

Each stage stops at its step count or its time cap (vae_minutes = 3,
diff_minutes = 5), whichever comes first, so the default run stays within
10 minutes on a busy machine (and then trains fewer steps).
]]
local wb = require "ecgwb"
local optim = wb.optim
local vae = require "ecgwb.models.vae"
local unet1d = require "ecgwb.models.unet1d"
local diffusion = require "ecgwb.models.diffusion"
local opts = ...
if type(opts) ~= "table" then opts = {} end

local cfg = {
  seed = 1, fs = 102.4, seconds = 10, max_train = nil,
  vae = "tiny", beta = 1e-4, vae_batch = 16, vae_lr = 2e-3,
  vae_steps = tonumber(arg and arg[1]) or 600, vae_minutes = 3,   -- whichever comes first
  unet = "small", unet_channels = 32, diff_batch = 32, diff_lr = 1e-3, p_uncond = 0.1, ema = 0.999,
  diff_steps = tonumber(arg and arg[2]) or 1000, diff_minutes = 5,
  schedule = "scaled_linear", T = 1000, sample_steps = 50, guidance = 2, n_eval = 48,
  snapshots = { 1, 2, 4 }, -- minutes of diffusion training at which to draw NORM and AFIB samples
  out = "runs/latent_diffusion",
}
for k, v in pairs(opts) do cfg[k] = v end
wb.manual_seed(cfg.seed)
os.execute("mkdir -p " .. cfg.out)
local t_start = wb.now()

-- data
local tr = wb.corpus.load { split = "train", fs = cfg.fs, seconds = cfg.seconds, max = cfg.max_train }
local va = wb.corpus.load { split = "validation", fs = cfg.fs, seconds = cfg.seconds }
print(string.format("data: train %s, validation %s, %d labels (%.0f s)", tr.x:describe(), va.x:describe(),
  #tr.label_names, wb.now() - t_start))
local label = {}
for i, n in ipairs(tr.label_names) do label[n] = i end

-- trains for `minutes` or `steps`, whichever comes first; step_fn(step) -> loss
-- (CPU seconds are of all threads: on a busy shared machine they say more than wall time)
local function train(name, minutes, steps, step_fn)
  local t0, c0, step, acc, n = wb.now(), os.clock(), 0, 0, 0
  while step < steps and wb.now() - t0 < minutes * 60 do
    step = step + 1
    local l = step_fn(step, wb.now() - t0)
    acc, n = acc + l, n + 1
    wb.report { step = step, loss = l }
    if step % 50 == 0 then
      print(string.format("%s step %5d  loss %.5f  %.0f s wall, %.0f s CPU", name, step, acc / n, wb.now() - t0, os.clock() - c0))
      acc, n = 0, 0
    end
  end
  return step, wb.now() - t0, os.clock() - c0
end

------------------------------------------------------------------ stage 1: the VAE
local ae = vae.VAE(vae.config(cfg.vae))
local opt = optim.AdamW(ae:parameters(), { lr = cfg.vae_lr, weight_decay = 0 })
local perm, pos = wb.randperm(tr.n), 1
local function next_batch(B)
  if pos + B - 1 > tr.n then perm, pos = wb.randperm(tr.n), 1 end
  local idx = perm:narrow(1, pos, B)
  pos = pos + B
  return idx
end
local vae_steps, vae_time, vae_cpu = train("vae", cfg.vae_minutes, cfg.vae_steps, function()
  local total = ae:loss(tr.x:index_select(1, next_batch(cfg.vae_batch)), { beta = cfg.beta })
  opt:zero_grad(); total:backward(); opt:step()
  return total:item()
end)
ae:eval()
local function encode_all(x)
  local zs = {}
  wb.no_grad(function()
    for i = 1, x:size(1), 64 do zs[#zs + 1] = ae:encode(x:narrow(1, i, math.min(64, x:size(1) - i + 1))) end
  end)
  return wb.cat(zs, 1)
end
local va_mu = encode_all(va.x)
local recon = wb.no_grad(function() return ae:decode(va_mu) end)
local vae_mse = wb.mse_loss(recon, va.x):item()
local power = va.x:pow(2):mean():item()
-- per record: MSE / the record's power; the mean is dominated by a few noisy records
local rel = {}
do
  local e, p = (recon - va.x):pow(2):mean({ 2, 3 }):totable(), va.x:pow(2):mean({ 2, 3 }):totable()
  for i = 1, #e do rel[i] = e[i] / p[i] end
  table.sort(rel)
end
local vae_rel_median = rel[math.ceil(#rel / 2)]
print(string.format("VAE (%s, %d params): %d steps in %.0f s (%.0f s CPU); validation recon MSE %.5f mV^2 = %.3f of the signal power (per record: median %.3f, 90th percentile %.3f)",
  cfg.vae, ae:num_parameters(), vae_steps, vae_time, vae_cpu, vae_mse, vae_mse / power, vae_rel_median, rel[math.ceil(0.9 * #rel)]))
wb.plot.pair(va.x:select(1, 1), recon:select(1, 1), { fs = cfg.fs, names = { "real", "VAE reconstruction" },
  file = cfg.out .. "/vae_recon.png" })

------------------------------------------------------------------ stage 2: latent diffusion
local scale = ae:fit_scale(tr.x)
local z_train = encode_all(tr.x) * scale -- (N, 4, 128)
local cond_train = tr.labels:unsqueeze(2) -- (N, 1, 20)
local net = unet1d.UNet1d(unet1d.config(cfg.unet, { channels = cfg.unet_channels, in_channels = ae.cfg.latent_channels,
  cond_dim = #tr.label_names }))
local D = diffusion.Diffusion { schedule = cfg.schedule, T = cfg.T }
local ema = optim.EMA(net, cfg.ema)
opt = optim.AdamW(net:parameters(), { lr = cfg.diff_lr, weight_decay = 0 })
-- snapshot figures while training: how soon do the samples look like ECGs?
local snap_rows = {}
for _, name in ipairs { "NORM", "AFIB" } do
  for i = 1, va.n do
    if va.labels:get(i, label[name]) == 1 then snap_rows[#snap_rows + 1] = { name, i }; break end
  end
end
local next_snap = 1
local function snapshot(minutes)
  local m = diffusion.ema_model(ema)
  for k, r in ipairs(snap_rows) do
    local c = va.labels:narrow(1, r[2], 1):unsqueeze(2)
    local zz = D:sample(m, { 1, ae.cfg.latent_channels, va.x:size(3) / ae.factor }, c,
      { steps = cfg.sample_steps, guidance = cfg.guidance, seed = cfg.seed + k })
    local g = wb.no_grad(function() return ae:from_latent(zz) end)
    wb.plot.pair(va.x:select(1, r[2]), g:select(1, 1), { fs = cfg.fs,
      names = { "real " .. r[1], string.format("generated after %g min", minutes) },
      file = string.format("%s/snap_%gmin_%s.png", cfg.out, minutes, r[1]) })
  end
end
local diff_steps, diff_time, diff_cpu = train("diffusion", cfg.diff_minutes, cfg.diff_steps, function(step, elapsed)
  if cfg.snapshots[next_snap] and elapsed >= cfg.snapshots[next_snap] * 60 then
    snapshot(cfg.snapshots[next_snap])
    next_snap = next_snap + 1
  end
  local idx = next_batch(cfg.diff_batch)
  local loss = D:loss(net, z_train:index_select(1, idx), cond_train:index_select(1, idx), { p_uncond = cfg.p_uncond })
  opt:zero_grad(); loss:backward()
  optim.clip_grad_norm(net:parameters(), 1.0)
  opt:step()
  ema.decay = math.min(cfg.ema, (1 + step) / (10 + step))
  ema:update()
  return loss:item()
end)
print(string.format("latent U-Net (%s, %d channels, %d params): %d steps in %.0f s (%.0f s CPU; latent scale %.3f)", cfg.unet,
  cfg.unet_channels, net:num_parameters(), diff_steps, diff_time, diff_cpu, scale))

------------------------------------------------------------------ sampling and evaluation
local net_ema = diffusion.ema_model(ema)
wb.save_state_dict(cfg.out .. "/vae.h5", ae:state_dict())        -- scale_factor included
wb.save_state_dict(cfg.out .. "/unet_ema.h5", net_ema:state_dict())
local n = math.min(cfg.n_eval, va.n)
local rows = wb.arange(0, n):to("i64")
-- the evaluation prompts: the first n validation records' labels, plus the figure prompts
local fig_names = { "NORM", "STACH", "SBRAD", "AFIB", "CLBBB" }
local figs, fig_rows = {}, {} -- {name, 0-based validation row}
for _, name in ipairs(fig_names) do
  for i = 1, va.n do
    if va.labels:get(i, label[name]) == 1 then
      figs[#figs + 1] = { name, i - 1 }
      fig_rows[#fig_rows + 1] = i - 1
      break
    end
  end
end
local all_rows = wb.cat({ rows, wb.tensor(fig_rows, "i64") })
local cond = va.labels:index_select(1, all_rows):unsqueeze(2)
local t0 = wb.now()
local z = D:sample(net_ema, { all_rows:size(1), ae.cfg.latent_channels, va.x:size(3) / ae.factor }, cond,
  { steps = cfg.sample_steps, guidance = cfg.guidance, seed = cfg.seed })
local gen = wb.no_grad(function() return ae:from_latent(z) end)
local sample_time = wb.now() - t0
print(string.format("sampled %d ECGs (%d DDIM steps, guidance %g) in %.1f s", all_rows:size(1), cfg.sample_steps,
  cfg.guidance, sample_time))

local function hr_of(x) -- lead II (12, L) -> bpm and the RR coefficient of variation, or nil
  local ok, peaks, hr = pcall(wb.signal.rpeaks, x:select(1, 2):contiguous(), cfg.fs)
  if not ok or peaks:numel() < 4 or not (hr >= 30 and hr <= 220) then return nil end
  return hr, wb.signal.rhythm(peaks, cfg.fs).cv
end
local plausible, mae, n_mae = 0, 0, 0
local by = { STACH = { gen = {}, real = {} }, SBRAD = { gen = {}, real = {} } }
local cv = { AFIB = { gen = {}, real = {} }, SR = { gen = {}, real = {} } } -- RR irregularity
local ein_num, ein_den = 0, 0
for i = 1, n do
  local g, r = gen:select(1, i), va.x:select(1, i)
  local hg, cg = hr_of(g)
  local hr = va.truth.hr:get(i)
  local _, cr = hr_of(r)
  for name, t in pairs(cv) do
    if va.labels:get(i, label[name]) == 1 then
      if cg then t.gen[#t.gen + 1] = cg end
      if cr then t.real[#t.real + 1] = cr end
    end
  end
  if hg then
    plausible = plausible + 1
    mae, n_mae = mae + math.abs(hg - hr), n_mae + 1
  end
  for name, t in pairs(by) do
    if va.labels:get(i, label[name]) == 1 then
      t.real[#t.real + 1] = hr
      if hg then t.gen[#t.gen + 1] = hg end
    end
  end
  local e = g:select(1, 1) + g:select(1, 3) - g:select(1, 2)
  ein_num = ein_num + e:abs():mean():item()
  ein_den = ein_den + g:select(1, 2):abs():mean():item()
end
local function mean(t)
  local s = 0
  for _, v in ipairs(t) do s = s + v end
  return #t > 0 and s / #t or 0 / 0
end
local metrics = {
  vae_recon_mse = vae_mse, vae_recon_rel = vae_mse / power, vae_recon_rel_median = vae_rel_median, vae_steps = vae_steps, vae_seconds = vae_time,
  vae_cpu = vae_cpu, diff_steps = diff_steps, diff_seconds = diff_time, diff_cpu = diff_cpu, sample_seconds = sample_time,
  plausible = plausible / n, hr_mae = mae / math.max(n_mae, 1),
  hr_stach_gen = mean(by.STACH.gen), hr_stach_real = mean(by.STACH.real),
  hr_sbrad_gen = mean(by.SBRAD.gen), hr_sbrad_real = mean(by.SBRAD.real),
  einthoven_rel = ein_num / ein_den, rr_cv_afib_gen = mean(cv.AFIB.gen), rr_cv_afib_real = mean(cv.AFIB.real),
  rr_cv_sr_gen = mean(cv.SR.gen), rr_cv_sr_real = mean(cv.SR.real), seconds = wb.now() - t_start,
}
print(string.format("generated, %d prompts: plausible rhythm %.0f%%; HR MAE vs the prompt's record %.1f bpm (n %d)",
  n, 100 * metrics.plausible, metrics.hr_mae, n_mae))
print(string.format("mean HR, STACH prompts: generated %.0f (n %d), real %.0f; SBRAD: generated %.0f (n %d), real %.0f",
  metrics.hr_stach_gen, #by.STACH.gen, metrics.hr_stach_real, metrics.hr_sbrad_gen, #by.SBRAD.gen, metrics.hr_sbrad_real))
print(string.format("RR interval CV, AFIB prompts: generated %.3f (n %d), real %.3f; SR prompts: generated %.3f (n %d), real %.3f",
  metrics.rr_cv_afib_gen, #cv.AFIB.gen, metrics.rr_cv_afib_real, metrics.rr_cv_sr_gen, #cv.SR.gen, metrics.rr_cv_sr_real))
print(string.format("Einthoven |I + III - II| / |II| of generated ECGs: %.3f", metrics.einthoven_rel))

for k, f in ipairs(figs) do
  wb.plot.pair(va.x:select(1, f[2] + 1), gen:select(1, n + k),
    { fs = cfg.fs, names = { "real " .. f[1], "generated from its labels" }, file = string.format("%s/gen_%s.png", cfg.out, f[1]) })
end
print(string.format("figures in %s/ (vae_recon.png, snap_*.png, gen_*.png), weights vae.h5 and unet_ema.h5; total %.0f s",
  cfg.out, metrics.seconds))
return metrics
