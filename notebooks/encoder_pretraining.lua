--[[md
# Pretraining an ECG encoder by masked reconstruction

ECG-FM pretrains a transformer ECG encoder with self-supervision: a strided
convolutional feature extractor turns the 12-lead signal into tokens, a
convolutional positional embedding adds position, a transformer mixes the
tokens, and spans of tokens are **masked** so the model must infer them from
their context (wav2vec 2.0's masked prediction).

This notebook walks through the same recipe at toy scale, so that it runs in
about a minute on two cores:

- data: simulated 12-lead ECGs from `wb.sim` (250 Hz, 4 s), with a mix of
  rhythms and conduction, ST and axis conditions;
- encoder: 3 conv layers (kernel 2, stride 2: one token per 8 samples, 32 ms),
  a grouped conv positional embedding, 2 pre-LayerNorm transformer layers of
  width 64;
- objective: replace spans of tokens by a learned mask embedding and regress
  the masked stretch of raw signal (12 leads × 8 samples per token) with an
  MSE on the masked tokens only. ECG-FM's objective is the contrastive
  wav2vec 2.0 loss over quantised targets; a reconstruction loss is the
  simpler, MAE-style member of the same family.

The encoder here is written out in the notebook: the workbench's own
`ecgwb.models.ecg_encoder` was not on main when this notebook was written.
]]
local wb = require "ecgwb"
local nb = wb.notebook -- nb.show, nb.table, nb.md: into the page (placeholder lines when run as a plain script)
local nn, optim = wb.nn, wb.optim

local cfg = {
  seed = 7, fs = 250, seconds = 4,
  n_train = 384, n_test = 32,
  channels = 64, conv_layers = 3, d_model = 64, nhead = 4, ff = 128, layers = 2,
  mask_start = 0.08, mask_span = 5,        -- P(token starts a span), span length in tokens
  batch = 16, steps = 300, lr = 2e-3, warmup = 30, weight_decay = 0.01,
}
cfg.patch = 2 ^ cfg.conv_layers             -- samples per token
cfg.samples = cfg.fs * cfg.seconds
cfg.tokens = cfg.samples / cfg.patch
wb.manual_seed(cfg.seed)
print(string.format("%d samples per lead -> %d tokens of %d samples (%.0f ms)", cfg.samples, cfg.tokens, cfg.patch,
  1000 * cfg.patch / cfg.fs))

--[[md
## Data

A varied corpus matters even for self-supervision: the model should see
slow and fast rates, irregular rhythms, wide QRS complexes and shifted ST
segments. Each record draws a condition from a small list, with its own
heart rate and simulator seed. Signals are in mV; we divide by one global
scale (the training set's standard deviation) so the loss is in units of
signal variance.
]]
--%% simulate the corpus
local conditions = {
  {}, { hr = 48 }, { hr = 115 }, { rhythm = "afib", hr = 90 }, { rhythm = "aflt", flutter_block = 2 },
  { pr_ms = 260 }, { bbb = "left" }, { bbb = "right" }, { pvc_prob = 0.2 }, { st = "anterior", st_mv = 0.2 },
  { std_mv = 0.15 }, { t_inversion = true }, { axis = -45 }, { lvh_mv = 4.5 },
}
local function corpus(n, first)
  local list = {}
  for i = 1, n do
    local o = { fs = cfg.fs, seconds = cfg.seconds, seed = cfg.seed, index = first + i,
                hr = 55 + 50 * ((i * 0.618034) % 1) }
    for k, v in pairs(conditions[(i - 1) % #conditions + 1]) do o[k] = v end
    list[i] = o
  end
  return wb.sim.batch(list)
end
local t0 = wb.now()
local train, test = corpus(cfg.n_train, 0), corpus(cfg.n_test, 100000)
local scale = train.ecg:std():item()
local x_train, x_test = train.ecg / scale, test.ecg / scale   -- (N, 12, samples)
print(string.format("simulated %d + %d records (12 x %d) in %.1f s; scale %.3f mV", cfg.n_train, cfg.n_test,
  cfg.samples, wb.now() - t0, scale))
print("first test record: " .. test.report[1])

--[[md
## The encoder

`forward(x, mask)` returns token features `(B, T, D)`: the conv features of
masked tokens are replaced by a learned vector *before* the positional
embedding and the transformer, so nothing of a masked stretch leaks into the
model (with kernel 2 and stride 2 at every layer, a token's receptive field
is exactly its own 8 samples). A linear head maps each token back to its
12 × 8 raw samples.
]]
--%% model
local Encoder = nn.class("TinyECGEncoder")
function Encoder:__init()
  local convs, cin = {}, 12
  for _ = 1, cfg.conv_layers do
    convs[#convs + 1] = nn.Conv1d(cin, cfg.channels, 2, { stride = 2 })
    convs[#convs + 1] = nn.GELU()
    cin = cfg.channels
  end
  self.features = nn.Sequential(unpack(convs))
  self.proj = nn.Linear(cfg.channels, cfg.d_model)
  self:register_parameter("mask_emb", wb.zeros(cfg.d_model):uniform_(-0.1, 0.1))
  self.pos_conv = nn.Conv1d(cfg.d_model, cfg.d_model, 9, { padding = 4, groups = 4 })
  self.transformer = nn.TransformerEncoder(function()
    return nn.TransformerEncoderLayer(cfg.d_model, cfg.nhead,
      { dim_feedforward = cfg.ff, dropout = 0, activation = "gelu", norm_first = true })
  end, cfg.layers, nn.LayerNorm(cfg.d_model))
end
function Encoder:forward(x, mask)                    -- x (B, 12, L); mask (B, T, 1) f32, 1 = masked
  local h = self.proj(self.features(x):transpose(2, 3)) -- (B, T, D)
  if mask then h = h * (1 - mask) + self.mask_emb * mask end
  h = h + wb.gelu(self.pos_conv(h:transpose(2, 3))):transpose(2, 3)
  return self.transformer(h)                          -- (B, T, D)
end

local Pretrainer = nn.class("MaskedReconstruction")
function Pretrainer:__init()
  self.encoder = Encoder()
  self.head = nn.Linear(cfg.d_model, 12 * cfg.patch)
end
-- x (B, 12, L) -> its tokens' raw samples (B, T, 12 * patch)
local function patches(x)
  local B = x:size(1)
  return x:reshape(B, 12, cfg.tokens, cfg.patch):permute(1, 3, 2, 4):reshape(B, cfg.tokens, 12 * cfg.patch)
end
function Pretrainer:forward(x, mask)                 -- returns the prediction (B, T, 12 * patch)
  return self.head(self.encoder(x, mask))
end
function Pretrainer:loss(x, mask)                    -- MSE over the masked tokens only
  local err = (self(x, mask) - patches(x)):pow(2) * mask
  return err:sum() / (mask:sum() * (12 * cfg.patch))
end

local model = Pretrainer()
print(string.format("encoder %d parameters, reconstruction head %d", model.encoder:num_parameters(),
  model.head:num_parameters()))

--[[md
## Masks

wav2vec 2.0 picks each token as a span start with a small probability and
masks the span that follows; spans may overlap. With a start probability of
0.08 and spans of 5 tokens (160 ms), about a third of the signal is hidden
in each record: whole P waves, QRS complexes or parts of T waves.
]]
--%% span masks
local function span_mask(B)
  local starts = wb.rand(B, cfg.tokens):lt(cfg.mask_start):to("f32")  -- (B, T)
  -- a token is masked if a span started at it or at one of the span-1 tokens before it
  local m = starts:clone()
  for s = 1, cfg.mask_span - 1 do
    m = m + wb.cat({ wb.zeros(B, s), starts:narrow(2, 1, cfg.tokens - s) }, 2)
  end
  return m:gt(0):to("f32"):unsqueeze(3)                                  -- (B, T, 1)
end
local m = span_mask(256)
print(string.format("masked fraction over 256 draws: %.3f", m:mean():item()))

--[[md
## Training

AdamW with a warmup-cosine schedule and gradient clipping, a few hundred
steps. The test loss uses fixed masks (the same draw every time), so the
curve compares like with like.
]]
--%% train
local opt = optim.AdamW(model:parameters(), { lr = cfg.lr, weight_decay = cfg.weight_decay })
local schedule = optim.warmup_cosine { warmup = cfg.warmup, total = cfg.steps, base_lr = cfg.lr, min_lr = cfg.lr * 0.05 }
wb.manual_seed(cfg.seed + 1)
local test_mask = span_mask(cfg.n_test)
local function test_loss()
  model:eval()
  local l = wb.no_grad(function() return model:loss(x_test, test_mask):item() end)
  model:train()
  return l
end

local losses, eval_steps, eval_losses = {}, {}, {}
local perm, pos = wb.randperm(cfg.n_train), 1
t0 = wb.now()
for step = 1, cfg.steps do
  if pos + cfg.batch - 1 > cfg.n_train then perm, pos = wb.randperm(cfg.n_train), 1 end
  local x = x_train:index_select(1, perm:narrow(1, pos, cfg.batch))
  pos = pos + cfg.batch
  local loss = model:loss(x, span_mask(cfg.batch))
  opt:zero_grad()
  loss:backward()
  optim.clip_grad_norm(model:parameters(), 1.0)
  opt:set_lr(schedule(step))
  opt:step()
  losses[step] = loss:item()
  if step == 1 or step % 25 == 0 then
    eval_steps[#eval_steps + 1], eval_losses[#eval_losses + 1] = step, test_loss()
  end
  if step == 1 or step % 100 == 0 then
    print(string.format("step %4d  train %.4f  test %.4f  %.1f steps/s", step, losses[step], eval_losses[#eval_losses],
      step / (wb.now() - t0)))
  end
end
local train_seconds = wb.now() - t0
print(string.format("%d steps in %.1f s", cfg.steps, train_seconds))

--[[md
## Loss curve and baselines

Two baselines put the number in context, both computed on the same test
masks: predicting **zero** for every masked sample (the loss of a model that
learned nothing, about the signal's variance), and **linear interpolation**
across each masked span from the last visible sample before it to the first
after it, per lead. Interpolation is good on slow waves but draws a straight
line through any QRS complex a span hides, and a line from a visible R peak
into a gap is worse than guessing zero; which effect wins is an empirical
question the table answers.
]]
--%% loss curve
local target = patches(x_test)
local zero_loss = ((target * test_mask):pow(2):sum() / (test_mask:sum() * (12 * cfg.patch))):item()

-- linear interpolation of the masked samples, per record and lead
local function interpolate(x, mask)
  local B, L = x:size(1), cfg.samples
  local xs, ms = x:contiguous(), mask:contiguous()
  local out = xs:clone()
  local function f32(t) return wb.ffi.cast("float *", t:data_ptr()) end
  local src, dst, mk = f32(xs), f32(out), f32(ms)  -- row-major
  for b = 0, B - 1 do
    for lead = 0, 11 do
      local base = (b * 12 + lead) * L
      local t = 0
      while t < L do
        if mk[b * cfg.tokens + math.floor(t / cfg.patch)] > 0 then
          local a = t
          while t < L and mk[b * cfg.tokens + math.floor(t / cfg.patch)] > 0 do t = t + 1 end
          local left = a > 0 and src[base + a - 1] or (t < L and src[base + t] or 0)
          local right = t < L and src[base + t] or left
          for s = a, t - 1 do
            local w = (s - a + 1) / (t - a + 1)
            dst[base + s] = (1 - w) * left + w * right
          end
        else
          t = t + 1
        end
      end
    end
  end
  return out
end
local x_interp = interpolate(x_test, test_mask)
local interp_loss = ((patches(x_interp) - target):pow(2):mul(test_mask):sum() / (test_mask:sum() * (12 * cfg.patch))):item()
local final = test_loss()

nb.table({
  { "predict zero", zero_loss },
  { "linear interpolation", interp_loss },
  { "masked-reconstruction encoder, " .. cfg.steps .. " steps", final },
}, { header = { "test masked MSE (units of signal variance)", "loss" }, digits = 3 })

local flat = function(v) local t = {} for i = 1, cfg.steps do t[i] = v end return t end
nb.show(wb.plot.lines({
  { y = losses, name = "train (batch)" },
  { x = eval_steps, y = eval_losses, name = "test" },
  { y = flat(zero_loss), name = "predict zero" },
  { y = flat(interp_loss), name = "linear interpolation" },
}, { title = "masked reconstruction loss", xlabel = "step", ylabel = "MSE on masked tokens", logy = true }),
  { caption = "training and test loss against the two baselines (log scale)" })

--[[md
## What the encoder reconstructs

One test record: four of its leads as recorded, each followed by its
reconstruction, which keeps the visible samples and takes the model's
prediction in the masked spans. A marker shows where each masked span
starts (spans are 5 tokens, 160 ms, and may run together).
]]
--%% reconstruction figure
local i = 1
local x1, m1 = x_test:narrow(1, i, 1), test_mask:narrow(1, i, 1)
local pred = wb.no_grad(function() model:eval() return model(x1, m1) end)   -- (1, T, 12 * patch)
model:train()
-- back from tokens to (12, L), then visible samples from the input
local pred_sig = pred:reshape(1, cfg.tokens, 12, cfg.patch):permute(1, 3, 2, 4):reshape(12, cfg.samples)
local m_sig = m1:reshape(1, cfg.tokens, 1, 1):expand(1, cfg.tokens, 12, cfg.patch):permute(1, 3, 2, 4):reshape(12, cfg.samples)
local recon = (x1:reshape(12, cfg.samples) * (1 - m_sig) + pred_sig * m_sig) * scale
local orig = x1:reshape(12, cfg.samples) * scale

local starts, mt = {}, m1:reshape(cfg.tokens):totable()
for t = 1, cfg.tokens do
  if mt[t] > 0 and (t == 1 or mt[t - 1] == 0) then starts[#starts + 1] = (t - 1) * cfg.patch end
end
local rows, names = {}, {}
for _, lead in ipairs { "I", "II", "V2", "V5" } do
  local k = ({ I = 1, II = 2, V2 = 8, V5 = 11 })[lead]
  rows[#rows + 1], names[#names + 1] = orig[k], lead
  rows[#rows + 1], names[#names + 1] = recon[k], lead .. " recon."
end
nb.show(wb.plot.strips(wb.stack(rows, 1), { fs = cfg.fs, markers = starts, leads = names,
  title = "test record 1 (" .. table.concat(test.labels[i], " ") .. "): masked spans start at the markers" }),
  { caption = "each lead as recorded, then its reconstruction (visible samples kept, masked spans predicted)" })
local masked_err = ((recon - orig):pow(2):sum() / m_sig:sum()):sqrt():item()
print(string.format("record 1: %d masked spans, %.0f%% of samples masked, RMS error in the masked samples %.3f mV",
  #starts, 100 * m_sig:mean():item(), masked_err))
print("its report: " .. test.report[i])
