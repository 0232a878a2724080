--[[ recipes/hr_regression.lua — heart rate from a raw 12-lead ECG.

Method. 12-lead ECGs are drawn from ecgwb's ECGSYN dipole simulator with a
heart rate uniform in [hr_min, hr_max] bpm. A small ECG-FM-shaped encoder
(a strided conv feature extractor, then a pre-LayerNorm transformer, then
mean pooling) regresses the rate, normalised to zero mean and unit variance,
with an MSE loss and AdamW under a warmup-cosine schedule. We report the
mean absolute error in bpm on held-out records, against predicting the
training mean.

  ecgwb recipes/hr_regression.lua [steps]
]]
local wb = require "ecgwb"
local nn, optim = wb.nn, wb.optim
local opts = ...                 -- wb.run("recipes/hr_regression.lua", { steps = 100 }) from the REPL
if type(opts) ~= "table" then opts = {} end

local cfg = {
  seed = 1,
  fs = 250, seconds = 4, hr_min = 45, hr_max = 150,
  n_train = 1024, n_test = 256,
  conv_channels = 32, conv_layers = 3,      -- kernel 2, stride 2 each (ECG-FM uses 4 x 256)
  d_model = 64, nhead = 4, ff = 128, layers = 2,
  batch = 32, steps = opts.steps or tonumber(arg and arg[1]) or 600, lr = 2e-3, warmup = 50, weight_decay = 0.01,
}
wb.manual_seed(cfg.seed)

-- data: simulated records with their true heart rate
local function make_set(n, first_index)
  local xs, hrs = {}, {}
  for i = 1, n do
    local u = ((i * 0.6180339887) % 1) -- evenly spread rates
    local hr = cfg.hr_min + (cfg.hr_max - cfg.hr_min) * u
    xs[i] = wb.sim.ecg { fs = cfg.fs, seconds = cfg.seconds, hr = hr, hr_std = 1, seed = cfg.seed, index = first_index + i }
    hrs[i] = hr
    if i % 64 == 0 then wb.yield() end -- lets the REPL answer while a job simulates
  end
  return wb.stack(xs, 1), wb.tensor(hrs)
end
local t0 = wb.now()
local x_train, hr_train = make_set(cfg.n_train, 0)
local x_test, hr_test = make_set(cfg.n_test, 1e6)
print(string.format("simulated %d + %d records of 12 x %d samples in %.1f s",
  cfg.n_train, cfg.n_test, cfg.fs * cfg.seconds, wb.now() - t0))
local hr_mean, hr_std = hr_train:mean():item(), hr_train:std():item()

-- model
local Encoder = nn.class("HREncoder")
function Encoder:__init()
  local convs, cin = {}, 12
  for i = 1, cfg.conv_layers do
    convs[#convs + 1] = nn.Conv1d(cin, cfg.conv_channels, 2, { stride = 2 })
    convs[#convs + 1] = nn.GELU()
    cin = cfg.conv_channels
  end
  self.features = nn.Sequential(unpack(convs))
  self.proj = nn.Linear(cfg.conv_channels, cfg.d_model)
  self.encoder = nn.TransformerEncoder(function()
    return nn.TransformerEncoderLayer(cfg.d_model, cfg.nhead,
      { dim_feedforward = cfg.ff, dropout = 0, activation = "gelu", norm_first = true })
  end, cfg.layers, nn.LayerNorm(cfg.d_model))
  self.head = nn.Linear(cfg.d_model, 1)
end
function Encoder:forward(x)                        -- x (B, 12, L) mV
  local h = self.features(x)                        -- (B, C, L/8)
  h = self.proj(h:transpose(2, 3))                  -- (B, T, D)
  h = self.encoder(h)                               -- (B, T, D)
  return self.head(h:mean(2)):view(-1)              -- (B)
end
local model = Encoder()
print(string.format("model: %d parameters", model:num_parameters()))

local opt = optim.AdamW(model:parameters(), { lr = cfg.lr, weight_decay = cfg.weight_decay })
local schedule = optim.warmup_cosine { warmup = cfg.warmup, total = cfg.steps, base_lr = cfg.lr, min_lr = cfg.lr * 0.05 }

local function evaluate(x, hr)
  model:eval()
  local pred = wb.no_grad(function() return model(x) * hr_std + hr_mean end)
  model:train()
  return (pred - hr):abs():mean():item()
end

-- training loop
local perm, pos = wb.randperm(cfg.n_train), 1
t0 = wb.now()
for step = 1, cfg.steps do
  if pos + cfg.batch - 1 > cfg.n_train then perm, pos = wb.randperm(cfg.n_train), 1 end
  local idx = perm:narrow(1, pos, cfg.batch)
  pos = pos + cfg.batch
  local x = x_train:index_select(1, idx)
  local y = (hr_train:index_select(1, idx) - hr_mean) / hr_std
  local loss = wb.mse_loss(model(x), y)
  opt:zero_grad()
  loss:backward()
  optim.clip_grad_norm(model:parameters(), 1.0)
  opt:set_lr(schedule(step))
  opt:step()
  wb.report { step = step, total = cfg.steps, loss = loss:item() } -- job:metrics(); yields to the loop
  if step % 50 == 0 or step == 1 then
    print(string.format("step %4d/%d  loss %.4f  lr %.2e  %.1f steps/s", step, cfg.steps, loss:item(),
      schedule(step), step / (wb.now() - t0)))
  end
end

local baseline = (hr_test - hr_mean):abs():mean():item()
local mae = evaluate(x_test, hr_test)
print(string.format("test HR MAE: %.2f bpm (predicting the training mean: %.2f bpm), %d records, seed %d",
  mae, baseline, cfg.n_test, cfg.seed))
