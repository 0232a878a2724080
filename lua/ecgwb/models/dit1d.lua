--[[ ecgwb.models.dit1d: a DiT-style transformer denoiser (Peebles & Xie
2023) for 1-D signals and latents, a drop-in alternative to
models/unet1d.lua with the same forward.

    local dit1d = require "ecgwb.models.dit1d"
    local net = dit1d.DiT1d(dit1d.config("tiny", { in_channels = 4, cond_dim = 64 }))
    local eps = net(x_t, t, cond)                -- x_t (B, C, L), t (B) or a number, cond (B, S, Dc) or nil
    local e = net(x_t, t, cond, { uncond = m, cond_mask = km })

Architecture: patchify Conv1d(C, D, p, stride p) (L is zero-padded up to a
multiple of p, the output cropped back), plus a fixed sinusoidal position
embedding of the patch index; depth blocks, each
  x += g1 * SelfAttn(mod(LN(x), s1, b1))
  x += CrossAttn(LN(x), cond)             (queries from x, keys/values Linear(cond_dim, D))
  x += g2 * MLP(mod(LN(x), s2, b2))       (D -> mlp_ratio D -> D, GELU tanh)
with mod(h, s, b) = h (1 + s) + b and (s1, b1, g1, s2, b2, g2) = Linear(SiLU(temb))
zero-initialised (adaLN-Zero); the final layer LN, mod, Linear(D, p C_out)
(zero-initialised), unpatchified. temb as models/unet1d.lua's (sinusoidal,
MLP to D). The condition follows unet1d's rules: cond nil = the learned
null token, opts.uncond (B) drops rows, opts.cond_mask (B, S) hides tokens.
At initialisation the output is 0 (adaLN-Zero), as DiT.
]]
local wb = require "ecgwb"
local nn = require "ecgwb.nn"
local unet1d = require "ecgwb.models.unet1d"

local M = {}

M.configs = {
  tiny = { dim = 64, depth = 2, heads = 4, patch = 4, mlp_ratio = 4 },
  small = { dim = 256, depth = 6, heads = 4, patch = 4, mlp_ratio = 4 },
  base = { dim = 384, depth = 12, heads = 6, patch = 2, mlp_ratio = 4 },
}
local DEFAULTS = { in_channels = 4, max_period = 10000 }

function M.config(name, over)
  local base = M.configs[name]
  if not base then error("dit1d.config: unknown config '" .. tostring(name) .. "' (tiny, small, base)", 2) end
  local c = {}
  for k, v in pairs(DEFAULTS) do c[k] = v end
  for k, v in pairs(base) do c[k] = v end
  for k, v in pairs(over or {}) do c[k] = v end
  c.out_channels = c.out_channels or c.in_channels
  return c
end

local function zero_linear(i, o)
  local l = nn.Linear(i, o)
  l.weight:zero_()
  l.bias:zero_()
  return l
end

-- h (B, N, D) * (1 + s) + b, s and b (B, D)
local function modulate(h, s, b) return h * (s:unsqueeze(2) + 1) + b:unsqueeze(2) end

local Block = nn.class("DiTBlock1d")
function Block:__init(c)
  local D = c.dim
  self.norm1 = nn.LayerNorm(D, { elementwise_affine = false, eps = 1e-6 })
  self.attn = unet1d.Attention(D, D, c.heads)
  if c.cond_dim then
    self.norm_cross = nn.LayerNorm(D)
    self.cross_attn = unet1d.Attention(D, c.cond_dim, c.heads)
  end
  self.norm2 = nn.LayerNorm(D, { elementwise_affine = false, eps = 1e-6 })
  self.fc1 = nn.Linear(D, c.mlp_ratio * D)
  self.fc2 = nn.Linear(c.mlp_ratio * D, D)
  self.ada = zero_linear(D, 6 * D)
  self.D = D
end
-- x (B, N, D), temb (B, D), ctx (B, S, Dc) or nil, mask for ctx
function Block:forward(x, temb, ctx, mask)
  local D = self.D
  local m = self.ada(wb.silu(temb)) -- (B, 6D)
  local function part(i) return m:narrow(2, i * D + 1, D) end
  local h = modulate(self.norm1(x), part(0), part(1))
  x = x + self.attn(h, h) * part(2):unsqueeze(2)
  if self.cross_attn and ctx then x = x + self.cross_attn(self.norm_cross(x), ctx, mask) end
  h = modulate(self.norm2(x), part(3), part(4))
  return x + self.fc2(wb.gelu(self.fc1(h), "tanh")) * part(5):unsqueeze(2)
