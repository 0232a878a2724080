--[[ ecgwb.models.diffusion: Gaussian diffusion (DDPM, Ho et al. 2020) for
any denoiser: noise schedules, the training loss with condition dropout,
DDIM sampling (Song et al. 2021) with classifier-free guidance (Ho &
Salimans 2022), seeded. Used by the latent ECG generator (DiffuSETS),
SE-Diff (models/sediff.lua) and recipes/two_stage.lua.

    local diffusion = require "ecgwb.models.diffusion"
    local D = diffusion.Diffusion { schedule = "cosine", T = 1000 }
    local loss = D:loss(net, x0, cond, { p_uncond = 0.1 })          -- x0 (B, C, L), cond (B, S, Dc)
    local x = D:sample(net, { 8, 4, 128 }, cond, { steps = 50, eta = 0, guidance = 2, seed = 1 })

    -- EMA weights (wb.optim.EMA): update after every optimiser step,
    -- sample from a copy holding the averages
    local ema = wb.optim.EMA(net, 0.999)
    for step = 1, n do
      local loss = D:loss(net, x0, cond, { p_uncond = 0.1 })
      opt:zero_grad(); loss:backward(); opt:step(); ema:update()
    end
    local net_ema = diffusion.ema_model(ema)   -- net:clone() with the EMA weights, in eval mode
    local x = D:sample(net_ema, shape, cond, { steps = 50 })

The denoiser is any callable model(x_t, t, cond, opts) -> (B, C, L) (a
models.unet1d U-Net, or a plain function): t is an f32 tensor (B) of integer
timesteps 0..T-1; cond = nil asks for the unconditional prediction (the null
condition); opts.uncond (B) f32, 1 = drop this row's condition, is passed in
training when p_uncond > 0 (only then need the model accept it); other
entries come from opts.model_opts (e.g. cond_mask).

Schedules (betas for t = 0..T-1; alphas_cumprod[t] = prod_{s<=t} (1 - beta_s)):
  linear: beta_t = linspace(beta_start, beta_end, T), default 1e-4 .. 0.02 (Ho);
  scaled_linear: linspace(sqrt(beta_start), sqrt(beta_end), T)^2, default
    0.00085 .. 0.012 (Stable Diffusion's and DiffuSETS');
  cosine: alpha_bar(u) = cos((u + s)/(1 + s) * pi/2)^2, s = 0.008,
    beta_t = min(1 - alpha_bar((t+1)/T) / alpha_bar(t/T), max_beta = 0.999)
    (Nichol & Dhariwal 2021).
Schedules are computed in double in Lua; D.betas and D.alphas_cumprod are
Lua lists indexed t + 1.

Training (D:loss): t ~ U{0..T-1} per row, x_t = sqrt(ab_t) x0 + sqrt(1-ab_t) eps,
the MSE (mean over all elements) of the model output against eps
(prediction = "eps") or v = sqrt(ab_t) eps - sqrt(1-ab_t) x0 (prediction = "v",
Salimans & Ho 2022). With p_uncond each row's condition is dropped with that
probability.

Sampling (D:sample): DDIM over `steps` timesteps, by default DDIM's own
"leading" spacing floor(i T / steps), i = steps-1 .. 0 (spacing = "linspace":
round(linspace(T-1, 0, steps)); with eps-prediction and the cosine schedule
its first step divides by sqrt(ab_{T-1}) ~ 5e-5, which amplifies the model's
error; use it with v-prediction or clip). From t to the next t' (ab' = 1
after the last):
  x0^ = (x - sqrt(1-ab) eps^) / sqrt(ab)          (optionally clamped to +-clip)
  sigma = eta sqrt((1-ab')/(1-ab)) sqrt(1 - ab/ab')
  x' = sqrt(ab') x0^ + sqrt(1 - ab' - sigma^2) eps^ + sigma z
eta = 0 is deterministic DDIM; eta = 1 with steps = T is DDPM's ancestral
sampler (sigma^2 = the posterior variance). The last step returns x0^.
Guidance w: eps^ = eps_u + w (eps_c - eps_u) (on v for v-prediction, the
same thing); w = 1 runs the conditional model only; cond = nil runs the
unconditional one only. With opts.seed the noise is seeded and the global
RNG stream is restored afterwards. Sampling runs under wb.no_grad.
A start from a guess (SDEdit, Meng et al. 2022): opts.init (shape) and
opts.strength s in (0, 1] begin DDIM at the first of its timesteps t0 <= s T
from x_t0 = sqrt(ab_t0) init + sqrt(1 - ab_t0) z, so the sample keeps init's
coarse structure and the model redraws its detail (s = 1: nearly pure noise).
]]
local wb = require "ecgwb"

