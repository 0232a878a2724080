-- tests/test_checkpoint.lua: lua/ecgwb/checkpoint.lua.
-- 1. Resume is bit-identical across processes: 2N steps straight against N
--    steps, a save, and N more in a fresh ecgwb process (tests/checkpoint_train.lua:
--    an MLP with dropout, AdamW, a shuffled loader): identical losses and
--    bit-identical weights and optimiser state. Without restoring the RNG the
--    losses differ (so the check can fail).
-- 2. Round trips in process: SGD momentum, extra tensors, config and loader.
-- 3. Errors: wrong optimizer, shape mismatch, a flipped data byte (checksum),
--    a truncated file, a plain state dict, resume_or_start without a file.
local wb = require "ecgwb"
local T = dofile("tests/check.lua")
local ffi = wb.ffi
local nn, optim = wb.nn, wb.optim

local dir = os.tmpname()
os.remove(dir)
assert(os.execute("mkdir -p " .. dir) == 0)
local exe = arg and arg[-1] or "build/ecgwb"
for i = -1, -10, -1 do if arg and arg[i] then exe = arg[i] end end -- the host binary, not its options

local function bytes(t) return ffi.string(t:data_ptr(), t:numel() * ({ f32 = 4, i64 = 8, i32 = 4, bool = 1 })[t:type()]) end
local function same_bits(a, b) return a:type() == b:type() and table.concat(a:size(), ",") == table.concat(b:size(), ",") and bytes(a) == bytes(b) end
local function read_file(p) local f = assert(io.open(p, "rb")); local s = f:read("*a"); f:close(); return s end
local function write_file(p, s) local f = assert(io.open(p, "wb")); f:write(s); f:close() end

------------------------------------------------------------------ 1. resume across processes
local run = dofile("tests/checkpoint_train.lua")
local N = 10
local straight = run.setup(7)
local all = run.train(straight, 1, 2 * N)

local first = run.setup(7)
local head = run.train(first, 1, N)
for i = 1, N do T.ok(head[i] == all[i], "first half loss " .. i) end
local ckpt = dir .. "/run.h5"
wb.checkpoint.save(ckpt, { model = first.model, optimizer = first.opt, step = N, loader = first.loader,
  config = { lr = 1e-2, name = "mlp \"dropout\"", sizes = { 8, 32, 3 } } })
T.ok(io.open(ckpt .. ".tmp") == nil, "no .tmp left")

local function child(out, flag)
  local cmd = string.format("%s tests/checkpoint_train.lua %s %s %d %d %s", exe, ckpt, out, N + 1, 2 * N, flag or "")
  local rc = os.execute(cmd)
  T.ok(rc == 0, "child process: " .. cmd .. " -> " .. tostring(rc))
  if rc ~= 0 then return nil end
  return wb.json.decode(read_file(out .. ".json")), wb.h5.load(out .. ".h5")
end

