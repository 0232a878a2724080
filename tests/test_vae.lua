-- test_vae.lua: lua/ecgwb/models/vae.lua. Shapes (12 x 1024 -> 4 x 128 and
-- lengths not divisible by 8), the KL against its closed form summed by
-- hand, the loss = recon + beta KL, the reconstruction of simulated ECGs
-- improving with training, the latent scale factor, and errors.
local T = dofile("tests/check.lua")
local wb = require "ecgwb"
local vae = require "ecgwb.models.vae"

local function same_shape(t, s) return table.concat(t:size(), ",") == table.concat(s, ",") end

wb.manual_seed(9)
local net = vae.VAE(vae.config("tiny"))

------------------------------------------------------------------ shapes
do
  net:eval()
  local mu, logvar = net:encode(wb.randn(2, 12, 1024))
  T.ok(same_shape(mu, { 2, 4, 128 }) and same_shape(logvar, { 2, 4, 128 }), "12 x 1024 -> mu, logvar 4 x 128")
  T.ok(same_shape(net:decode(mu), { 2, 12, 1024 }), "4 x 128 -> 12 x 1024")
  local y, m = net(wb.randn(1, 12, 1001))
  T.ok(same_shape(y, { 1, 12, 1001 }) and same_shape(m, { 1, 4, 126 }), "L = 1001: latent 126, output cropped to 1001")
  local x = wb.randn(2, 12, 64)
  T.ok(T.relerr(net(x), net(x)) == 0, "eval: forward uses mu, deterministic")
  net:train()
end

------------------------------------------------------------------ the KL
do
  local mu, lv = wb.randn(2, 4, 8), wb.randn(2, 4, 8) * 0.5
  local m, l, s = mu:totable(), lv:totable(), 0
  for i = 1, #m do s = s + 0.5 * (m[i] ^ 2 + math.exp(l[i]) - 1 - l[i]) end
  T.close(vae.kl(mu, lv):item(), s / #m, 1e-5, "KL = mean of 0.5 (mu^2 + e^lv - 1 - lv)")
  T.ok(math.abs(vae.kl(wb.zeros(3, 4, 5), wb.zeros(3, 4, 5)):item()) < 1e-7, "KL(N(0,1) || N(0,1)) = 0")
  -- one Gaussian, against the textbook form log(1/sigma) + (sigma^2 + mu^2)/2 - 1/2
  local sigma, mean = 0.3, 1.7
  local want = math.log(1 / sigma) + (sigma ^ 2 + mean ^ 2) / 2 - 0.5
  T.close(vae.kl(wb.full({ 1 }, mean), wb.full({ 1 }, 2 * math.log(sigma))):item(), want, 1e-5, "KL of N(1.7, 0.3^2)")
  -- the loss uses it: total = recon + beta kl, kl from encode(x)
  local x = wb.randn(2, 12, 32)
  local total, recon, kl = net:loss(x, { beta = 0.5 })
  local e_mu, e_lv = net:encode(x)
  T.close(kl:item(), vae.kl(e_mu, e_lv):item(), 1e-5, "loss's kl = KL of the encoder's posterior")
  T.close(total:item(), recon:item() + 0.5 * kl:item(), 1e-5, "total = recon + beta kl")
end

------------------------------------------------------------------ training on simulated ECGs
-- 2.5 s of 12-lead ECG at 102.4 Hz (256 samples, DiffuSETS' rate), 48 records
do
  local sim = wb.sim.batch({ fs = 102.4, seconds = 2.5, seed = 1 }, 48).ecg
  local train, held = sim:narrow(1, 1, 32), sim:narrow(1, 33, 16)
  local function held_recon()
    net:eval()
    local r = wb.no_grad(function() return wb.mse_loss(net(held), held):item() end)
    net:train()
    return r
  end
  local power = held:pow(2):mean():item() -- the MSE of predicting zeros
  local before = held_recon()
  local opt = wb.optim.AdamW(net:parameters(), { lr = 3e-3, weight_decay = 0 })
  for s = 1, 60 do
    local i = ((s - 1) % 2) * 16 + 1
    local total = net:loss(train:narrow(1, i, 16), { beta = 1e-4 })
    opt:zero_grad(); total:backward(); opt:step()
  end
  local after = held_recon()
  T.ok(after < 0.5 * before and after < 0.5 * power,
    string.format("held-out recon MSE %.5f -> %.5f after 60 steps (signal power %.5f)", before, after, power))
  print(string.format("vae tiny on 48 simulated records: held-out recon MSE %.5f -> %.5f (signal power %.5f)", before, after, power))

  -- the latent scale: unit variance of scaled latents
  local f = net:fit_scale(sim)
  T.ok(math.abs(net.scale_factor:item() - f) < 1e-6 * f, "scale_factor buffer holds the fitted value")
  net:eval()
  local z = net:latent(sim)
  T.close(z:std(nil, 0):item(), 1, 1e-3, "scaled latents have std 1")
  local sd = net:state_dict()
  T.ok(sd.scale_factor ~= nil and math.abs(sd.scale_factor:item() - f) < 1e-6 * f, "scale_factor is in the state_dict")
  local y1 = net:from_latent(z)
  local y2 = net:decode(net:encode(sim))
  T.ok(T.relerr(y1, y2) < 1e-5, "from_latent(latent(x)) = decode(mu)")
  net:train()
end

------------------------------------------------------------------ errors
do
  T.fails(function() net:encode(wb.randn(2, 8, 64)) end, "VAE:encode: x must be (B, 12, L), got f32[2,8,64]")
  T.fails(function() net:loss(wb.randn(12, 64)) end, "x must be (B, 12, L), got f32[12,64]")
  T.fails(function() net:decode(wb.randn(2, 3, 16)) end, "VAE:decode: z must be (B, 4, l), got f32[2,3,16]")
  T.fails(function() net:loss(wb.randn(1, 12, 16), { beta = -1 }) end, "beta must be a number >= 0")
  T.fails(function() vae.config("large") end, "unknown config 'large'")
  T.fails(function() vae.VAE(5) end, "VAE: needs a config")
end

T.done()