end

local DiT1d = nn.class("DiT1d")
M.DiT1d = DiT1d

function DiT1d:__init(c)
  if type(c) ~= "table" or type(c.dim) ~= "number" or type(c.depth) ~= "number" then
    error("DiT1d: needs a config, e.g. dit1d.config('tiny', {in_channels = 4, cond_dim = 32})", 3)
  end
  local full = {}
  for k, v in pairs(DEFAULTS) do full[k] = v end
  for k, v in pairs(c) do full[k] = v end
  c = full
  c.out_channels = c.out_channels or c.in_channels
  if c.dim % c.heads ~= 0 then error(string.format("DiT1d: dim %d must be divisible by heads %d", c.dim, c.heads), 3) end
  self.cfg = c
  local D = c.dim
  self.patchify = nn.Conv1d(c.in_channels, D, c.patch, { stride = c.patch })
  self.time_mlp = nn.Sequential(nn.Linear(D, D), nn.SiLU(), nn.Linear(D, D))
  if c.cond_dim then self:register_parameter("null_cond", wb.randn(1, 1, c.cond_dim):mul_(0.02)) end
  self.blocks = nn.ModuleList()
  for _ = 1, c.depth do self.blocks:append(Block(c)) end
  self.norm_out = nn.LayerNorm(D, { elementwise_affine = false, eps = 1e-6 })
  self.ada_out = zero_linear(D, 2 * D)
  self.out = zero_linear(D, c.patch * c.out_channels)
  -- the condition's checks and null-token handling are unet1d's
  self.condition = unet1d.UNet1d.condition
end

function DiT1d:extra_repr()
  local c = self.cfg
  return string.format("in_channels=%d, dim=%d, depth=%d, heads=%d, patch=%d, cond_dim=%s", c.in_channels, c.dim,
    c.depth, c.heads, c.patch, tostring(c.cond_dim))
end

-- (N, D) fixed sinusoidal position embedding of patch indices 0..N-1
local function positions(N, D)
  return unet1d.timestep_embedding(wb.arange(0, N):to("f32"), D, 10000)
end

function DiT1d:forward(x, t, cond, o)
  o = o or {}
  local c = self.cfg
  if not wb.is_tensor(x) or x:dim() ~= 3 or x:size(2) ~= c.in_channels then
    error(string.format("DiT1d: x_t must be (B, %d, L), got %s", c.in_channels, wb.is_tensor(x) and x:describe() or type(x)), 2)
  end
  local B, L, p, D = x:size(1), x:size(3), c.patch, c.dim
  if type(t) == "number" then
    t = wb.full({ B }, t)
  elseif not wb.is_tensor(t) or t:numel() ~= B then
    error(string.format("DiT1d: t must be a number or a tensor of B = %d timesteps, got %s", B,
      wb.is_tensor(t) and t:describe() or type(t)), 2)
  end
  t = t:to("f32"):reshape(B)
  local ctx, mask = self:condition(B, cond, o)
  local Lp = math.ceil(L / p) * p
  if Lp ~= L then x = x:pad({ 0, Lp - L }) end
  local N = Lp / p
  local h = self.patchify(x):transpose(2, 3) + positions(N, D):unsqueeze(1) -- (B, N, D)
  local temb = self.time_mlp(unet1d.timestep_embedding(t, D, c.max_period)) -- (B, D)
  for i = 1, #self.blocks do h = self.blocks[i](h, temb, ctx, mask) end
  local m = self.ada_out(wb.silu(temb))
  h = modulate(self.norm_out(h), m:narrow(2, 1, D), m:narrow(2, D + 1, D))
  local y = self.out(h) -- (B, N, p C_out): patch n holds its p samples of each channel
  y = y:reshape(B, N, c.out_channels, p):permute(1, 3, 2, 4):reshape(B, c.out_channels, Lp)
  if Lp ~= L then y = y:narrow(3, 1, L) end
  return y
end

return M
