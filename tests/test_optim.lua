-- test_optim.lua: lua/ecgwb/optim.lua. Schedules at known steps (closed
-- forms), clip_grad_norm against a hand-computed norm, AdamW and SGD driving
-- a quadratic to its minimum, functional vs object style, torch's first-step
-- momentum buffer, parameter groups, EMA arithmetic, and argument errors.
-- Gradients are written by hand (grad of sum a*(p-c)^2 is 2a(p-c)) so the
-- test exercises the optimisers alone.
local T = dofile("tests/check.lua")
local wb = require "ecgwb"
local optim = require "ecgwb.optim"
local nn = require "ecgwb.nn"

wb.manual_seed(11)

-- s1*x + s2*y (+ c) computed in Lua, shaped like x: a reference that does
-- not go through the tensor ops
local function lin(x, s1, y, s2, c)
  local xt, yt, out = x:totable(), y and y:totable(), {}
  for i = 1, #xt do out[i] = s1 * xt[i] + (y and s2 * yt[i] or 0) + (c or 0) end
  return wb.tensor(out):reshape(x:size())
end

------------------------------------------------------------------ schedules
do
  local f = optim.warmup_cosine { warmup = 10, total = 110, base_lr = 1.0, min_lr = 0.1 }
  T.close(f(0), 0, 1e-12, "cosine: step 0 is 0")
  T.close(f(5), 0.5, 1e-12, "cosine: half way through warmup")
  T.close(f(10), 1.0, 1e-12, "cosine: end of warmup is base_lr")
  T.close(f(60), 0.55, 1e-12, "cosine: mid-decay is (base+min)/2")
  T.close(f(35), 0.1 + 0.45 * (1 + math.cos(math.pi / 4)), 1e-12, "cosine: quarter of the decay")
  T.close(f(110), 0.1, 1e-12, "cosine: end is min_lr")
  T.close(f(500), 0.1, 1e-12, "cosine: after the end stays at min_lr")
  local g = optim.warmup_linear { warmup = 4, total = 104, base_lr = 2e-3 }
  T.close(g(1), 5e-4, 1e-12, "linear: warmup step 1")
  T.close(g(4), 2e-3, 1e-12, "linear: end of warmup")
  T.close(g(54), 1e-3, 1e-12, "linear: half way down")
  T.close(g(104), 0, 1e-12, "linear: ends at 0")
  local h = optim.warmup_cosine { total = 10, base_lr = 3 }
  T.close(h(0), 3, 1e-12, "no warmup starts at base_lr")
  T.fails(function() optim.warmup_cosine { warmup = 20, total = 10, base_lr = 1 } end, "need 0 <= warmup <= total")
  T.fails(function() optim.warmup_linear { warmup = 2 } end, "total and base_lr are required")
end

------------------------------------------------------------------ clipping
do
  local a, b = wb.randn(3, 4):requires_grad_(), wb.randn(5):requires_grad_()
  local c = wb.randn(2):requires_grad_() -- no gradient: skipped
  local ga, gb = wb.randn(3, 4), wb.randn(5)
  a.grad, b.grad = ga:clone(), gb:clone()
  local ss = 0
  for _, v in ipairs(ga:totable()) do ss = ss + v * v end
  for _, v in ipairs(gb:totable()) do ss = ss + v * v end
  local norm = math.sqrt(ss)
  T.close(optim.grad_norm { a, b, c }, norm, 1e-6, "grad_norm = sqrt of the sum of squares")
  -- above max_norm: scaled to max_norm
  local total = optim.clip_grad_norm({ a, b, c }, 0.5)
  T.close(total, norm, 1e-6, "clip_grad_norm returns the norm before clipping")
  T.close(optim.grad_norm { a, b }, 0.5, 1e-5, "after clipping the norm is max_norm")
  local scale = 0.5 / (norm + 1e-6)
  T.close(a.grad, lin(ga, scale), 1e-6, "each gradient is scaled by max_norm / (norm + 1e-6)")
  -- below max_norm: untouched
  local g2 = b.grad:clone()
  optim.clip_grad_norm({ a, b }, 100)
  T.close(b.grad, g2, 0, "a norm under max_norm leaves gradients alone")
  T.ok(scale < 1, "the case above really clipped")
  T.fails(function() optim.clip_grad_norm({ a }, 0) end, "max_norm must be a positive number")
end

------------------------------------------------------------------ quadratic
-- f(p) = sum a_i (p_i - c_i)^2, minimum at c; writes p.grad = 2a(p - c)
local A = wb.tensor { 1, 10, 0.1, 3, 0.5, 2 }
local Cst = wb.tensor { 1, -2, 0.5, 3, -1, 0 }
local function set_grad(p)
  local g = p:detach():clone()
  g:add_(Cst, -1)
  local gt = g:totable()
  local at = A:totable()
  for i = 1, #gt do gt[i] = 2 * at[i] * gt[i] end
  p.grad = wb.tensor(gt)
end
local function dist(p)
  local d, pt, ct = 0, p:totable(), Cst:totable()
  for i = 1, #pt do d = math.max(d, math.abs(pt[i] - ct[i])) end
  return d
end

do -- AdamW reaches the minimum (no weight decay: the minimum is c exactly)
  local p = wb.zeros(6):requires_grad_()
  local opt = optim.AdamW({ p }, { lr = 0.05, weight_decay = 0 })
  local start = dist(p)
  for _ = 1, 800 do set_grad(p); opt:step(); opt:zero_grad() end
  T.ok(dist(p) < 1e-3, "AdamW on a quadratic: max |p - c| = " .. dist(p) .. " (from " .. start .. ")")
  T.ok(opt.state[1].step == 800, "AdamW counts steps per parameter")
  T.ok(p.grad == nil, "zero_grad sets gradients to nil")