local M = {}

------------------------------------------------------------------ schedules
local function linspace(a, b, n)
  local out = {}
  for i = 0, n - 1 do out[i + 1] = n == 1 and a or a + (b - a) * i / (n - 1) end
  return out
end

-- betas (Lua list of T doubles) for a schedule
function M.betas(schedule, T, o)
  o = o or {}
  if type(T) ~= "number" or T < 1 or T ~= math.floor(T) then
    error("diffusion: T must be a positive integer, got " .. tostring(T), 3)
  end
  if schedule == "linear" then
    return linspace(o.beta_start or 1e-4, o.beta_end or 0.02, T)
  elseif schedule == "scaled_linear" then
    local r = linspace(math.sqrt(o.beta_start or 0.00085), math.sqrt(o.beta_end or 0.012), T)
    for i = 1, T do r[i] = r[i] * r[i] end
    return r
  elseif schedule == "cosine" then
    local s, maxb = o.cosine_s or 0.008, o.max_beta or 0.999
    local function ab(u) return math.cos((u + s) / (1 + s) * math.pi / 2) ^ 2 end
    local r = {}
    for t = 0, T - 1 do r[t + 1] = math.min(1 - ab((t + 1) / T) / ab(t / T), maxb) end
    return r
  end
  error("diffusion: unknown schedule '" .. tostring(schedule) .. "' (linear, scaled_linear, cosine)", 3)
end

local Diffusion = {}
Diffusion.__index = Diffusion
M.Diffusion_class = Diffusion

local KNOWN = { schedule = true, T = true, beta_start = true, beta_end = true, cosine_s = true, max_beta = true,
  prediction = true }

-- Diffusion{schedule = "linear" | "scaled_linear" | "cosine", T = 1000,
--   beta_start, beta_end, cosine_s, max_beta, prediction = "eps" | "v"}
function M.Diffusion(o)
  o = o or {}
  for k in pairs(o) do
    if not KNOWN[k] then error("Diffusion: unknown option '" .. tostring(k) .. "'", 2) end
  end
  local self = setmetatable({}, Diffusion)
  self.schedule, self.T = o.schedule or "linear", o.T or 1000
  self.prediction = o.prediction or "eps"
  if self.prediction ~= "eps" and self.prediction ~= "v" then
    error("Diffusion: prediction must be 'eps' or 'v', got " .. tostring(self.prediction), 2)
  end
  self.betas = M.betas(self.schedule, self.T, o)
  self.alphas_cumprod = {}
  local p = 1
  for i = 1, self.T do
    p = p * (1 - self.betas[i])
    self.alphas_cumprod[i] = p
  end
  local sa, s1 = {}, {}
  for i = 1, self.T do
    sa[i] = math.sqrt(self.alphas_cumprod[i])
    s1[i] = math.sqrt(1 - self.alphas_cumprod[i])
  end
  self.sqrt_ab = wb.tensor(sa)   -- (T)
  self.sqrt_1mab = wb.tensor(s1) -- (T)
  return self
end

function Diffusion:__tostring()
  return string.format("Diffusion(schedule=%s, T=%d, prediction=%s)", self.schedule, self.T, self.prediction)
end

------------------------------------------------------------------ helpers
local function desc(x) return wb.is_tensor(x) and x:describe() or type(x) end

