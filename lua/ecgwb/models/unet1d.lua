--[[ ecgwb.models.unet1d: a 1-D U-Net denoiser with cross-attention to a
condition, the noise predictor of the diffusion models of issue 6 (DiffuSETS'
latent U-Net, SE-Diff, the generator of recipes/two_stage.lua).

    local unet1d = require "ecgwb.models.unet1d"
    local net = unet1d.UNet1d(unet1d.config("tiny", { in_channels = 4, cond_dim = 64 }))
    local eps = net(x_t, t, cond)              -- x_t (B, C, L), t (B) or a number, cond (B, S, Dc)
    local eps0 = net(x_t, t)                   -- cond nil: the learned null condition (for CFG)
    local e = net(x_t, t, cond, { uncond = m, cond_mask = km })

Architecture (Ho et al. 2020 / Stable Diffusion, in 1-D):
  conv_in Conv1d(C, ch, 3); then per level i = 1..#mults (width ch*mults[i]):
  num_res_blocks residual blocks, each followed by an attention block when i
  is in attn_levels, and a Downsample (Conv1d k3 stride 2: L -> ceil(L/2))
  except at the last level; a middle ResBlock, attention, ResBlock; the
  mirror up path, whose blocks take the concatenated skip (num_res_blocks + 1
  per level, one skip each) and end with an Upsample (nearest x2, cropped to
  the skip's length, so any L >= 1 works, then Conv1d k3); out GroupNorm,
  SiLU, Conv1d(ch, out_channels, 3).
  ResBlock: h = conv1(SiLU(GN(x))); FiLM from the time embedding
  (h = GN(h) * (1 + scale) + shift, "scale-shift norm" of Nichol & Dhariwal;
  film = false: h = GN(h + proj(temb))); h = conv2(dropout(SiLU(h)));
  out = skip(x) + h (skip a 1x1 conv when the width changes).
  Time: sinusoidal embedding of t (dim ch, max period 10000, [cos | sin] as
  the DDPM/ADM code), then Linear(ch, 4ch), SiLU, Linear(4ch, 4ch).
  Attention block: x += SelfAttn(GN(x)) (if self_attention), then
  x += CrossAttn(GN(x), cond): queries from the feature map (B, L, C), keys
  and values Linear(cond_dim, C) of the condition tokens, heads through
  wb.sdpa, out Linear(C, C).

The condition: cond (B, S, cond_dim) tokens, or (B, cond_dim) = one token.
cond = nil means the learned null condition, one token `null_cond`
(1, 1, cond_dim), for classifier-free guidance. opts.uncond (B) (number or
bool, 1 = drop) replaces the rows it marks by the null token (as condition
dropout in training); attention over S copies of one token equals attention
over that token, so a dropped row gives exactly what cond = nil gives.
opts.cond_mask (B, S) (1 = real token) hides padding tokens.
cond_dim = nil builds an unconditional U-Net (no cross-attention).
global_cond = true adds a second, global path for the condition (ADM's class
embedding, SDXL's pooled text): the mean of the condition tokens (over the
unmasked ones; a dropped row's is the null token) through Linear(cond_dim,
4ch), SiLU, Linear(4ch, 4ch) is added to the time embedding, so every
ResBlock's FiLM sees it, not only the attention levels.
]]
local wb = require "ecgwb"
local nn = require "ecgwb.nn"

local M = {}

------------------------------------------------------------------ configs
M.configs = {
  tiny = { channels = 16, mults = { 1, 2 }, num_res_blocks = 1, attn_levels = { 2 }, heads = 2, groups = 4 },
  small = { channels = 64, mults = { 1, 2, 2 }, num_res_blocks = 1, attn_levels = { 2, 3 }, heads = 4, groups = 8 },
  base = { channels = 128, mults = { 1, 2, 4, 4 }, num_res_blocks = 2, attn_levels = { 2, 3, 4 }, heads = 8, groups = 32 },
}
local DEFAULTS = { in_channels = 4, film = true, self_attention = true, dropout = 0, max_period = 10000, global_cond = false }

-- unet1d.config("small", {in_channels = 4, cond_dim = 64}) -> a full config
function M.config(name, over)
  local base = M.configs[name]
  if not base then error("unet1d.config: unknown config '" .. tostring(name) .. "' (tiny, small, base)", 2) end
  local c = {}
  for k, v in pairs(DEFAULTS) do c[k] = v end
  for k, v in pairs(base) do c[k] = v end
  for k, v in pairs(over or {}) do c[k] = v end
  c.out_channels = c.out_channels or c.in_channels
  return c
end

------------------------------------------------------------------ blocks
-- t (B) f32 -> (B, dim): [cos(t f_k) | sin(t f_k)], f_k = max_period^(-k/half)
function M.timestep_embedding(t, dim, max_period)
  local half = math.floor(dim / 2)
  local f = {}
  for k = 0, half - 1 do f[k + 1] = math.exp(-math.log(max_period or 10000) * k / half) end
  local args = t:reshape(-1, 1) * wb.tensor(f):reshape(1, half) -- (B, half)
  local e = wb.cat({ args:cos(), args:sin() }, 2)
  if dim % 2 == 1 then e = e:pad({ 0, 1 }) end
  return e
end

local ResBlock = nn.class("ResBlock1d")
M.ResBlock = ResBlock
-- ResBlock(cin, cout, {temb_dim = nil | D, groups = 8, film = true, dropout = 0})
function ResBlock:__init(cin, cout, o)
  o = o or {}
  local g = o.groups or 8
  if cin % g ~= 0 or cout % g ~= 0 then
    error(string.format("unet1d: channels %d and %d must be divisible by groups %d", cin, cout, g), 3)
  end
  self.groups, self.film = g, o.film ~= false
  self.norm1 = nn.GroupNorm(g, cin)
  self.conv1 = nn.Conv1d(cin, cout, 3, { padding = 1 })
  if o.temb_dim then self.temb_proj = nn.Linear(o.temb_dim, self.film and 2 * cout or cout) end
  self.norm2 = nn.GroupNorm(g, cout)
  self.dropout = nn.Dropout(o.dropout or 0)
  self.conv2 = nn.Conv1d(cout, cout, 3, { padding = 1 })
  if cin ~= cout then self.skip = nn.Conv1d(cin, cout, 1) end
  self.cout = cout
end
-- x (B, cin, L), temb (B, temb_dim) or nil -> (B, cout, L)
function ResBlock:forward(x, temb)
  local h = self.conv1(wb.silu(self.norm1(x))) -- (B, cout, L)
  if self.temb_proj and temb then
    local e = self.temb_proj(wb.silu(temb)):unsqueeze(3) -- (B, cout or 2 cout, 1)
    if self.film then
      local scale, shift = e:narrow(2, 1, self.cout), e:narrow(2, self.cout + 1, self.cout)
      h = self.norm2(h) * (scale + 1) + shift
    else
      h = self.norm2(h + e)
    end
  else
    h = self.norm2(h)
  end
  h = self.conv2(self.dropout(wb.silu(h)))
  return (self.skip and self.skip(x) or x) + h
end

local Downsample = nn.class("Downsample1d")
M.Downsample = Downsample
function Downsample:__init(c) self.conv = nn.Conv1d(c, c, 3, { stride = 2, padding = 1 }) end
function Downsample:forward(x) return self.conv(x) end -- (B, C, L) -> (B, C, ceil(L/2))

local Upsample = nn.class("Upsample1d")
M.Upsample = Upsample
function Upsample:__init(c) self.conv = nn.Conv1d(c, c, 3, { padding = 1 }) end
-- (B, C, L) -> (B, C, len or 2L): nearest x2, cropped, then conv
function Upsample:forward(x, len)
  local B, C, L = x:size(1), x:size(2), x:size(3)
  local u = x:unsqueeze(4):expand(B, C, L, 2):reshape(B, C, 2 * L)
  if len and len < 2 * L then u = u:narrow(3, 1, len) end
  return self.conv(u)
end

-- multi-head attention of q_in (B, L, C) over kv_in (B, S, Dkv)
local Attention = nn.class("Attention1d")
M.Attention = Attention
function Attention:__init(C, Dkv, heads)
  if C % heads ~= 0 then error(string.format("unet1d: width %d must be divisible by heads %d", C, heads), 3) end
  self.heads, self.C = heads, C
  self.to_q = nn.Linear(C, C, false)
  self.to_k = nn.Linear(Dkv, C, false)
  self.to_v = nn.Linear(Dkv, C, false)
  self.to_out = nn.Linear(C, C)
end
-- mask: bool broadcast to (B, H, L, S), 1 = attend, or nil
function Attention:forward(x, ctx, mask)
  local B, L, S, H = x:size(1), x:size(2), ctx:size(2), self.heads
  local hd = self.C / H
  local q = self.to_q(x):reshape(B, L, H, hd):permute(1, 3, 2, 4) -- (B, H, L, hd)
  local k = self.to_k(ctx):reshape(B, S, H, hd):permute(1, 3, 2, 4) -- (B, H, S, hd)
  local v = self.to_v(ctx):reshape(B, S, H, hd):permute(1, 3, 2, 4)
  local y = wb.sdpa(q, k, v, { mask = mask, scale = 1 / math.sqrt(hd) }) -- (B, H, L, hd)
  return self.to_out(y:transpose(2, 3):reshape(B, L, self.C))
end

-- x += SelfAttn(GN(x)); x += CrossAttn(GN(x), cond)
local AttnBlock = nn.class("AttnBlock1d")
M.AttnBlock = AttnBlock
function AttnBlock:__init(C, cond_dim, o)
  if o.self_attention then
    self.norm_self = nn.GroupNorm(o.groups, C)
    self.self_attn = Attention(C, C, o.heads)
  end
  if cond_dim then
    self.norm_cross = nn.GroupNorm(o.groups, C)
    self.cross_attn = Attention(C, cond_dim, o.heads)
  end
end
-- x (B, C, L), cond (B, S, Dc) or nil, mask for the cond tokens
function AttnBlock:forward(x, cond, mask)
  if self.self_attn then
    local h = self.norm_self(x):transpose(2, 3) -- (B, L, C)
    x = x + self.self_attn(h, h):transpose(2, 3)
  end
  if self.cross_attn and cond then
    local h = self.norm_cross(x):transpose(2, 3)
    x = x + self.cross_attn(h, cond, mask):transpose(2, 3)
  end
  return x
end

------------------------------------------------------------------ the U-Net
local UNet1d = nn.class("UNet1d")
M.UNet1d = UNet1d

local function has(list, v)
  for _, x in ipairs(list or {}) do if x == v then return true end end
  return false
end

function UNet1d:__init(c)
  if type(c) ~= "table" or type(c.channels) ~= "number" or type(c.mults) ~= "table" then
    error("UNet1d: needs a config, e.g. unet1d.config('tiny', {in_channels = 4, cond_dim = 32})", 3)
  end
  local full = {}
  for k, v in pairs(DEFAULTS) do full[k] = v end
  for k, v in pairs(c) do full[k] = v end
  c = full
  c.out_channels = c.out_channels or c.in_channels
  self.cfg = c
  local ch, g, n = c.channels, c.groups, #c.mults
  local tdim = 4 * ch
  local blk = { temb_dim = tdim, groups = g, film = c.film, dropout = c.dropout }
  local att = { groups = g, heads = c.heads, self_attention = c.self_attention }
  self.time_mlp = nn.Sequential(nn.Linear(ch, tdim), nn.SiLU(), nn.Linear(tdim, tdim))
  if c.cond_dim then self:register_parameter("null_cond", wb.randn(1, 1, c.cond_dim):mul_(0.02)) end
  if c.cond_dim and c.global_cond then
    self.cond_mlp = nn.Sequential(nn.Linear(c.cond_dim, tdim), nn.SiLU(), nn.Linear(tdim, tdim))
  end
  self.conv_in = nn.Conv1d(c.in_channels, ch, 3, { padding = 1 })

  -- down path; skips[] records the width of every skip tensor
  self.down = nn.ModuleList()
  local skips, cur = { ch }, ch
  for i = 1, n do
    local w = ch * c.mults[i]
    for _ = 1, c.num_res_blocks do
      local level = nn.ModuleList()
      level:append(ResBlock(cur, w, blk))
      if has(c.attn_levels, i) then level:append(AttnBlock(w, c.cond_dim, att)) end
      self.down:append(level)
      cur = w
      skips[#skips + 1] = cur
    end
    if i < n then
      self.down:append(nn.ModuleList { Downsample(cur) })
      skips[#skips + 1] = cur
    end
  end
  self.mid = nn.ModuleList { ResBlock(cur, cur, blk), AttnBlock(cur, c.cond_dim, att), ResBlock(cur, cur, blk) }

  -- up path: num_res_blocks + 1 blocks per level, each eating one skip
  self.up = nn.ModuleList()
  for i = n, 1, -1 do
    local w = ch * c.mults[i]
    for j = 1, c.num_res_blocks + 1 do
      local level = nn.ModuleList()
      level:append(ResBlock(cur + table.remove(skips), w, blk))
      cur = w
      if has(c.attn_levels, i) then level:append(AttnBlock(w, c.cond_dim, att)) end
      if i > 1 and j == c.num_res_blocks + 1 then level:append(Upsample(w)) end
      self.up:append(level)
    end
  end
  self.norm_out = nn.GroupNorm(g, cur)
  self.conv_out = nn.Conv1d(cur, c.out_channels, 3, { padding = 1 })
end

function UNet1d:extra_repr()
  local c = self.cfg
  return string.format("in_channels=%d, channels=%d, mults={%s}, num_res_blocks=%d, attn_levels={%s}, cond_dim=%s",
    c.in_channels, c.channels, table.concat(c.mults, ","), c.num_res_blocks, table.concat(c.attn_levels or {}, ","),
    tostring(c.cond_dim))
end

local function desc(x)
  if wb.is_tensor(x) then return x:describe() end
  return type(x)
end

-- the condition tokens (B, S, Dc) with dropped rows replaced by null_cond,
-- and the attention mask (B, 1, 1, S) or nil
function UNet1d:condition(B, cond, o)
  local Dc = self.cfg.cond_dim
  if not Dc then
    if cond ~= nil then error(self.__name .. ": this model is unconditional (cond_dim = nil) but got a cond", 3) end
    return nil
  end
  local null = self.null_cond
  if cond == nil then return null:expand(B, 1, Dc), nil end
  if not wb.is_tensor(cond) then error(self.__name .. ": cond must be a tensor (B, S, " .. Dc .. ") or nil, got " .. type(cond), 3) end
  if cond:dim() == 2 then cond = cond:unsqueeze(2) end
  if cond:dim() ~= 3 or cond:size(3) ~= Dc then
    error(string.format(self.__name .. ": cond must be (B, S, %d) or (B, %d), got %s", Dc, Dc, cond:describe()), 3)
  end
  if cond:size(1) ~= B then
    error(string.format(self.__name .. ": cond has batch %d but x_t has batch %d (cond %s)", cond:size(1), B, cond:describe()), 3)
  end
  local S = cond:size(2)
  local mask
  if o.cond_mask ~= nil then
    local m = o.cond_mask
    if not wb.is_tensor(m) or m:dim() ~= 2 or m:size(1) ~= B or m:size(2) ~= S then
      error(string.format(self.__name .. ": cond_mask must be (B, S) = (%d, %d), got %s", B, S, desc(m)), 3)
    end
    mask = (m.dtype == "bool" and m or m:ne(0)):reshape(B, 1, 1, S)
  end
  if o.uncond ~= nil then
    local u = o.uncond
    if not wb.is_tensor(u) or u:numel() ~= B then
      error(string.format(self.__name .. ": uncond must be a tensor of B = %d entries (1 = null condition), got %s", B, desc(u)), 3)
    end
    u = u:to("f32"):reshape(B, 1, 1)
    cond = cond * (1 - u) + null * u
    -- a dropped row attends to all its (now null) tokens
    if mask then mask = wb.maximum(mask:to("f32"), u:reshape(B, 1, 1, 1)):ne(0) end
  end
  return cond, mask
end

-- net(x_t, t, cond, {uncond, cond_mask}) -> (B, out_channels, L)
function UNet1d:forward(x, t, cond, o)
  o = o or {}
  local c = self.cfg
  if not wb.is_tensor(x) or x:dim() ~= 3 or x:size(2) ~= c.in_channels then
    error(string.format("UNet1d: x_t must be (B, %d, L), got %s", c.in_channels, desc(x)), 2)
  end
  local B, L = x:size(1), x:size(3)
  if type(t) == "number" then
    t = wb.full({ B }, t)
  elseif not wb.is_tensor(t) or t:numel() ~= B then
    error(string.format("UNet1d: t must be a number or a tensor of B = %d timesteps, got %s", B, desc(t)), 2)
  end
  t = t:to("f32"):reshape(B)
  local ctx, mask = self:condition(B, cond, o)

  local temb = self.time_mlp(M.timestep_embedding(t, c.channels, c.max_period)) -- (B, 4ch)
  if self.cond_mlp then -- the global path: the mean condition token, added to the time embedding
    local pooled
    if mask then
      local m = mask:to("f32"):reshape(B, -1, 1)                                     -- (B, S, 1)
      pooled = (ctx * m):sum(2) / m:sum(2)
    else
      pooled = ctx:mean(2)                                                            -- (B, Dc)
    end
    temb = temb + self.cond_mlp(pooled)
  end
  local h = self.conv_in(x)
  local hs = { h }
  for i = 1, #self.down do
    local level = self.down[i]
    for j = 1, #level do
      local m = level[j]
      if m.__name == "ResBlock1d" then h = m(h, temb)
      elseif m.__name == "AttnBlock1d" then h = m(h, ctx, mask)
      else h = m(h) end
    end
    hs[#hs + 1] = h
  end
  h = self.mid[1](h, temb)
  h = self.mid[2](h, ctx, mask)
  h = self.mid[3](h, temb)
  for i = 1, #self.up do
    local level = self.up[i]
    local skip = table.remove(hs)
    h = level[1](wb.cat({ h, skip }, 2), temb)
    for j = 2, #level do
      local m = level[j]
      if m.__name == "AttnBlock1d" then h = m(h, ctx, mask)
      else h = m(h, hs[#hs]:size(3)) end -- Upsample to the next skip's length
    end
  end
  return self.conv_out(wb.silu(self.norm_out(h)))
end

return M