local tail, state = child(dir .. "/resumed")
if tail then
  T.ok(#tail == N, "child ran N steps")
  local same = true
  for i = 1, N do
    if tail[i] ~= all[N + i] then
      same = false
      io.stderr:write(string.format("step %d: resumed loss %.9g, straight %.9g\n", N + i, tail[i], all[N + i]))
    end
  end
  T.ok(same, "resumed losses equal the straight run's exactly")
  local nweights = 0
  for k, v in pairs(straight.model:state_dict()) do
    T.ok(state["model/" .. k] and same_bits(state["model/" .. k], v), "bit-identical weight " .. k)
    nweights = nweights + 1
  end
  T.ok(nweights == 6, "6 weights compared")
  for i, st in pairs(straight.opt.state) do
    T.ok(same_bits(state["optim/" .. i .. "/exp_avg"], st.exp_avg) and same_bits(state["optim/" .. i .. "/exp_avg_sq"], st.exp_avg_sq),
      "bit-identical AdamW state of param " .. i)
  end
end
-- the negative control: the same resume without the RNG state diverges
local tail2 = child(dir .. "/norng", "norng")
if tail2 then
  local differ = false
  for i = 1, N do if tail2[i] ~= all[N + i] then differ = true end end
  T.ok(differ, "without the RNG state the resumed losses differ (dropout masks and shuffles change)")
end

------------------------------------------------------------------ 2. round trips in process
do
  local r = wb.checkpoint.read(ckpt)
  T.ok(r.meta.step == N and r.meta.optimizer.name == "AdamW", "meta: step and optimizer")
  T.ok(r.config.name == 'mlp "dropout"' and r.config.sizes[2] == 32 and r.config.lr == 1e-2, "config round trip")
  T.ok(r.meta.loader.pos == first.loader.pos and #r.meta.loader.perm == 64 and r.meta.loader.perm[3] == first.loader.perm[3],
    "loader round trip")
  T.ok(r.meta.optimizer.numbers["0.weight"].step == N, "AdamW step count by name: " .. tostring(r.meta.optimizer.numbers["0.weight"].step))
  T.ok(r.tensors["optim/0.weight/exp_avg"] ~= nil and r.tensors["model/6.bias"] ~= nil and r.tensors.rng:type() == "i64",
    "dataset layout")
  T.ok(wb.checkpoint.verify(ckpt) == true, "verify")
  -- the lr set by set_lr is restored with the optimizer config
  local fresh = run.setup(3)
  fresh.opt:set_lr(0.5)
  wb.checkpoint.load(ckpt, { model = fresh.model, optimizer = fresh.opt })
  T.ok(fresh.opt.config.lr == first.opt.config.lr, "lr restored: " .. fresh.opt.config.lr)
  T.ok(fresh.opt.state[1].step == N, "per-param step restored")
end

do -- SGD with momentum, param groups, extra tensors, RNG
  wb.manual_seed(5)
  local model = nn.Sequential(nn.Linear(4, 5), nn.ReLU(), nn.Linear(5, 2))
  local ps = model:parameters()
  local opt = optim.SGD({ { params = { ps[1], ps[2] } }, { params = { ps[3], ps[4] }, lr = 0.05 } }, { lr = 0.1, momentum = 0.9 })
  local x = wb.randn(3, 4)
  for _ = 1, 3 do
    local loss = model(x):square():sum()
    opt:zero_grad(); loss:backward(); opt:step()
  end
  local ema = wb.randn(7)
  local path = dir .. "/sgd.h5"
  wb.checkpoint.save(path, { model = model, optimizer = opt, step = 3, extra = { ema = ema } })
  local w_saved = bytes(ps[1])
  local after = wb.randn(4) -- what the RNG draws next
  wb.manual_seed(123)
  local model2 = nn.Sequential(nn.Linear(4, 5), nn.ReLU(), nn.Linear(5, 2))
  local ps2 = model2:parameters()
  local opt2 = optim.SGD({ { params = { ps2[1], ps2[2] } }, { params = { ps2[3], ps2[4] } } }, { lr = 0.1, momentum = 0.9 })
  local r = wb.checkpoint.load(path, { model = model2, optimizer = opt2 })
  T.ok(same_bits(wb.randn(4), after), "RNG restored: the same next draw")
  T.ok(r.step == 3 and r.loader == nil and next(r.config) == nil, "step; no loader; empty config")
  T.ok(same_bits(r.extra.ema, ema), "extra tensor")
  T.ok(opt2.groups[2].lr == 0.05, "group lr restored")
  for i = 1, 4 do
    T.ok(same_bits(opt2.state[i].momentum_buffer, opt.state[i].momentum_buffer), "momentum buffer " .. i)
    T.ok(same_bits(ps2[i], ps[i]), "param " .. i)
  end
  -- one more step on each gives the same weights
  local l1, l2 = model(x):square():sum(), model2(x):square():sum()
  opt:zero_grad(); l1:backward(); opt:step()
  opt2:zero_grad(); l2:backward(); opt2:step()
  for i = 1, 4 do T.ok(same_bits(ps2[i], ps[i]), "param after one more step " .. i) end

  -- errors
  local adam = optim.AdamW(model2:parameters())
  T.fails(function() wb.checkpoint.load(path, { model = model2, optimizer = adam }) end, "holds SGD state, the optimizer is AdamW")
  local wide = nn.Sequential(nn.Linear(4, 6), nn.ReLU(), nn.Linear(6, 2))
  T.fails(function() wb.checkpoint.load(path, { model = wide }) end, "size mismatch for 0.weight")
  local other = nn.Linear(4, 4)
  T.fails(function() wb.checkpoint.save(path, { model = model, optimizer = optim.SGD(other:parameters()) }) end,
    "optimizer parameter 1 is not a parameter of the model")
  T.fails(function() wb.checkpoint.save(path, { optimizer = opt }) end, "needs the model too")
  T.fails(function() wb.checkpoint.save(path, { model = model, config = { f = print } }) end, "config: json.encode: value.f is a function")
  T.fails(function() wb.checkpoint.save(dir .. "/no/such/dir/x.h5", { model = model }) end, "checkpoint.save: ckpt_write: cannot create")
  T.ok(wb.checkpoint.verify(path), "a failed save leaves the old file intact")

  -- damage: a flipped byte in the weights, a truncated file, a plain state dict
  local text = read_file(path)
  local at = text:find(w_saved, 1, true)
  T.ok(at ~= nil, "the weight's bytes are in the file")
  if at then
    local flipped = text:sub(1, at + 2) .. string.char(bit.bxor(text:byte(at + 3), 1)) .. text:sub(at + 4)
    write_file(dir .. "/flipped.h5", flipped)
    T.fails(function() wb.checkpoint.load(dir .. "/flipped.h5", { model = model2 }) end, "is corrupt: checksum mismatch")
    local ok, why = wb.checkpoint.verify(dir .. "/flipped.h5")
    T.ok(not ok and why:find("checksum mismatch", 1, true), "verify reports the mismatch")
  end
  write_file(dir .. "/short.h5", text:sub(1, math.floor(#text * 0.6)))
  T.fails(function() wb.checkpoint.load(dir .. "/short.h5", { model = model2 }) end, "truncated")
  wb.save_state_dict(dir .. "/sd.h5", model:state_dict())
  T.fails(function() wb.checkpoint.load(dir .. "/sd.h5", { model = model2 }) end, "is not an ecgwb checkpoint")
  T.fails(function() wb.checkpoint.load(dir .. "/missing.h5") end, "cannot open")
end

------------------------------------------------------------------ resume_or_start
do
  local ctx = run.setup(11)
  local path = dir .. "/ros.h5"
  local saved_arg = arg
  arg = { [0] = "recipe.lua" }
  local r = wb.checkpoint.resume_or_start { path = path, model = ctx.model, optimizer = ctx.opt }
  T.ok(r.step == 0 and not r.resumed, "no flag: fresh start")
  arg = { [0] = "recipe.lua", "--resume" }
  T.fails(function() wb.checkpoint.resume_or_start { path = path, model = ctx.model } end, "--resume given, but there is no checkpoint at")
  r = wb.checkpoint.resume_or_start { path = path, model = ctx.model, resume = "auto" }
  T.ok(r.step == 0 and not r.resumed, "auto without a file: fresh start")
  run.train(ctx, 1, 3)
  wb.checkpoint.save(path, { model = ctx.model, optimizer = ctx.opt, step = 3, loader = ctx.loader, config = { steps = 10, lr = 1 } })
  local ctx2 = run.setup(12)
  r = wb.checkpoint.resume_or_start { path = path, model = ctx2.model, optimizer = ctx2.opt, config = { steps = 20, lr = 1 } }
  T.ok(r.resumed and r.step == 3 and r.loader.pos == ctx.loader.pos and r.config.steps == 10, "--resume: resumed at step 3")
  T.ok(same_bits(ctx2.model:parameters()[1], ctx.model:parameters()[1]), "--resume restored the weights")
  arg = { [0] = "recipe.lua", "--resume=" .. path }
  r = wb.checkpoint.resume_or_start { path = dir .. "/elsewhere.h5", model = run.setup(13).model }
  T.ok(r.resumed and r.path == path, "--resume=PATH")
  arg = saved_arg
end

do -- the write as awaited slow work: a snapshot taken at submit, written on the loop's worker
  wb.manual_seed(9)
  local model = nn.Sequential(nn.Linear(4, 5), nn.ReLU(), nn.Linear(5, 2))
  local opt = optim.AdamW(model:parameters(), { lr = 1e-2 })
  local loss = model(wb.randn(3, 4)):square():sum()
  opt:zero_grad(); loss:backward(); opt:step()
  local path = dir .. "/async.h5"
  local w_saved = bytes(model:parameters()[1])
  local work = wb.checkpoint.save_async(path, { model = model, optimizer = opt, step = 1 })
  model:parameters()[1]:fill_(0) -- training goes on: the file holds the snapshot
  wb.await(work)
  local model2 = nn.Sequential(nn.Linear(4, 5), nn.ReLU(), nn.Linear(5, 2))
  local r = wb.checkpoint.load(path, { model = model2, optimizer = optim.AdamW(model2:parameters()) })
  T.ok(r.step == 1 and bytes(model2:parameters()[1]) == w_saved, "save_async wrote the state as it was at submit")
  T.fails(function() wb.await(wb.checkpoint.save_async(dir .. "/no/such/dir/x.h5", { model = model })) end,
    "ckpt_write: cannot create")
end

os.execute("rm -rf " .. dir)

T.done()