-- t: number or tensor of B timesteps -> i64 (B), checked against 0..T-1
function Diffusion:timesteps(t, B, op)
  if type(t) == "number" then
    if t < 0 or t >= self.T or t ~= math.floor(t) then
      error(string.format("%s: timestep %s is not an integer in 0..%d", op, tostring(t), self.T - 1), 3)
    end
    return wb.full({ B }, t, "i64")
  end
  if not wb.is_tensor(t) or t:numel() ~= B then
    error(string.format("%s: t must be a number or a tensor of B = %d timesteps, got %s", op, B, desc(t)), 3)
  end
  t = t:reshape(B)
  if t.dtype ~= "i64" then t = t:to("i64") end
  local lo, hi = math.huge, -math.huge
  for _, v in ipairs(t:totable()) do
    lo, hi = math.min(lo, v), math.max(hi, v)
  end
  if lo < 0 or hi >= self.T then
    error(string.format("%s: timesteps must be in 0..%d, got %d..%d", op, self.T - 1, lo, hi), 3)
  end
  return t
end

-- per-row coefficient (B) -> (B, 1, ..., 1) broadcasting against x
local function per_row(coef, t, x)
  local shape = { x:size(1) }
  for i = 2, x:dim() do shape[i] = 1 end
  return coef:index_select(1, t):reshape(shape)
end

-- x_t = sqrt(ab_t) x0 + sqrt(1 - ab_t) noise; t number or (B)
function Diffusion:q_sample(x0, t, noise)
  if not wb.is_tensor(x0) or x0:dim() < 2 then error("q_sample: x0 must be a tensor (B, ...), got " .. desc(x0), 2) end
  t = self:timesteps(t, x0:size(1), "q_sample")
  return self:_q_sample(x0, t, noise or wb.randn(x0:size()))
end
function Diffusion:_q_sample(x0, t, noise)
  return per_row(self.sqrt_ab, t, x0) * x0 + per_row(self.sqrt_1mab, t, x0) * noise
end

-- the training target for (x0, noise) at t (i64 (B)): eps, or v
function Diffusion:target(x0, t, noise)
  if self.prediction == "eps" then return noise end
  return per_row(self.sqrt_ab, t, x0) * noise - per_row(self.sqrt_1mab, t, x0) * x0
end

-- x0 predicted by the model output out at per-row timesteps t (i64 (B)) from
-- x_t -> x0 (B, ...), alpha_bar_t (B); Diffusion:split is the same for one
-- sampling timestep
function Diffusion:predict_x0(out, xt, t)
  local sa, s1 = per_row(self.sqrt_ab, t, xt), per_row(self.sqrt_1mab, t, xt)
  local ab = self.sqrt_ab:index_select(1, t):square()
  if self.prediction == "eps" then return (xt - out * s1) / sa, ab end
  return xt * sa - out * s1, ab
end

local function merge(a, b)
  local o = {}
  for k, v in pairs(a or {}) do o[k] = v end
  for k, v in pairs(b or {}) do o[k] = v end
  return o
end

local function check_cond(op, cond, B)
  if cond == nil then return end
  if not wb.is_tensor(cond) then error(op .. ": cond must be a tensor (B, ...) or nil, got " .. type(cond), 3) end
  if cond:dim() < 2 or cond:size(1) ~= B then
    error(string.format("%s: cond %s must have the batch size B = %d of x first", op, cond:describe(), B), 3)
  end
end

------------------------------------------------------------------ training
local LOSS_OPTS = { p_uncond = true, t = true, noise = true, model_opts = true, min_snr = true }

