-- test_diffusion.lua: lua/ecgwb/models/diffusion.lua. The schedules against
-- their closed forms (computed here independently), q_sample's statistics,
-- DDIM with an oracle denoiser (it knows x0, so every step must land on x0),
-- classifier-free guidance's combination, seeding, the loss, EMA weights, a
-- tiny conditional U-Net trained on two classes of sine waves that must
-- sample the requested class, and the error messages.
local T = dofile("tests/check.lua")
local wb = require "ecgwb"
local diffusion = require "ecgwb.models.diffusion"
local unet1d = require "ecgwb.models.unet1d"

local function maxabs(a, b)
  local x, y, m = a:totable(), b:totable(), 0
  for i = 1, #x do m = math.max(m, math.abs(x[i] - y[i])) end
  return m
end

------------------------------------------------------------------ schedules
do
  -- linear: betas are linspace(1e-4, 0.02, T); alphas_cumprod the running product
  local D = diffusion.Diffusion { schedule = "linear", T = 1000 }
  local worst_b, worst_a, prod = 0, 0, 1
  for i = 1, 1000 do
    local beta = 1e-4 + (0.02 - 1e-4) * (i - 1) / 999
    prod = prod * (1 - beta)
    worst_b = math.max(worst_b, math.abs(D.betas[i] - beta))
    worst_a = math.max(worst_a, math.abs(D.alphas_cumprod[i] - prod) / prod)
  end
  T.ok(worst_b < 1e-15, "linear betas = linspace(1e-4, 0.02): max error " .. worst_b)
  T.ok(worst_a < 1e-12, "linear alphas_cumprod = product of (1 - beta): max rel error " .. worst_a)
  T.ok(math.abs(D.alphas_cumprod[1000] - 4.0358e-5) / 4.0358e-5 < 1e-3,
    "linear alphas_cumprod[T-1] = 4.036e-5 (Ho et al.), got " .. D.alphas_cumprod[1000])
  -- the f32 coefficient tables
  local sa = D.sqrt_ab:totable()
  T.ok(math.abs(sa[500] - math.sqrt(D.alphas_cumprod[500])) < 1e-6, "sqrt_ab table")

  -- scaled_linear: sqrt-space linspace 0.00085 .. 0.012
  local S = diffusion.Diffusion { schedule = "scaled_linear", T = 1000 }
  T.ok(math.abs(S.betas[1] - 0.00085) < 1e-12 and math.abs(S.betas[1000] - 0.012) < 1e-12, "scaled_linear endpoints")
  local mid = ((math.sqrt(0.00085) + math.sqrt(0.012)) / 2) ^ 2
  T.ok(math.abs((S.betas[500] + S.betas[501]) / 2 - mid) < 1e-6, "scaled_linear is linear in sqrt(beta)")

  -- cosine: alphas_cumprod follows f(t+1)/f(0) with f(u) = cos((u/T + s)/(1 + s) pi/2)^2 until clipping
  local C = diffusion.Diffusion { schedule = "cosine", T = 1000 }
  local function f(u) return math.cos((u / 1000 + 0.008) / 1.008 * math.pi / 2) ^ 2 end
  local worst, clipped = 0, 0
  for i = 1, 1000 do
    local beta = 1 - f(i) / f(i - 1)
    if beta >= 0.999 then
      clipped = clipped + 1
      T.ok(C.betas[i] == 0.999, "cosine beta clipped at 0.999 at t = " .. (i - 1))
    else
      worst = math.max(worst, math.abs(C.betas[i] - beta))
      if clipped == 0 then
        worst = math.max(worst, math.abs(C.alphas_cumprod[i] - f(i) / f(0)) / (f(i) / f(0)))
      end
    end
  end
  T.ok(worst < 1e-9, "cosine betas and alphas_cumprod = closed form: max error " .. worst)
  T.ok(clipped >= 1 and C.betas[1000] == 0.999, "cosine: the last beta (1 - 0/f) is clipped to 0.999")
  T.ok(math.abs(C.betas[1] - (1 - f(1) / f(0))) < 1e-15, "cosine first beta")
  local mono = true
  for i = 2, 1000 do if C.alphas_cumprod[i] >= C.alphas_cumprod[i - 1] then mono = false end end
  T.ok(mono, "cosine alphas_cumprod strictly decreasing")