end

do -- functional and object styles agree, and grads may be passed explicitly
  local p1, p2 = wb.randn(6):requires_grad_(), nil
  p2 = p1:detach():clone():requires_grad_()
  local st = {}
  local opt = optim.AdamW({ p2 }, { lr = 0.01, betas = { 0.8, 0.99 }, weight_decay = 0.1 })
  for _ = 1, 5 do
    set_grad(p1)
    optim.adamw({ p1 }, { p1.grad }, st, { lr = 0.01, betas = { 0.8, 0.99 }, weight_decay = 0.1 })
    set_grad(p2)
    opt:step()
  end
  T.close(p1, p2, 0, "functional adamw == AdamW object")
  T.ok(st[1].step == 5 and st[1].exp_avg:numel() == 6, "the caller's state table holds step and exp_avg")
end

do -- one AdamW step by hand: p(1 - lr wd) - lr * m̂ / (sqrt(v̂) + eps), with m̂ = g, v̂ = g²
  local p = wb.tensor { 1, -1 }:requires_grad_()
  p.grad = wb.tensor { 0.5, -2 }
  optim.adamw({ p }, nil, {}, { lr = 0.1, weight_decay = 0.5, eps = 0 })
  T.close(p, wb.tensor { 1 * 0.95 - 0.1, -1 * 0.95 + 0.1 }, 1e-6, "AdamW first step")
end

do -- SGD with momentum and nesterov reaches the minimum
  for _, cfg in ipairs { { lr = 0.02, momentum = 0.9 }, { lr = 0.02, momentum = 0.9, nesterov = true },
    { lr = 0.09 }, { lr = 0.05, momentum = 0.5, dampening = 0.3 } } do
    local p = wb.zeros(6):requires_grad_()
    local opt = optim.SGD({ p }, cfg)
    for _ = 1, 600 do set_grad(p); opt:step() end
    T.ok(dist(p) < 1e-3, string.format("SGD (momentum %s, nesterov %s): max |p - c| = %g", tostring(cfg.momentum),
      tostring(cfg.nesterov), dist(p)))
  end
  -- torch: the first step sets the buffer to the gradient, without dampening
  local p = wb.zeros(6):requires_grad_()
  set_grad(p)
  local g = p.grad:clone()
  local st = optim.sgd({ p }, nil, {}, { lr = 0.1, momentum = 0.9, dampening = 0.5 })
  T.close(st[1].momentum_buffer, g, 0, "first SGD step: buffer = grad (no dampening)")
  T.close(p, lin(g, -0.1), 1e-6, "first SGD step: p -= lr * grad")
  -- second step: buf = 0.9 buf + 0.5 g
  set_grad(p)
  local g2 = p.grad:clone()
  optim.sgd({ p }, nil, st, { lr = 0.1, momentum = 0.9, dampening = 0.5 })
  T.close(st[1].momentum_buffer, lin(g, 0.9, g2, 0.5), 1e-6, "second SGD step: dampened buffer")
end

do -- parameter groups: state indexed across groups, per-group options
  local a, b = wb.ones(3):requires_grad_(), wb.ones(2):requires_grad_()
  local opt = optim.AdamW({ { params = { a } }, { params = { b }, weight_decay = 0, lr = 0.2 } }, { lr = 0.1, weight_decay = 1 })
  a.grad, b.grad = wb.zeros(3), wb.zeros(2)
  opt:step()
  -- zero gradient: only the decoupled decay moves a parameter
  T.close(a, wb.full({ 3 }, 0.9), 1e-6, "group 1 uses the shared lr and weight decay")
  T.close(b, wb.ones(2), 0, "group 2 has weight_decay 0")
  T.ok(opt.state[1].exp_avg:numel() == 3 and opt.state[2].exp_avg:numel() == 2, "state indexed across groups")
  opt:set_lr(0.05)
  T.ok(opt.config.lr == 0.05 and math.abs(opt.groups[2].lr - 0.1) < 1e-12, "set_lr scales group lrs")
  T.fails(function() optim.AdamW({ a }, { learning_rate = 1 }) end, "AdamW: unknown option 'learning_rate'")
  T.fails(function() optim.adamw({ a, 3 }, nil, {}, {}) end, "adamw: params[2] is not a tensor")
  T.fails(function() optim.adamw({ b }, { wb.zeros(3) }, {}, {}) end, "adamw_step: grad f32[3] does not match param f32[2]")
end

------------------------------------------------------------------ EMA
do
  local m = nn.Linear(4, 3)
  local ema = optim.EMA(m, 0.9)
  local w0 = m.weight:detach():clone()
  wb.no_grad(function() m.weight:add_(wb.ones(3, 4), 1) end)
  ema:update()
  T.close(ema.shadow[1], lin(w0, 1, nil, 0, 0.1), 1e-6, "EMA: 0.9 old + 0.1 new")
  local other = nn.Linear(4, 3)
  ema:copy_to(other)
  T.close(other.weight, lin(w0, 1, nil, 0, 0.1), 1e-6, "EMA:copy_to writes the shadow weights")
  T.close(other.bias, m.bias, 1e-6, "EMA: an unchanged parameter stays")
  T.fails(function() ema:copy_to(nn.Linear(4, 3, false)) end, "EMA:copy_to: model has 1 parameters, the EMA 2")
  T.fails(function() optim.EMA(m, 2) end, "decay must be a number in [0, 1]")
end

T.done()
