--[[ ecgwb.optim: optimisers, gradient clipping, learning-rate schedules and
weight EMA. The updates are fused C kernels (kernels/optim.c) that follow
torch.optim's algorithms term by term.

Functional style, as torch/optim: the state lives in a table the caller owns.
    local state = {}
    optim.adamw(params, nil, state, { lr = 1e-3, weight_decay = 0.01 })
`grads` may be nil (each param's .grad is used) or a list parallel to params.
A param without a gradient is skipped and its state is not advanced, as in
PyTorch. state[i] holds param i's state (step, exp_avg, exp_avg_sq for AdamW;
momentum_buffer for SGD), the layout of torch's optimizer.state_dict().

Object style wraps the functional one:
    local opt = optim.AdamW(model:parameters(), { lr = 3e-4, betas = {0.9, 0.95} })
    loss:backward(); opt:step(); opt:zero_grad()
    opt.config.lr = sched(step)          -- or opt:set_lr(lr)
`params` may also be a list of groups, {{params = {...}, weight_decay = 0}, ...},
each group overriding the shared config; opt.state is then indexed by the
param's position counted across groups.
]]
local wb = require "ecgwb"
local C = wb.C

local M = {}

local function grad_of(params, grads, i)
  if grads then return grads[i] end
  return params[i].grad
end

local function check_params(name, params)
  if type(params) ~= "table" then error(name .. ": params must be a list of tensors, got " .. type(params), 3) end
  for i = 1, #params do
    if not wb.is_tensor(params[i]) then error(name .. ": params[" .. i .. "] is not a tensor", 3) end
  end
end

------------------------------------------------------------------ AdamW
local ADAMW = { lr = 1e-3, betas = { 0.9, 0.999 }, eps = 1e-8, weight_decay = 1e-2 }

-- one AdamW step over params; returns state
function M.adamw(params, grads, state, config)
  check_params("adamw", params)
  config = config or {}
  local lr = config.lr or ADAMW.lr
  local betas = config.betas or ADAMW.betas
  local eps = config.eps or ADAMW.eps
  local wd = config.weight_decay or ADAMW.weight_decay
  local offset = config._offset or 0
  for i = 1, #params do
    local p, g = params[i], grad_of(params, grads, i)
    if g then
      local st = state[offset + i]
      if not st then
        st = { step = 0, exp_avg = wb.zeros(p:size()), exp_avg_sq = wb.zeros(p:size()) }
        state[offset + i] = st
      end
      st.step = st.step + 1
      wb.check(C.ewb_adamw_step(p.ptr, g.ptr, st.exp_avg.ptr, st.exp_avg_sq.ptr, lr, betas[1], betas[2], eps, wd, st.step))
    end
  end
  return state
end

------------------------------------------------------------------ SGD
local SGD = { lr = 1e-3, momentum = 0, dampening = 0, weight_decay = 0, nesterov = false }

-- one SGD step. torch sets the momentum buffer to the (decayed) gradient on
-- the first step; here the buffer starts at zero and the first step runs
-- without dampening, which gives the same buffer exactly.
function M.sgd(params, grads, state, config)
  check_params("sgd", params)
  config = config or {}
  local lr = config.lr or SGD.lr
  local mu = config.momentum or SGD.momentum
  local damp = config.dampening or SGD.dampening
  local wd = config.weight_decay or SGD.weight_decay
  local nesterov = config.nesterov and 1 or 0
  local offset = config._offset or 0
  for i = 1, #params do
    local p, g = params[i], grad_of(params, grads, i)
    if g then
      local buf, first = nil, false
      if mu ~= 0 then
        local st = state[offset + i]
        if not st then
          st = { momentum_buffer = wb.zeros(p:size()) }
          state[offset + i] = st
          first = true
        end
        buf = st.momentum_buffer
      end
      wb.check(C.ewb_sgd_step(p.ptr, g.ptr, buf and buf.ptr, lr, mu, first and 0 or damp, wd, nesterov))
    end
  end
  return state
end

------------------------------------------------------------------ object style
local Optimizer = {}
Optimizer.__index = Optimizer