end

------------------------------------------------------------------ q_sample
do
  local D = diffusion.Diffusion { schedule = "linear", T = 1000 }
  wb.manual_seed(11)
  local n = 512 * 64
  local x0 = wb.full({ 512, 1, 64 }, 2)
  for _, t in ipairs { 0, 250, 999 } do
    local xt = D:q_sample(x0, t)
    local a = D.alphas_cumprod[t + 1]
    local mean, var = xt:mean():item(), xt:var():item()
    local se_mean = math.sqrt((1 - a) / n)
    T.ok(math.abs(mean - 2 * math.sqrt(a)) < 4 * se_mean + 1e-6,
      string.format("q_sample t=%d: mean %.5f, expected %.5f", t, mean, 2 * math.sqrt(a)))
    T.ok(math.abs(var - (1 - a)) < 4 * (1 - a) * math.sqrt(2 / n) + 1e-6,
      string.format("q_sample t=%d: var %.5f, expected %.5f", t, var, 1 - a))
  end
  -- given noise and per-row timesteps: exactly sqrt(ab) x0 + sqrt(1-ab) noise
  local x = wb.randn(3, 2, 5)
  local eps = wb.randn(3, 2, 5)
  local t = wb.tensor({ 0, 10, 999 }, "i64")
  local xt = D:q_sample(x, t, eps)
  local rows = {}
  for b, tb in ipairs { 0, 10, 999 } do
    local a = D.alphas_cumprod[tb + 1]
    rows[b] = x:select(1, b) * math.sqrt(a) + eps:select(1, b) * math.sqrt(1 - a)
  end
  T.ok(maxabs(xt, wb.stack(rows)) < 1e-6, "q_sample per-row timesteps")
end

------------------------------------------------------------------ DDIM with an oracle
-- the oracle knows x0: from x_t it returns exactly the noise (or v) that was added
local function oracle(D, x0, kind)
  local calls = 0
  return function(x, t, cond)
    calls = calls + 1
    local tv = t:totable()[1]
    local a = D.alphas_cumprod[tv + 1]
    local eps = (x - x0 * math.sqrt(a)) / math.sqrt(1 - a)
    if kind == "v" then return eps * math.sqrt(a) - x0 * math.sqrt(1 - a) end
    return eps
  end, function() return calls end
end

do
  wb.manual_seed(5)
  local x0 = wb.randn(4, 3, 10)
  for _, sched in ipairs { "linear", "cosine", "scaled_linear" } do
    for _, pred in ipairs { "eps", "v" } do
      local D = diffusion.Diffusion { schedule = sched, T = 1000, prediction = pred }
      for _, spacing in ipairs { "leading", "linspace" } do
        for _, steps in ipairs { 1, 2, 7, 50 } do
          -- eps-prediction from t = T-1 of the cosine schedule divides by
          -- sqrt(ab) = 5e-5: f32 rounding alone gives ~1e-3 there, so that
          -- single-step case is not asked for
          if not (sched == "cosine" and pred == "eps" and spacing == "linspace" and steps == 1) then
            local model, ncalls = oracle(D, x0, pred)
            local x = D:sample(model, { 4, 3, 10 }, nil, { steps = steps, eta = 0, spacing = spacing, seed = 3 })
            local e = maxabs(x, x0)
            T.ok(e < 1e-4, string.format("DDIM oracle %s/%s/%s, %d steps: max error %.3g", sched, pred, spacing, steps, e))
            T.ok(ncalls() == steps, string.format("DDIM %d steps: %d model calls", steps, ncalls()))
          end
        end
      end
    end
  end
  -- all 1000 steps
  for _, sp in ipairs { { "linear", "eps" }, { "cosine", "v" } } do
    local D = diffusion.Diffusion { schedule = sp[1], T = 1000, prediction = sp[2] }
    local x = D:sample(oracle(D, x0, sp[2]), { 4, 3, 10 }, nil, { steps = 1000 })
    T.ok(maxabs(x, x0) < 1e-4, "DDIM oracle, 1000 steps, " .. sp[1] .. "/" .. sp[2] .. ": max error " .. maxabs(x, x0))
  end
  -- stochastic DDIM (eta = 1) also lands on x0 with an oracle
  local D = diffusion.Diffusion { schedule = "linear", T = 100 }
  local model = oracle(D, x0)
  T.ok(maxabs(D:sample(model, { 4, 3, 10 }, nil, { steps = 100, eta = 1, seed = 1 }), x0) < 1e-4, "DDPM (eta 1, all steps) oracle")
  -- the timestep sequences
  local seq = D:ddim_timesteps(4)
  T.ok(table.concat(seq, ",") == "75,50,25,0", "leading spacing: " .. table.concat(seq, ","))
  seq = D:ddim_timesteps(4, "linspace")
  T.ok(table.concat(seq, ",") == "99,66,33,0", "linspace spacing: " .. table.concat(seq, ","))
