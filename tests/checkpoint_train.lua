--[[ tests/checkpoint_train.lua: the small training run that
tests/test_checkpoint.lua stops, checkpoints and resumes.

An MLP with dropout (so the RNG state matters) trained with AdamW, gradient
clipping and a warmup-cosine schedule, on batches drawn through a shuffled
loader whose position and permutation go into the checkpoint.

As a module (dofile): returns { setup = setup, train = train, B = B }.
As a script, the second half of a run in a fresh process:
  ecgwb tests/checkpoint_train.lua CKPT OUT FROM TO [norng]
loads CKPT into a freshly (differently) initialised model, trains steps
FROM..TO, and writes the losses to OUT.json and the weights and optimiser
state to OUT.h5. `norng` skips restoring the RNG (the negative control).
]]
local wb = require "ecgwb"
local nn, optim = wb.nn, wb.optim

local N, B, TOTAL = 64, 16, 40

-- data fixed by seed 1; the model initialised from init_seed
local function setup(init_seed)
  wb.manual_seed(1)
  local ctx = { X = wb.randn(N, 8), Y = wb.randint(0, 3, { N }) }
  wb.manual_seed(init_seed)
  ctx.model = nn.Sequential(nn.Linear(8, 32), nn.GELU(), nn.Dropout(0.3), nn.Linear(32, 32), nn.GELU(),
    nn.Dropout(0.2), nn.Linear(32, 3))
  ctx.opt = optim.AdamW(ctx.model:parameters(), { lr = 1e-2, weight_decay = 0.05 })
  ctx.schedule = optim.warmup_cosine { warmup = 5, total = TOTAL, base_lr = 1e-2, min_lr = 1e-3 }
  ctx.loader = { pos = 1 } -- perm: a list of 0-based record numbers, drawn each epoch
  return ctx
end

-- trains steps from..to; returns their losses
local function train(ctx, from, to)
  local losses, L = {}, ctx.loader
  for step = from, to do
    if not L.perm or L.pos + B - 1 > N then
      L.perm, L.pos = wb.randperm(N):totable(), 1
    end
    local idx = {}
    for i = 1, B do idx[i] = L.perm[L.pos + i - 1] end
    L.pos = L.pos + B
    local ids = wb.tensor(idx, "i64")
    local x, y = ctx.X:index_select(1, ids), ctx.Y:index_select(1, ids)
    local loss = wb.cross_entropy(ctx.model(x), y)
    ctx.opt:zero_grad()
    loss:backward()
    optim.clip_grad_norm(ctx.model:parameters(), 1.0)
    ctx.opt:set_lr(ctx.schedule(step))
    ctx.opt:step()
    losses[#losses + 1] = loss:item()
  end
  return losses
end

if select("#", ...) == 0 then return { setup = setup, train = train, B = B } end

local ckpt, out, from, to, flag = ...
local ctx = setup(99)
local r = wb.checkpoint.load(ckpt, { model = ctx.model, optimizer = ctx.opt, rng = flag ~= "norng" })
assert(r.step == tonumber(from) - 1, "resumed at step " .. tostring(r.step))
ctx.loader = r.loader
local losses = train(ctx, tonumber(from), tonumber(to))
local f = assert(io.open(out .. ".json", "w"))
f:write(wb.json.encode(losses))
f:close()
local save = {}
for k, v in pairs(ctx.model:state_dict()) do save["model/" .. k] = v end
for i, st in pairs(ctx.opt.state) do
  save["optim/" .. i .. "/exp_avg"], save["optim/" .. i .. "/exp_avg_sq"] = st.exp_avg, st.exp_avg_sq
end
wb.h5.save(out .. ".h5", save)