-- D:loss(model, x0, cond, {p_uncond = 0, t = nil, noise = nil, model_opts = {}, min_snr = nil})
-- -> the MSE loss (0-d tensor), and {t = (B) i64, x_t = ..., target = ..., out = the model's output}
-- min_snr = gamma: Min-SNR-gamma weighting (Hang et al. 2023): row b's MSE is
-- weighted by min(SNR_t, gamma) / SNR_t (eps) or / (SNR_t + 1) (v), SNR_t =
-- ab_t / (1 - ab_t); equivalently, the x0 error weighted by min(SNR_t, gamma):
-- the nearly clean timesteps, whose loss is small details, stop dominating
-- the gradient.
function Diffusion:loss(model, x0, cond, o)
  o = o or {}
  for k in pairs(o) do
    if not LOSS_OPTS[k] then error("Diffusion:loss: unknown option '" .. tostring(k) .. "'", 2) end
  end
  if not wb.is_tensor(x0) or x0:dim() < 2 then error("Diffusion:loss: x0 must be a tensor (B, C, L), got " .. desc(x0), 2) end
  local B = x0:size(1)
  check_cond("Diffusion:loss", cond, B)
  local p = o.p_uncond or 0
  if type(p) ~= "number" or p < 0 or p > 1 then error("Diffusion:loss: p_uncond must be in [0, 1], got " .. tostring(p), 2) end
  local gamma = o.min_snr
  if gamma ~= nil and (type(gamma) ~= "number" or not (gamma > 0)) then
    error("Diffusion:loss: min_snr must be a positive number, got " .. tostring(gamma), 2)
  end
  local t = o.t ~= nil and self:timesteps(o.t, B, "Diffusion:loss") or wb.randint(0, self.T, { B })
  local noise = o.noise or wb.randn(x0:size())
  local xt = self:_q_sample(x0, t, noise)
  local mo = merge(o.model_opts)
  if cond ~= nil and p > 0 then mo.uncond = wb.rand(B):lt(p):to("f32") end
  local out = model(xt, t:to("f32"), cond, mo)
  local target = self:target(x0, t, noise)
  if not wb.is_tensor(out) or out:numel() ~= target:numel() or out:size(1) ~= B then
    error(string.format("Diffusion:loss: the model returned %s for x_t %s", desc(out), xt:describe()), 2)
  end
  local info = { t = t, x_t = xt, target = target, uncond = mo.uncond, out = out }
  if not gamma then return wb.mse_loss(out, target), info end
  local ab = self.sqrt_ab:index_select(1, t):square()
  local snr = ab / (ab * -1 + 1)
  local w = snr:clamp(0, gamma) / (self.prediction == "eps" and snr or snr + 1)   -- (B)
  return ((out - target):square():reshape(B, -1):mean(2) * w):mean(), info
end

------------------------------------------------------------------ prediction
-- the guided model output at integer timestep t (all rows): eps or v.
-- rescale φ > 0 (Lin et al. 2024, "guidance rescale"): the guided output is
-- scaled per row to the standard deviation of the conditional one, and
-- mixed φ : 1 - φ with the plain guided output, which keeps strong guidance
-- from inflating the signal
function Diffusion:model_output(model, x, t, cond, w, mo, rescale)
  local B = x:size(1)
  local tt = wb.full({ B }, t)
  if cond == nil then return model(x, tt, nil, mo) end
  if w == 1 then return model(x, tt, cond, mo) end
  local oc = model(x, tt, cond, mo)
  local mu = merge(mo)
  mu.cond_mask = nil
  local ou = model(x, tt, nil, mu)
  local g = ou + (oc - ou) * w
  if not rescale or rescale == 0 then return g end
  local function sd(y) return y:reshape(B, -1):std(2):clamp(1e-8, math.huge):view(B, 1, 1) end
  local r = g * (sd(oc) / sd(g))
  return r * rescale + g * (1 - rescale)
end

-- (eps^, x0^) from the model output at timestep t
function Diffusion:split(out, x, t, clip)
  local a = self.alphas_cumprod[t + 1]
  local sa, s1 = math.sqrt(a), math.sqrt(1 - a)
  local eps, x0
  if self.prediction == "eps" then
    eps = out
    x0 = (x - eps * s1) / sa
  else
    eps = out * sa + x * s1
    x0 = x * sa - out * s1
  end
  if clip then
    x0 = x0:clamp(-clip, clip)
    eps = (x - x0 * sa) / s1
  end
  return eps, x0
end

-- the DDIM timesteps, descending. spacing "leading" (DDIM's own, the
-- default): t_i = floor(i T / steps), i = steps-1 .. 0; "linspace":
-- round(linspace(T-1, 0, steps)), which starts at the last timestep
function Diffusion:ddim_timesteps(steps, spacing)
  if type(steps) ~= "number" or steps < 1 or steps > self.T or steps ~= math.floor(steps) then
    error(string.format("Diffusion:sample: steps must be an integer in 1..T = %d, got %s", self.T, tostring(steps)), 3)
  end
  local seq, last = {}, nil
  for i = steps - 1, 0, -1 do
    local t
    if spacing == nil or spacing == "leading" then
      t = math.floor(i * self.T / steps)
    elseif spacing == "linspace" then
      t = steps == 1 and self.T - 1 or math.floor((self.T - 1) * i / (steps - 1) + 0.5)
    else
      error("Diffusion:sample: spacing must be 'leading' or 'linspace', got " .. tostring(spacing), 3)
    end
    if t ~= last then seq[#seq + 1] = t end
    last = t
  end
  return seq
end

------------------------------------------------------------------ sampling
local SAMPLE_OPTS = { steps = true, eta = true, guidance = true, seed = true, x_T = true, clip = true, spacing = true,
  callback = true, model_opts = true, rescale = true, init = true, strength = true }

-- D:sample(model, shape, cond, {steps = 50, eta = 0, guidance = 1, rescale = 0, seed, x_T,
--   clip, spacing = "leading" | "linspace", callback = function(i, t, x, x0) end, model_opts,
--   init, strength}) -> x0 (shape)
function Diffusion:sample(model, shape, cond, o)
  o = o or {}
  for k in pairs(o) do
    if not SAMPLE_OPTS[k] then error("Diffusion:sample: unknown option '" .. tostring(k) .. "'", 2) end
  end
  if type(shape) ~= "table" or #shape < 2 then
    error("Diffusion:sample: shape must be a table {B, C, L}, got " .. desc(shape), 2)
  end
  check_cond("Diffusion:sample", cond, shape[1])
  local seq = self:ddim_timesteps(o.steps or 50, o.spacing)
  if o.init ~= nil or o.strength ~= nil then -- SDEdit: drop the timesteps above strength·T
    local s = o.strength
    if type(s) ~= "number" or not (s > 0 and s <= 1) then
      error("Diffusion:sample: strength must be a number in (0, 1] (with init), got " .. tostring(s), 2)
    end
    local same = wb.is_tensor(o.init) and o.init:dim() == #shape
    for i, d in ipairs(shape) do same = same and o.init:size(i) == d end
    if not same then error("Diffusion:sample: init must be a tensor of the sample's shape {" .. table.concat(shape, ", ") .. "}, got " .. desc(o.init), 2) end
    while #seq > 1 and seq[1] > s * self.T do table.remove(seq, 1) end
  end
  local eta, w = o.eta or 0, o.guidance or 1
  if type(eta) ~= "number" or eta < 0 then error("Diffusion:sample: eta must be >= 0, got " .. tostring(eta), 2) end
  if type(w) ~= "number" then error("Diffusion:sample: guidance must be a number, got " .. type(w), 2) end
  local state
  if o.seed then
    state = wb.rng_state()
    wb.manual_seed(o.seed)
  end
  local ok, res = pcall(wb.no_grad, function()
    local x = o.x_T or wb.randn(shape)
    if o.init then x = self:q_sample(o.init, seq[1], x) end
    local x0
    for i, t in ipairs(seq) do
      local out = self:model_output(model, x, t, cond, w, o.model_opts, o.rescale)
      local eps
      eps, x0 = self:split(out, x, t, o.clip)
      local tp = seq[i + 1]
      if tp == nil then
        x = x0
      else
        local a, ap = self.alphas_cumprod[t + 1], self.alphas_cumprod[tp + 1]
        local sigma = eta * math.sqrt((1 - ap) / (1 - a)) * math.sqrt(1 - a / ap)
        local dir = math.sqrt(math.max(1 - ap - sigma * sigma, 0))
        x = x0 * math.sqrt(ap) + eps * dir
        if sigma > 0 then x = x + wb.randn(shape) * sigma end
      end
      if o.callback then o.callback(i, t, x, x0) end
    end
    return x
  end)
  if state then wb.set_rng_state(state) end
  if not ok then error(res, 0) end
  return res
end

------------------------------------------------------------------ EMA
-- a copy of the EMA's model holding the averaged weights, in eval mode
function M.ema_model(ema)
  local m = ema.model:clone()
  ema:copy_to(m)
  m:eval()
  return m
end

return M