end

------------------------------------------------------------------ guidance
do
  local D = diffusion.Diffusion { schedule = "linear", T = 1000 }
  local log = {}
  local function model(x, t, cond)
    log[#log + 1] = cond == nil and "u" or "c"
    if cond == nil then return x * 0.5 end
    return x * 2 + cond:reshape(x:size(1), 1, 1)
  end
  local x, cond = wb.randn(2, 3, 8), wb.tensor({ { 1 }, { -2 } })
  local ec, eu = model(x, nil, cond), model(x, nil, nil)
  log = {}
  T.ok(maxabs(D:model_output(model, x, 10, cond, 1), ec) < 1e-6, "guidance w = 1 is the conditional prediction")
  T.ok(table.concat(log) == "c", "w = 1 calls the conditional model only")
  T.ok(maxabs(D:model_output(model, x, 10, cond, 0), eu) < 1e-6, "guidance w = 0 is the unconditional prediction")
  T.ok(maxabs(D:model_output(model, x, 10, cond, 3), eu + (ec - eu) * 3) < 1e-5, "guidance w = 3: eps_u + 3 (eps_c - eps_u)")
  T.ok(maxabs(D:model_output(model, x, 10, nil, 3), eu) < 1e-6, "no cond: unconditional, whatever w")
  log = {}
  D:sample(model, { 2, 3, 8 }, cond, { steps = 5, guidance = 2, seed = 1 })
  T.ok(#log == 10, "guided sampling: two model calls per step, got " .. #log)
  -- guidance rescale, against a per-row std computed here in plain Lua
  local g = eu + (ec - eu) * 3
  local function row_std(t, r)
    local v, m, n = t:select(1, r):contiguous():reshape(24):totable(), 0, 24
    for _, y in ipairs(v) do m = m + y / n end
    local s = 0
    for _, y in ipairs(v) do s = s + (y - m) ^ 2 / (n - 1) end
    return math.sqrt(s)
  end
  T.ok(maxabs(D:model_output(model, x, 10, cond, 3, nil, 0), g) < 1e-5, "rescale 0: plain guidance")
  local full = D:model_output(model, x, 10, cond, 3, nil, 1)
  local half = D:model_output(model, x, 10, cond, 3, nil, 0.5)
  for r = 1, 2 do
    T.close(row_std(full, r), row_std(ec, r), 1e-4, "rescale 1: row " .. r .. " has the conditional output's std")
    local k = row_std(ec, r) / row_std(g, r)
    T.ok(maxabs(half:select(1, r), g:select(1, r) * (0.5 * k + 0.5)) < 1e-4, "rescale 0.5: row " .. r .. " mixes half and half")
  end
end

------------------------------------------------------------------ seeding
do
  local D = diffusion.Diffusion { schedule = "cosine", T = 50 }
  local model = function(x) return x * 0.1 end
  wb.manual_seed(1)
  local before = wb.rand(4)
  wb.manual_seed(1)
  local a = D:sample(model, { 2, 1, 6 }, nil, { steps = 5, eta = 0.5, seed = 42 })
  local after = wb.rand(4)
  local b = D:sample(model, { 2, 1, 6 }, nil, { steps = 5, eta = 0.5, seed = 42 })
  local c = D:sample(model, { 2, 1, 6 }, nil, { steps = 5, eta = 0.5, seed = 43 })
  T.ok(maxabs(a, b) == 0, "same seed, same sample")
  T.ok(maxabs(a, c) > 1e-3, "another seed, another sample")
  T.ok(maxabs(before, after) == 0, "a seeded sample leaves the global RNG stream where it was")
end

------------------------------------------------------------------ SDEdit: a start from a guess
do
  local D = diffusion.Diffusion { schedule = "linear", T = 1000 }
  local init = wb.randn(3, 2, 16) * 2 + 1
  local calls = {}
  local model = function(x, t, cond) calls[#calls + 1] = { t = t:get(1), x = x }; return x * 0 end
  D:sample(model, { 3, 2, 16 }, nil, { steps = 10, init = init, strength = 0.35, seed = 5 })
  -- DDIM's 10 leading timesteps are 900, 800, ..., 0: those <= 350 remain
  T.ok(#calls == 4 and calls[1].t == 300 and calls[4].t == 0,
    string.format("strength 0.35 starts at t0 = 300 and runs 4 steps, got %d steps from %s", #calls, tostring(calls[1] and calls[1].t)))
  -- x_t0 = sqrt(ab) init + sqrt(1 - ab) z, with z the seeded noise
  wb.manual_seed(5)
  local z = wb.randn(3, 2, 16)
  local a = D.alphas_cumprod[301]
  T.ok(maxabs(calls[1].x, init * math.sqrt(a) + z * math.sqrt(1 - a)) < 1e-5, "x_t0 is init noised to t0 with the seeded noise")
  -- an eps model that is exact for the point mass at init returns init from any strength
  local exact = function(x, t) return (x - init * math.sqrt(D.alphas_cumprod[t:get(1) + 1])) / math.sqrt(1 - D.alphas_cumprod[t:get(1) + 1]) end
  T.ok(maxabs(D:sample(exact, { 3, 2, 16 }, nil, { steps = 10, init = init, strength = 0.6, seed = 1 }), init) < 1e-4,
    "the exact denoiser of init returns init")
  T.fails(function() D:sample(model, { 3, 2, 16 }, nil, { init = init, strength = 0 }) end, "strength must be a number in (0, 1]")
  T.fails(function() D:sample(model, { 3, 2, 16 }, nil, { init = init }) end, "strength must be a number in (0, 1]")
  T.fails(function() D:sample(model, { 3, 2, 16 }, nil, { init = wb.zeros(3, 2, 8), strength = 0.5 }) end,
    "init must be a tensor of the sample's shape {3, 2, 16}, got f32[3,2,8]")
end

------------------------------------------------------------------ the loss
do
  local D = diffusion.Diffusion { schedule = "linear", T = 1000 }
  wb.manual_seed(2)
  local x0, noise = wb.randn(6, 2, 8), wb.randn(6, 2, 8)
  local t = wb.tensor({ 0, 1, 100, 500, 998, 999 }, "i64")
  -- a model that returns the true eps: zero loss; one returning zeros: E eps^2
  local seen
  local perfect = function(x, tt, cond, o) seen = o; return (x - D:q_sample(x0, t, wb.zeros(6, 2, 8))) / D.sqrt_1mab:index_select(1, t):reshape(6, 1, 1) end
  local loss = D:loss(perfect, x0, nil, { t = t, noise = noise })
  T.ok(loss:item() < 1e-8, "loss of the true-eps model is 0, got " .. loss:item())
  T.ok(seen.uncond == nil, "no cond: no uncond mask passed")
  local zero = function(x) return x * 0 end
  T.close(D:loss(zero, x0, nil, { t = t, noise = noise }):item(), noise:pow(2):mean():item(), 1e-5, "loss = MSE against eps")
  -- v-prediction's target
  local V = diffusion.Diffusion { schedule = "linear", T = 1000, prediction = "v" }
  local _, info = V:loss(zero, x0, nil, { t = t, noise = noise })
  local a = V.alphas_cumprod[501]
  local v4 = noise:select(1, 4) * math.sqrt(a) - x0:select(1, 4) * math.sqrt(1 - a)
  T.ok(maxabs(info.target:select(1, 4), v4) < 1e-6, "v target = sqrt(ab) eps - sqrt(1-ab) x0")
  -- Min-SNR-gamma: each row's MSE times min(snr, gamma) / snr (eps) or / (snr + 1) (v), from the schedule in double
  local out = wb.randn(6, 2, 8)
  local fixed = function() return out end
  for _, P in ipairs { D, V } do
    local want = 0
    for r = 1, 6 do
      local ab = P.alphas_cumprod[t:get(r) + 1]
      local snr = ab / (1 - ab)
      local tg = P.prediction == "eps" and noise:select(1, r) or noise:select(1, r) * math.sqrt(ab) - x0:select(1, r) * math.sqrt(1 - ab)
      want = want + (out:select(1, r) - tg):pow(2):mean():item() * math.min(snr, 5) / (P.prediction == "eps" and snr or snr + 1) / 6
    end
    T.close(P:loss(fixed, x0, nil, { t = t, noise = noise, min_snr = 5 }):item(), want, 1e-4, "min_snr 5 weighting, " .. P.prediction)
  end
  local high = { t = wb.tensor({ 900, 950, 999, 800, 700, 600 }, "i64"), noise = noise }
  local plain = D:loss(fixed, x0, nil, high):item()
  high.min_snr = 5
  T.close(D:loss(fixed, x0, nil, high):item(), plain, 1e-5, "min_snr leaves eps rows with snr < gamma at weight 1")
  T.fails(function() D:loss(fixed, x0, nil, { min_snr = 0 }) end, "min_snr must be a positive number")
  -- condition dropout: about p of the rows, none at p = 0, all at p = 1
  local B = 4000
  local xb, cb = wb.zeros(B, 1, 1), wb.zeros(B, 1, 1)
  local count = function(p)
    local got
    D:loss(function(x, tt, c, o) got = o.uncond; return x end, xb, cb, { p_uncond = p })
    return got and got:sum():item() or 0
  end
  T.ok(count(0) == 0, "p_uncond 0: nothing dropped")
  T.ok(count(1) == B, "p_uncond 1: everything dropped")
  local k = count(0.1)
  T.ok(math.abs(k / B - 0.1) < 4 * math.sqrt(0.09 / B), "p_uncond 0.1: dropped " .. k .. " of " .. B)
end

------------------------------------------------------------------ EMA
do
  wb.manual_seed(4)
  local net = wb.nn.Linear(3, 2)
  local ema = wb.optim.EMA(net, 0.9)
  local w0 = net.weight:clone()
  local opt = wb.optim.SGD(net:parameters(), { lr = 0.1 })
  for _ = 1, 3 do
    local loss = net(wb.randn(4, 3)):pow(2):mean()
    opt:zero_grad(); loss:backward(); opt:step(); ema:update()
  end
  local m = diffusion.ema_model(ema)
  T.ok(maxabs(m.weight, ema.shadow[1]) == 0, "ema_model holds the EMA weights")
  T.ok(maxabs(m.weight, net.weight) > 1e-6 and maxabs(m.weight, w0) > 1e-6, "EMA weights lie between start and now")
  T.ok(not m.training and net.training, "ema_model is in eval mode, the trained net is not touched")
end

------------------------------------------------------------------ a tiny conditional diffusion
-- two classes of sine waves (2 and 6 cycles in 32 samples, random phase);
-- the condition is the class one-hot (B, 2). After 150 steps the guided
-- samples must have the requested class's frequency (the larger DFT power)
do
  wb.manual_seed(3)
  local L, FREQ = 32, { 2, 6 }
  local pos = wb.arange(0, L):to("f32") * (2 * math.pi / L)
  local eye = wb.tensor({ { 1, 0 }, { 0, 1 } })
  local function batch(n)
    local cls, ph = wb.randint(0, 2, { n }), wb.rand(n) * (2 * math.pi)
    local f = wb.tensor(FREQ):index_select(1, cls):reshape(n, 1, 1)
    return (f * pos:reshape(1, 1, L) + ph:reshape(n, 1, 1)):sin(), eye:index_select(1, cls)
  end
  local net = unet1d.UNet1d(unet1d.config("tiny", { in_channels = 1, cond_dim = 2, self_attention = false }))
  local D = diffusion.Diffusion { schedule = "cosine", T = 200 }
  local opt = wb.optim.AdamW(net:parameters(), { lr = 2e-3, weight_decay = 0 })
  local first, last = 0, 0
  for s = 1, 150 do
    local x, c = batch(32)
    local loss = D:loss(net, x, c, { p_uncond = 0.1 })
    opt:zero_grad(); loss:backward(); opt:step()
    if s <= 10 then first = first + loss:item() / 10 end
    if s > 140 then last = last + loss:item() / 10 end
  end
  T.ok(last < 0.5 * first, string.format("toy diffusion: loss %.3f -> %.3f", first, last))
  net:eval()
  local n = 64
  local cls = wb.cat({ wb.zeros(n / 2), wb.ones(n / 2) }):to("i64")
  local x = D:sample(net, { n, 1, L }, eye:index_select(1, cls), { steps = 20, guidance = 2, seed = 1 }):reshape(n, L)
  local function power(f)
    local c = (x * (pos * f):cos():reshape(1, L)):sum(2)
    local s = (x * (pos * f):sin():reshape(1, L)):sum(2)
    return (c * c + s * s):totable()
  end
  local p1, p2, want = power(FREQ[1]), power(FREQ[2]), cls:totable()
  local right = 0
  for i = 1, n do
    if (p1[i] > p2[i] and 0 or 1) == want[i] then right = right + 1 end
  end
  T.ok(right / n >= 0.9, string.format("toy diffusion: %d of %d samples have the requested frequency", right, n))
  print(string.format("toy conditional diffusion: loss %.3f -> %.3f, %d/%d samples of the requested class", first, last, right, n))
end

------------------------------------------------------------------ errors
do
  T.fails(function() diffusion.Diffusion { schedule = "quadratic" } end, "unknown schedule 'quadratic'")
  T.fails(function() diffusion.Diffusion { T = 0 } end, "T must be a positive integer")
  T.fails(function() diffusion.Diffusion { steps = 3 } end, "unknown option 'steps'")
  T.fails(function() diffusion.Diffusion { prediction = "x0" } end, "prediction must be 'eps' or 'v'")
  local D = diffusion.Diffusion { T = 100 }
  local model = function(x) return x end
  T.fails(function() D:sample(model, { 2, 1, 4 }, nil, { steps = 101 }) end, "steps must be an integer in 1..T = 100")
  T.fails(function() D:sample(model, { 2, 1, 4 }, wb.zeros(3, 5), {}) end, "must have the batch size B = 2")
  T.fails(function() D:sample(model, { 2, 1, 4 }, nil, { spacing = "odd" }) end, "spacing must be 'leading' or 'linspace'")
  T.fails(function() D:sample(model, { 2, 1, 4 }, nil, { stpes = 4 }) end, "unknown option 'stpes'")
  T.fails(function() D:loss(model, wb.zeros(2, 1, 4), wb.zeros(3, 1, 5)) end, "cond f32[3,1,5] must have the batch size B = 2")
  T.fails(function() D:loss(model, wb.zeros(2, 1, 4), nil, { p_uncond = 1.5 }) end, "p_uncond must be in [0, 1]")
  T.fails(function() D:loss(model, wb.zeros(2, 1, 4), nil, { t = wb.tensor({ 0, 100 }, "i64") }) end, "timesteps must be in 0..99")
  T.fails(function() D:q_sample(wb.zeros(2, 1, 4), 3.5) end, "timestep 3.5 is not an integer")
  T.fails(function() D:loss(function() return wb.zeros(2, 1, 3) end, wb.zeros(2, 1, 4)) end, "the model returned f32[2,1,3]")
  local net = unet1d.UNet1d(unet1d.config("tiny", { in_channels = 1, cond_dim = 2 }))
  T.fails(function() D:loss(net, wb.zeros(2, 1, 8), wb.zeros(2, 1, 3)) end, "cond must be (B, S, 2)")
end

T.done()
