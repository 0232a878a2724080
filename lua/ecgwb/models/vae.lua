--[[ ecgwb.models.vae: a convolutional VAE for 12-lead ECGs, DiffuSETS'
first stage: 12 leads x 1024 samples <-> a 4 x 128 latent in which the
diffusion model (models/diffusion.lua + models/unet1d.lua) runs.

    local vae = require "ecgwb.models.vae"
    local net = vae.VAE(vae.config("small"))            -- 12 x L <-> 4 x L/8
    local total, recon, kl = net:loss(x, { beta = 1e-4 })  -- x (B, 12, L) in mV
    net:fit_scale(train_x)                              -- scale_factor = 1 / std(latents)
    local z = net:latent(x)                             -- (B, 4, L/8) * scale_factor, for diffusion
    local y = net:from_latent(z)                        -- back to (B, 12, L)

Architecture (Stable Diffusion's autoencoder, in 1-D, without its
attention): encoder conv_in Conv1d(12, ch, 3), then per level i = 1..#mults
num_res_blocks ResBlocks (models/unet1d.lua's, without time) at width
ch*mults[i] and a stride-2 Downsample after every level but the last (three
halvings for four levels: 1024 -> 128), a middle ResBlock, GroupNorm, SiLU,
Conv1d(., 2 latent_channels, 3) -> mu, logvar (logvar clamped to [-30, 20]).
The decoder mirrors it: conv_in Conv1d(latent_channels, ., 3), a middle
ResBlock, per level (deepest first) ResBlocks then a nearest x2 Upsample
(all but the last level), GroupNorm, SiLU, Conv1d(ch, 12, 3). L need not be
divisible by 8: the encoder rounds up and forward() crops to L.

Loss (per element, so beta does not depend on the sizes):
  recon = mean over (B, 12, L) of (x^ - x)^2, x^ = decode(mu + exp(logvar/2) eps)
  kl    = mean over (B, 4, L/8) of 0.5 (mu^2 + exp(logvar) - 1 - logvar)   (KL to N(0, I) in nats per latent element)
  total = recon + beta kl
The latent scale (Rombach et al. 2022): fit_scale(x) sets the buffer
scale_factor = 1 / std of the posterior means over x, so that latents have
unit variance for the diffusion; it is in state_dict(), saved with the
weights.
]]
local wb = require "ecgwb"
local nn = require "ecgwb.nn"
local unet1d = require "ecgwb.models.unet1d"

local M = {}

M.configs = {
  tiny = { channels = 16, mults = { 1, 1, 2, 2 }, num_res_blocks = 1, groups = 4 },
  small = { channels = 32, mults = { 1, 2, 2, 4 }, num_res_blocks = 1, groups = 8 },
  base = { channels = 64, mults = { 1, 2, 4, 4 }, num_res_blocks = 2, groups = 32 },
}
local DEFAULTS = { in_channels = 12, latent_channels = 4 }

function M.config(name, over)
  local base = M.configs[name]
  if not base then error("vae.config: unknown config '" .. tostring(name) .. "' (tiny, small, base)", 2) end
  local c = {}
  for k, v in pairs(DEFAULTS) do c[k] = v end
  for k, v in pairs(base) do c[k] = v end
  for k, v in pairs(over or {}) do c[k] = v end
  return c
end

-- KL(N(mu, exp(logvar)) || N(0, 1)), mean over elements
function M.kl(mu, logvar)
  return ((mu * mu + logvar:exp() - logvar - 1) * 0.5):mean()
end

local VAE = nn.class("VAE")
M.VAE = VAE

-- the time downsampling factor of a config: 2 per level after the first
function M.factor(c) return 2 ^ (#c.mults - 1) end

function VAE:__init(c)
  if type(c) ~= "table" or type(c.channels) ~= "number" or type(c.mults) ~= "table" then
    error("VAE: needs a config, e.g. vae.config('small')", 3)
  end
  local full = {}
  for k, v in pairs(DEFAULTS) do full[k] = v end
  for k, v in pairs(c) do full[k] = v end
  c = full
  self.cfg = c
  local ch, n, g = c.channels, #c.mults, c.groups
  local blk = { groups = g }
  self.factor = M.factor(c)

  local enc = nn.Sequential()
  enc:append(nn.Conv1d(c.in_channels, ch, 3, { padding = 1 }))
  local cur = ch
  for i = 1, n do
    local w = ch * c.mults[i]
    for _ = 1, c.num_res_blocks do
      enc:append(unet1d.ResBlock(cur, w, blk))
      cur = w
    end
    if i < n then enc:append(unet1d.Downsample(cur)) end
  end
  enc:append(unet1d.ResBlock(cur, cur, blk))
  enc:append(nn.GroupNorm(g, cur))
  enc:append(nn.SiLU())
  enc:append(nn.Conv1d(cur, 2 * c.latent_channels, 3, { padding = 1 }))
  self.encoder = enc

  local dec = nn.Sequential()
  dec:append(nn.Conv1d(c.latent_channels, cur, 3, { padding = 1 }))
  dec:append(unet1d.ResBlock(cur, cur, blk))
  for i = n, 1, -1 do
    local w = ch * c.mults[i]
    for _ = 1, c.num_res_blocks do
      dec:append(unet1d.ResBlock(cur, w, blk))
      cur = w
    end
    if i > 1 then dec:append(unet1d.Upsample(cur)) end
  end
  dec:append(nn.GroupNorm(g, cur))
  dec:append(nn.SiLU())
  dec:append(nn.Conv1d(cur, c.in_channels, 3, { padding = 1 }))
  self.decoder = dec
  self:register_buffer("scale_factor", wb.ones(1))
end

function VAE:extra_repr()
  local c = self.cfg
  return string.format("in_channels=%d, latent_channels=%d, channels=%d, mults={%s}, downsampling=%d",
    c.in_channels, c.latent_channels, c.channels, table.concat(c.mults, ","), self.factor)
end

local function desc(x) return wb.is_tensor(x) and x:describe() or type(x) end

function VAE:check_x(x, op)
  if not wb.is_tensor(x) or x:dim() ~= 3 or x:size(2) ~= self.cfg.in_channels then
    error(string.format("VAE:%s: x must be (B, %d, L), got %s", op, self.cfg.in_channels, desc(x)), 3)
  end
end

-- x (B, 12, L) -> mu, logvar (B, 4, ceil(L/8))
function VAE:encode(x)
  self:check_x(x, "encode")
  local h = self.encoder(x)
  local lc = self.cfg.latent_channels
  return h:narrow(2, 1, lc), h:narrow(2, lc + 1, lc):clamp(-30, 20)
end

-- z (B, 4, l) -> (B, 12, 8 l)
function VAE:decode(z)
  if not wb.is_tensor(z) or z:dim() ~= 3 or z:size(2) ~= self.cfg.latent_channels then
    error(string.format("VAE:decode: z must be (B, %d, l), got %s", self.cfg.latent_channels, desc(z)), 2)
  end
  local h = z
  for i = 1, #self.decoder do
    local m = self.decoder[i]
    h = m(h) -- Upsample doubles (its len argument is nil)
  end
  return h
end

-- x -> x^ (cropped to L), mu, logvar; z sampled in training, mu in eval
function VAE:forward(x)
  local mu, logvar = self:encode(x)
  local z = mu
  if self.training then z = mu + (logvar * 0.5):exp() * wb.randn(mu:size()) end
  local y = self:decode(z)
  if y:size(3) ~= x:size(3) then y = y:narrow(3, 1, x:size(3)) end
  return y, mu, logvar
end

-- total, recon, kl (0-d tensors); opts.beta (default 1e-4)
function VAE:loss(x, o)
  local beta = (o and o.beta) or 1e-4
  if type(beta) ~= "number" or beta < 0 then error("VAE:loss: beta must be a number >= 0, got " .. tostring(beta), 2) end
  local y, mu, logvar = self:forward(x)
  local recon = wb.mse_loss(y, x)
  local kl = M.kl(mu, logvar)
  return recon + kl * beta, recon, kl
end

-- sets scale_factor = 1 / std of the posterior means of x (B, 12, L),
-- encoded in batches under no_grad; returns the factor
function VAE:fit_scale(x, batch)
  self:check_x(x, "fit_scale")
  batch = batch or 64
  local was = self.training
  self:eval()
  local s, s2, n = 0, 0, 0
  wb.no_grad(function()
    for i = 1, x:size(1), batch do
      local mu = self:encode(x:narrow(1, i, math.min(batch, x:size(1) - i + 1)))
      s = s + mu:sum():item()
      s2 = s2 + mu:pow(2):sum():item()
      n = n + mu:numel()
    end
  end)
  self:train(was)
  local var = s2 / n - (s / n) ^ 2
  if not (var > 0) then error("VAE:fit_scale: the latents have no variance", 2) end
  self.scale_factor:fill_(1 / math.sqrt(var))
  return 1 / math.sqrt(var)
end

-- the scaled latent (posterior mean, or a sample with sample = true)
function VAE:latent(x, sample)
  local mu, logvar = self:encode(x)
  local z = mu
  if sample then z = mu + (logvar * 0.5):exp() * wb.randn(mu:size()) end
  return z * self.scale_factor:item()
end

-- a scaled latent back to the signal (B, 12, 8 l)
function VAE:from_latent(z)
  return self:decode(z / self.scale_factor:item())
end

return M