local function make(fn, defaults, name)
  return function(params, config)
    if type(params) ~= "table" then error(name .. ": params must be a list of tensors or of groups", 2) end
    local groups = {}
    if #params > 0 and not wb.is_tensor(params[1]) then
      for _, g in ipairs(params) do groups[#groups + 1] = g end
    else
      groups[1] = { params = params }
    end
    local cfg = {}
    for k, v in pairs(defaults) do cfg[k] = v end
    for k, v in pairs(config or {}) do
      if defaults[k] == nil then error(name .. ": unknown option '" .. tostring(k) .. "'", 2) end
      cfg[k] = v
    end
    for gi, g in ipairs(groups) do
      if type(g.params) ~= "table" then error(name .. ": group " .. gi .. " has no params list", 2) end
      check_params(name, g.params)
    end
    return setmetatable({ fn = fn, config = cfg, groups = groups, state = {}, name = name }, Optimizer)
  end
end

function Optimizer:step()
  local offset = 0
  for _, g in ipairs(self.groups) do
    local cfg = { _offset = offset }
    for k, v in pairs(self.config) do cfg[k] = v end
    for k, v in pairs(g) do if k ~= "params" then cfg[k] = v end end
    self.fn(g.params, nil, self.state, cfg)
    offset = offset + #g.params
  end
end

-- gradients become nil (torch's set_to_none=True)
function Optimizer:zero_grad()
  for _, g in ipairs(self.groups) do
    for _, p in ipairs(g.params) do p:zero_grad() end
  end
end

-- sets the shared lr; a group's own lr, if it has one, is scaled by the same factor
function Optimizer:set_lr(lr)
  local old = self.config.lr
  for _, g in ipairs(self.groups) do
    if g.lr and old ~= 0 then g.lr = g.lr * lr / old end
  end
  self.config.lr = lr
end

function Optimizer:parameters()
  local out = {}
  for _, g in ipairs(self.groups) do for _, p in ipairs(g.params) do out[#out + 1] = p end end
  return out
end

M.AdamW = make(M.adamw, ADAMW, "AdamW")
M.SGD = make(M.sgd, SGD, "SGD")

------------------------------------------------------------------ clipping
-- global L2 norm of the gradients of params (params without one are skipped)
function M.grad_norm(params)
  local gs, n = wb.ffi.new("ewb_tensor*[?]", #params + 1), 0
  local keep = {} -- holds the grad wrappers while C reads their pointers
  for i = 1, #params do
    local g = params[i].grad
    if g then keep[#keep + 1] = g; gs[n] = g.ptr; n = n + 1 end
  end
  local norm = wb.ffi.new("double[1]")
  wb.check(C.ewb_grad_norm(n, gs, norm))
  return norm[0]
end

-- torch.nn.utils.clip_grad_norm_: scales every gradient by
-- max_norm / (total + 1e-6) when that is below 1; returns the total norm
-- before clipping
function M.clip_grad_norm(params, max_norm)
  if type(max_norm) ~= "number" or max_norm <= 0 then error("clip_grad_norm: max_norm must be a positive number", 2) end
  local total = M.grad_norm(params)
  local coef = max_norm / (total + 1e-6)
  if coef < 1 then
    for i = 1, #params do
      local g = params[i].grad
      if g then g:mul_(coef) end
    end
  end
  return total
end

------------------------------------------------------------------ schedules
-- Schedules map a step (counting from 1, the number of optimiser steps
-- taken including the current one) to a learning rate.
-- Warmup: lr rises linearly, base_lr * step / warmup, reaching base_lr at
-- step = warmup; then decays to min_lr at step = total and stays there.
local function sched_args(name, o)
  if type(o) ~= "table" then error(name .. ": expects a table {warmup=, total=, base_lr=, min_lr=}", 3) end
  local w, total, base, minlr = o.warmup or 0, o.total, o.base_lr, o.min_lr or 0
  if type(total) ~= "number" or type(base) ~= "number" then error(name .. ": total and base_lr are required numbers", 3) end
  if w < 0 or w > total then error(name .. ": need 0 <= warmup <= total, got warmup=" .. w .. " total=" .. total, 3) end
  return w, total, base, minlr
end

function M.warmup_cosine(o)
  local w, total, base, minlr = sched_args("warmup_cosine", o)
  return function(step)
    if step < w then return base * step / w end
    if step >= total then return minlr end
    local progress = (step - w) / (total - w)
    return minlr + 0.5 * (base - minlr) * (1 + math.cos(math.pi * progress))
  end
end

function M.warmup_linear(o)
  local w, total, base, minlr = sched_args("warmup_linear", o)
  return function(step)
    if step < w then return base * step / w end
    if step >= total then return minlr end
    return base + (minlr - base) * (step - w) / (total - w)
  end
end

------------------------------------------------------------------ EMA
-- ema = decay * ema + (1 - decay) * param after each :update(); the shadow
-- copy follows model:parameters() order.
local EMA = {}
EMA.__index = EMA

function M.EMA(model, decay)
  if type(decay) ~= "number" or decay < 0 or decay > 1 then error("EMA: decay must be a number in [0, 1]", 2) end
  local shadow = {}
  wb.no_grad(function()
    for i, p in ipairs(model:parameters()) do shadow[i] = p:detach():clone() end
  end)
  return setmetatable({ model = model, decay = decay, shadow = shadow, num_updates = 0 }, EMA)
end

function EMA:update(model)
  local ps = (model or self.model):parameters()
  if #ps ~= #self.shadow then error("EMA:update: model has " .. #ps .. " parameters, the EMA " .. #self.shadow, 2) end
  for i, p in ipairs(ps) do wb.check(C.ewb_ema_update(self.shadow[i].ptr, p.ptr, self.decay)) end
  self.num_updates = self.num_updates + 1
end

-- writes the averaged weights into model (default: the tracked one)
function EMA:copy_to(model)
  local ps = (model or self.model):parameters()
  if #ps ~= #self.shadow then error("EMA:copy_to: model has " .. #ps .. " parameters, the EMA " .. #self.shadow, 2) end
  for i, p in ipairs(ps) do p:copy_(self.shadow[i]) end
end

return M
