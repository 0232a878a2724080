-- test_train.lua: nn + optim end to end. An MLP learns two moons and a
-- 2-layer transformer encoder learns to reverse token sequences, both with
-- AdamW from a fixed seed. The loss bounds were chosen from observed runs
-- with a wide margin, and lie far below what an untrained model reaches
-- (ln 2 = 0.693 for the moons, ln 8 = 2.079 for the 8-token reversal).
local T = dofile("tests/check.lua")
local wb = require "ecgwb"
local nn = require "ecgwb.nn"
local optim = require "ecgwb.optim"

------------------------------------------------------------------ two moons
wb.manual_seed(1234)
do
  local N = 256
  local u, noise = wb.rand(N):totable(), wb.randn(N, 2):totable()
  local xs, ys = {}, {}
  for i = 1, N do
    local t, c = math.pi * u[i], (i - 1) % 2
    local x, y
    if c == 0 then x, y = math.cos(t), math.sin(t) else x, y = 1 - math.cos(t), 0.5 - math.sin(t) end
    xs[i] = { x + 0.1 * noise[2 * i - 1], y + 0.1 * noise[2 * i] }
    ys[i] = c
  end
  local X, Y = wb.tensor(xs), wb.tensor(ys, "i64")
  local mlp = nn.Sequential(nn.Linear(2, 32), nn.ReLU(), nn.Linear(32, 32), nn.ReLU(), nn.Linear(32, 2))
  local opt = optim.AdamW(mlp:parameters(), { lr = 1e-2, weight_decay = 1e-4 })
  local t0 = os.clock()
  local first, loss
  for step = 1, 400 do
    local l = wb.cross_entropy(mlp(X), Y)
    loss = l:item()
    first = first or loss
    l:backward()
    opt:step()
    opt:zero_grad()
  end
  local pred = mlp(X):argmax(-1):totable()
  local correct = 0
  for i = 1, N do if pred[i] == ys[i] then correct = correct + 1 end end
  -- observed: final loss 0.0008, 256/256 correct, 0.1 s of CPU on one thread
  print(string.format("two moons: loss %.4f -> %.4f, accuracy %d/%d, %.1f s", first, loss, correct, N, os.clock() - t0))
  T.ok(first > 0.6, "the untrained MLP is at chance: " .. first)
  T.ok(loss < 0.05, "MLP on two moons: loss " .. loss .. " < 0.05")
  T.ok(correct >= 0.98 * N, "MLP on two moons: accuracy " .. correct .. "/" .. N)
end

------------------------------------------------------------------ sequence reversal
wb.manual_seed(99)
do
  local V, L, D, B = 8, 8, 32, 64
  local Model = nn.class("Reverser")
  function Model:__init()
    self.tok = nn.Embedding(V, D)
    self.pos = nn.Embedding(L, D)
    self.encoder = nn.TransformerEncoder(function()
      return nn.TransformerEncoderLayer(D, 4, { dim_feedforward = 64, dropout = 0 })
    end, 2)
    self.head = nn.Linear(D, V)
    self.positions = wb.arange(0, L, 1, "i64")
  end
  function Model:forward(ids) -- ids (B, L) -> logits (B, L, V)
    local x = self.tok(ids) + self.pos(self.positions)
    return self.head(self.encoder(x))
  end
  local model = Model()
  local opt = optim.AdamW(model:parameters(), { lr = 3e-3, weight_decay = 0.01 })
  local sched = optim.warmup_cosine { warmup = 20, total = 200, base_lr = 3e-3, min_lr = 3e-4 }
  local rev = wb.arange(L - 1, -1, -1, "i64")
  local function batch()
    local ids = wb.randint(0, V, { B, L })
    return ids, ids:index_select(2, rev)
  end
  local t0 = os.clock()
  local first, loss
  for step = 1, 200 do
    opt:set_lr(sched(step))
    local ids, tgt = batch()
    local logits = model(ids)
    local l = wb.cross_entropy(logits:reshape(B * L, V), tgt:reshape(B * L))
    loss = l:item()
    first = first or loss
    l:backward()
    optim.clip_grad_norm(model:parameters(), 1.0)
    opt:step()
    opt:zero_grad()
  end
  model:eval()
  local ids, tgt = batch()
  local pred, want = model(ids):argmax(-1):totable(), tgt:totable()
  local correct = 0
  for i = 1, #want do if pred[i] == want[i] then correct = correct + 1 end end
  -- observed: final loss 0.008 and 512/512 tokens right, 0.9 s of CPU on one thread
  print(string.format("reversal: loss %.4f -> %.4f, held-out tokens %d/%d, %.1f s", first, loss, correct, #want, os.clock() - t0))
  T.ok(first > 1.8, "the untrained transformer is at chance (ln 8 = 2.08): " .. first)
  T.ok(loss < 0.2, "transformer reversal: loss " .. loss .. " < 0.2")
  T.ok(correct >= 0.95 * #want, "transformer reversal: held-out accuracy " .. correct .. "/" .. #want)
end

T.done()
