--[[ ecgwb.nn: modules in the manner of torch/nn and PyTorch.

    local nn = require "ecgwb.nn"
    local layer = nn.TransformerEncoderLayer(32, 4, { dim_feedforward = 64 })
    local y = layer(x)                              -- x (B, T, 32), batch first
    for name, p in pairs(layer:state_dict()) do ... end

Parameter names, their order, shapes and default initialisations are
PyTorch's, so a state_dict moves between the two by name
("layers.0.self_attn.in_proj_weight"). Children of ModuleList and
Sequential are named 0, 1, 2, ... as in PyTorch, and are reached from Lua
as list[1], list[2], ... (`#list` and ipairs work).

A new module:
    local MyNet = nn.class("MyNet")                -- or nn.class("MyNet", nn.Sequential)
    function MyNet:__init(d)
      self.fc = nn.Linear(d, d)                    -- assigning a module registers a child
      self:register_parameter("scale", wb.ones(d)) -- parameters are registered explicitly
    end
    function MyNet:forward(x) return self.fc(x) * self.scale end

Forward options are tables: mha(q, k, v, {key_padding_mask = m}),
layer(x, {src_key_padding_mask = m, is_causal = true}). Masks follow
PyTorch: a bool attn_mask / key_padding_mask is true where attention is NOT
allowed; a float attn_mask may only hold 0 (attend) and -inf (blocked).
]]
local wb = require "ecgwb"

local nn = {}

------------------------------------------------------------------ classes
local Module = {}
nn.Module = Module

local function is_module(x)
  return type(x) == "table" and rawget(x, "_module_names") ~= nil
end
nn.is_module = is_module

-- child or parameter by PyTorch name ("0" in a list is Lua position 1)
local function member(self, name)
  local v = rawget(self, name)
  if v == nil and name:match("^%d+$") then v = rawget(self, tonumber(name) + 1) end
  return v
end

local function new_class(name, parent)
  local cls = { __name = name }
  cls.__index = cls
  cls.__call = function(self, ...) return self:forward(...) end
  cls.__tostring = function(self) return self:repr() end
  -- assigning a module to a new field registers it as a child, in order
  cls.__newindex = function(self, k, v)
    if is_module(v) and type(k) == "string" then
      local names = rawget(self, "_module_names")
      names[#names + 1] = k
    end
    rawset(self, k, v)
  end
  setmetatable(cls, {
    __index = parent,
    __call = function(c, ...)
      local o = setmetatable({ _param_names = {}, _buffer_names = {}, _module_names = {}, training = true }, c)
      o:__init(...)
      return o
    end,
    __tostring = function() return "nn." .. name end,
  })
  return cls
end

function nn.class(name, parent)
  if type(name) ~= "string" then error("nn.class: a class needs a name", 2) end
  return new_class(name, parent or Module)
end

function Module:__init() end
function Module:forward() error(self.__name .. ": forward is not implemented", 2) end

-- registers t (or nil: an absent optional parameter) as a trainable parameter
function Module:register_parameter(name, t)
  if t ~= nil and not wb.is_tensor(t) then error("register_parameter: '" .. name .. "' must be a tensor or nil", 2) end
  if t ~= nil and not t.requires_grad then t:requires_grad_(true) end
  for _, n in ipairs(self._param_names) do
    if n == name then rawset(self, name, t); return t end
  end
  self._param_names[#self._param_names + 1] = name
  rawset(self, name, t)
  return t
end

-- a tensor in the state_dict that is not trained (running stats, fixed tables)
function Module:register_buffer(name, t)
  for _, n in ipairs(self._buffer_names) do
    if n == name then rawset(self, name, t); return t end
  end
  self._buffer_names[#self._buffer_names + 1] = name
  rawset(self, name, t)
  return t
end

function Module:add_module(name, m)
  if not is_module(m) then error("add_module: '" .. tostring(name) .. "' is not a module", 2) end
  name = tostring(name)
  for _, n in ipairs(self._module_names) do
    if n == name then rawset(self, name, m); return m end
  end
  self._module_names[#self._module_names + 1] = name
  if name:match("^%d+$") then rawset(self, tonumber(name) + 1, m) else rawset(self, name, m) end
  return m
end

------------------------------------------------------------------ traversal
-- calls fn(prefix, module) for self and every descendant, depth first, in
-- registration order
local function walk(m, prefix, fn)
  fn(prefix, m)
  for _, n in ipairs(m._module_names) do
    local c = member(m, n)
    if c then walk(c, prefix == "" and n or prefix .. "." .. n, fn) end
  end
end

function Module:named_modules()
  local out = {}
  walk(self, "", function(p, m) out[#out + 1] = { p, m } end)
  return out
end
function Module:modules()
  local out = {}
  walk(self, "", function(_, m) out[#out + 1] = m end)
  return out
end
function Module:children()
  local out = {}
  for _, n in ipairs(self._module_names) do out[#out + 1] = member(self, n) end
  return out
end

-- list of {name, tensor} in PyTorch's order
function Module:named_parameters()
  local out, seen = {}, {}
  walk(self, "", function(prefix, m)
    for _, n in ipairs(m._param_names) do
      local p = rawget(m, n)
      if p ~= nil and not seen[p] then
        seen[p] = true
        out[#out + 1] = { prefix == "" and n or prefix .. "." .. n, p }
      end
    end
  end)
  return out
end

function Module:parameters()
  local out = {}
  for i, np in ipairs(self:named_parameters()) do out[i] = np[2] end
  return out
end

function Module:named_buffers()
  local out = {}
  walk(self, "", function(prefix, m)
    for _, n in ipairs(m._buffer_names) do
      local b = rawget(m, n)
      if b ~= nil then out[#out + 1] = { prefix == "" and n or prefix .. "." .. n, b } end
    end
  end)
  return out
end

function Module:num_parameters()
  local n = 0
  for _, p in ipairs(self:parameters()) do n = n + p:numel() end
  return n
end

function Module:apply(fn)
  for _, m in ipairs(self:modules()) do fn(m) end
  return self
end

function Module:train(mode)
  if mode == nil then mode = true end
  for _, m in ipairs(self:modules()) do rawset(m, "training", mode) end
  return self
end
function Module:eval() return self:train(false) end

function Module:zero_grad()
  for _, p in ipairs(self:parameters()) do p:zero_grad() end
end

function Module:requires_grad_(flag)
  for _, p in ipairs(self:parameters()) do p:requires_grad_(flag ~= false) end
  return self
end

------------------------------------------------------------------ state dicts
local function shape_str(t) return "[" .. table.concat(t:size(), ", ") .. "]" end
local function same_shape(a, b)
  local x, y = a:size(), b:size()
  if #x ~= #y then return false end
  for i = 1, #x do if x[i] ~= y[i] then return false end end
  return true
end

-- name -> tensor (parameters detached, sharing storage; then buffers)
function Module:state_dict()
  local sd = {}
  for _, np in ipairs(self:named_parameters()) do sd[np[1]] = np[2]:detach() end
  for _, nb in ipairs(self:named_buffers()) do sd[nb[1]] = nb[2] end
  return sd
end

-- ordered names of the state_dict entries
function Module:state_dict_keys()
  local keys = {}
  for _, np in ipairs(self:named_parameters()) do keys[#keys + 1] = np[1] end
  for _, nb in ipairs(self:named_buffers()) do keys[#keys + 1] = nb[1] end
  return keys
end

-- copies sd's tensors into the module's, in place. strict (default true):
-- missing and unexpected keys are errors. Shape mismatches are always errors.
-- All problems are reported together, as PyTorch does. Returns
-- {missing_keys = {...}, unexpected_keys = {...}}.
function Module:load_state_dict(sd, strict)
  if type(sd) ~= "table" then error("load_state_dict: expected a table name -> tensor, got " .. type(sd), 2) end
  if strict == nil then strict = true end
  local own = {}
  for _, np in ipairs(self:named_parameters()) do own[np[1]] = np[2] end
  for _, nb in ipairs(self:named_buffers()) do own[nb[1]] = nb[2] end
  local missing, unexpected, msgs = {}, {}, {}
  for _, name in ipairs(self:state_dict_keys()) do
    local src = sd[name]
    if src == nil then
      missing[#missing + 1] = name
    elseif not wb.is_tensor(src) then
      msgs[#msgs + 1] = "value for " .. name .. " is a " .. type(src) .. ", not a tensor"
    elseif not same_shape(src, own[name]) then
      msgs[#msgs + 1] = string.format("size mismatch for %s: copying a param with shape %s from checkpoint, the shape in current model is %s.",
        name, shape_str(src), shape_str(own[name]))
    end
  end
  for name in pairs(sd) do
    if own[name] == nil then unexpected[#unexpected + 1] = tostring(name) end
  end
  table.sort(unexpected)
  local function quoted(list)
    local q = {}
    for i, n in ipairs(list) do q[i] = '"' .. n .. '"' end
    return table.concat(q, ", ")
  end
  if strict then
    if #unexpected > 0 then table.insert(msgs, 1, "Unexpected key(s) in state_dict: " .. quoted(unexpected) .. ".") end
    if #missing > 0 then table.insert(msgs, 1, "Missing key(s) in state_dict: " .. quoted(missing) .. ".") end
  end
  if #msgs > 0 then
    error("Error(s) in loading state_dict for " .. self.__name .. ":\n\t" .. table.concat(msgs, "\n\t"), 2)
  end
  for name, dst in pairs(own) do
    local src = sd[name]
    if src ~= nil then dst:copy_(src) end
  end
  return { missing_keys = missing, unexpected_keys = unexpected }
end

------------------------------------------------------------------ copying
-- a deep copy with fresh parameter storage (PyTorch's copy.deepcopy)
function Module:clone()
  local map = {}
  local function copy(v)
    if wb.is_tensor(v) then
      if map[v] then return map[v] end
      local c = wb.no_grad(function() return v:detach():clone() end)
      if v.requires_grad then c:requires_grad_(true) end
      map[v] = c
      return c
    end
    if type(v) ~= "table" then return v end
    if map[v] then return map[v] end
    local o = {}
    map[v] = o
    for k, x in pairs(v) do rawset(o, k, copy(x)) end
    return setmetatable(o, getmetatable(v))
  end
  return copy(self)
end

------------------------------------------------------------------ printing
function Module:extra_repr() return "" end

-- PyTorch's layout: Name(extra) or Name(\n  (child): ...\n)
function Module:repr()
  local lines = {}
  local extra = self:extra_repr()
  for _, n in ipairs(self._module_names) do
    local c = member(self, n)
    if c then
      local s = c:repr():gsub("\n", "\n  ")
      lines[#lines + 1] = "(" .. n .. "): " .. s
    end
  end
  local name = self._repr_name or self.__name
  if #lines == 0 then return name .. "(" .. extra .. ")" end
  local body = {}
  if extra ~= "" then body[1] = "  " .. extra:gsub("\n", "\n  ") end
  for _, l in ipairs(lines) do body[#body + 1] = "  " .. l end
  return name .. "(\n" .. table.concat(body, "\n") .. "\n)"
end

local function pybool(b) return b and "True" or "False" end
-- a number as Python's repr(float) prints it
local function fmtnum(x)
  if x == math.floor(x) and math.abs(x) < 1e16 then return string.format("%.1f", x) end
  for digits = 1, 17 do
    local s = string.format("%." .. digits .. "g", x)
    if tonumber(s) == x then return s end
  end
  return string.format("%.17g", x)
end

------------------------------------------------------------------ init helpers
local function uniform(shape, bound) return wb.zeros(shape):uniform_(-bound, bound) end

-- PyTorch's default for Linear and Conv: kaiming_uniform_(a=sqrt(5)) on the
-- weight and U(-1/sqrt(fan_in), 1/sqrt(fan_in)) on the bias; both bounds are
-- 1/sqrt(fan_in) (gain sqrt(2/(1+5)), bound gain*sqrt(3/fan_in))
local function kaiming_bound(fan_in) return fan_in > 0 and 1 / math.sqrt(fan_in) or 0 end
nn.init = {}
function nn.init.uniform_(t, a, b) return t:uniform_(a, b) end
function nn.init.normal_(t, m, s) return t:normal_(m or 0, s or 1) end
function nn.init.zeros_(t) return t:zero_() end
function nn.init.ones_(t) return t:fill_(1) end
function nn.init.constant_(t, v) return t:fill_(v) end
-- fans as torch.nn.init._calculate_fan_in_and_fan_out
function nn.init.fans(t)
  local s = t:size()
  if #s < 2 then error("init: fan in and fan out need at least 2 dims, got " .. shape_str(t), 2) end
  local rf = 1
  for i = 3, #s do rf = rf * s[i] end
  return s[2] * rf, s[1] * rf
end
function nn.init.xavier_uniform_(t, gain)
  local fi, fo = nn.init.fans(t)
  local b = (gain or 1) * math.sqrt(6 / (fi + fo))
  return t:uniform_(-b, b)
end
function nn.init.xavier_normal_(t, gain)
  local fi, fo = nn.init.fans(t)
  return t:normal_(0, (gain or 1) * math.sqrt(2 / (fi + fo)))
end
function nn.init.kaiming_uniform_(t, a)
  local fi = nn.init.fans(t)
  local gain = math.sqrt(2 / (1 + (a or 0) ^ 2))
  local b = gain * math.sqrt(3 / fi)
  return t:uniform_(-b, b)
end
function nn.init.trunc_normal_(t, std)
  -- N(0, std) clamped to +-2 std by redrawing is not available; clamp instead
  t:normal_(0, std or 1)
  local c = wb.no_grad(function() return t:clamp(-2 * (std or 1), 2 * (std or 1)) end)
  return t:copy_(c)
end

local function opt(o, k, default)
  if o == nil or o[k] == nil then return default end
  return o[k]
end

------------------------------------------------------------------ Linear
local Linear = nn.class("Linear")
nn.Linear = Linear
-- Linear(in, out [, bias=true | {bias=}])
function Linear:__init(in_features, out_features, o)
  local bias = true
  if type(o) == "boolean" then bias = o elseif type(o) == "table" then bias = opt(o, "bias", true) end
  self.in_features, self.out_features = in_features, out_features
  local bound = kaiming_bound(in_features)
  self:register_parameter("weight", uniform({ out_features, in_features }, bound))
  self:register_parameter("bias", bias and uniform({ out_features }, bound) or nil)
end
function Linear:forward(x) return wb.linear(x, self.weight, self.bias) end
function Linear:extra_repr()
  return string.format("in_features=%d, out_features=%d, bias=%s", self.in_features, self.out_features, pybool(self.bias ~= nil))
end

------------------------------------------------------------------ Conv1d
local Conv1d = nn.class("Conv1d")
nn.Conv1d = Conv1d
-- Conv1d(in, out, k, {stride=1, padding=0 | "same", dilation=1, groups=1, bias=true})
function Conv1d:__init(cin, cout, k, o)
  local groups = opt(o, "groups", 1)
  if cin % groups ~= 0 or cout % groups ~= 0 then
    error(string.format("Conv1d: in_channels %d and out_channels %d must be divisible by groups %d", cin, cout, groups), 3)
  end
  self.in_channels, self.out_channels, self.kernel_size = cin, cout, k
  self.stride, self.dilation, self.groups = opt(o, "stride", 1), opt(o, "dilation", 1), groups
  self.padding = opt(o, "padding", 0)
  if self.padding == "same" then
    local total = self.dilation * (k - 1)
    if self.stride ~= 1 then error("Conv1d: padding='same' needs stride 1", 3) end
    if total % 2 ~= 0 then error("Conv1d: padding='same' needs an even dilation*(kernel_size-1), got " .. total, 3) end
    self._pad = total / 2
  else
    self._pad = self.padding
  end
  local bound = kaiming_bound(cin / groups * k)
  self:register_parameter("weight", uniform({ cout, cin / groups, k }, bound))
  self:register_parameter("bias", opt(o, "bias", true) and uniform({ cout }, bound) or nil)
end
function Conv1d:forward(x)
  return wb.conv1d(x, self.weight, self.bias, { stride = self.stride, padding = self._pad, dilation = self.dilation, groups = self.groups })
end
local function conv_repr(self, transposed)
  local s = string.format("%d, %d, kernel_size=(%d,), stride=(%d,)", self.in_channels, self.out_channels, self.kernel_size, self.stride)
  if self.padding == "same" then s = s .. ", padding=same"
  elseif self.padding ~= 0 then s = s .. string.format(", padding=(%d,)", self.padding) end
  if self.dilation ~= 1 then s = s .. string.format(", dilation=(%d,)", self.dilation) end
  if transposed and self.output_padding ~= 0 then s = s .. string.format(", output_padding=(%d,)", self.output_padding) end
  if self.groups ~= 1 then s = s .. ", groups=" .. self.groups end
  if self.bias == nil then s = s .. ", bias=False" end
  return s
end
function Conv1d:extra_repr() return conv_repr(self, false) end

------------------------------------------------------------------ ConvTranspose1d
local ConvTranspose1d = nn.class("ConvTranspose1d")
nn.ConvTranspose1d = ConvTranspose1d
-- ConvTranspose1d(in, out, k, {stride=1, padding=0, output_padding=0, groups=1, dilation=1, bias=true});
-- weight (in, out/groups, k); PyTorch's fan_in is out/groups*k
function ConvTranspose1d:__init(cin, cout, k, o)
  local groups = opt(o, "groups", 1)
  if cin % groups ~= 0 or cout % groups ~= 0 then
    error(string.format("ConvTranspose1d: in_channels %d and out_channels %d must be divisible by groups %d", cin, cout, groups), 3)
  end
  self.in_channels, self.out_channels, self.kernel_size = cin, cout, k
  self.stride, self.padding, self.output_padding = opt(o, "stride", 1), opt(o, "padding", 0), opt(o, "output_padding", 0)
  self.dilation, self.groups = opt(o, "dilation", 1), groups
  local bound = kaiming_bound(cout / groups * k)
  self:register_parameter("weight", uniform({ cin, cout / groups, k }, bound))
  self:register_parameter("bias", opt(o, "bias", true) and uniform({ cout }, bound) or nil)
end
function ConvTranspose1d:forward(x)
  return wb.conv_transpose1d(x, self.weight, self.bias, { stride = self.stride, padding = self.padding,
    output_padding = self.output_padding, dilation = self.dilation, groups = self.groups })
end
function ConvTranspose1d:extra_repr() return conv_repr(self, true) end

------------------------------------------------------------------ norms
local LayerNorm = nn.class("LayerNorm")
nn.LayerNorm = LayerNorm
-- LayerNorm(d, {eps=1e-5, elementwise_affine=true, bias=true}); normalises the last dim
function LayerNorm:__init(d, o)
  if type(d) == "table" then
    if #d ~= 1 then error("LayerNorm: only the last dim can be normalised, got normalized_shape of " .. #d .. " dims", 3) end
    d = d[1]
  end
  self.normalized_shape, self.eps = d, opt(o, "eps", 1e-5)
  self.elementwise_affine = opt(o, "elementwise_affine", true)
  if self.elementwise_affine then
    self:register_parameter("weight", wb.ones(d))
    self:register_parameter("bias", opt(o, "bias", true) and wb.zeros(d) or nil)
  end
end
function LayerNorm:forward(x) return wb.layer_norm(x, self.weight, self.bias, self.eps) end
function LayerNorm:extra_repr()
  return string.format("(%d,), eps=%s, elementwise_affine=%s", self.normalized_shape, fmtnum(self.eps), pybool(self.elementwise_affine))
end

local GroupNorm = nn.class("GroupNorm")
nn.GroupNorm = GroupNorm
-- GroupNorm(groups, channels, {eps=1e-5, affine=true}); x (B, C, ...)
function GroupNorm:__init(groups, channels, o)
  if channels % groups ~= 0 then error(string.format("GroupNorm: num_channels %d must be divisible by num_groups %d", channels, groups), 3) end
  self.num_groups, self.num_channels, self.eps, self.affine = groups, channels, opt(o, "eps", 1e-5), opt(o, "affine", true)
  if self.affine then
    self:register_parameter("weight", wb.ones(channels))
    self:register_parameter("bias", wb.zeros(channels))
  end
end
function GroupNorm:forward(x) return wb.group_norm(x, self.num_groups, self.weight, self.bias, self.eps) end
function GroupNorm:extra_repr()
  return string.format("%d, %d, eps=%s, affine=%s", self.num_groups, self.num_channels, fmtnum(self.eps), pybool(self.affine))
end

local RMSNorm = nn.class("RMSNorm")
nn.RMSNorm = RMSNorm
-- RMSNorm(d, {eps, elementwise_affine=true}); eps defaults to float32's
-- machine epsilon, as torch.nn.RMSNorm with eps=None
local F32_EPS = 1.1920928955078125e-07
function RMSNorm:__init(d, o)
  if type(d) == "table" then
    if #d ~= 1 then error("RMSNorm: only the last dim can be normalised", 3) end
    d = d[1]
  end
  self.normalized_shape, self.eps = d, opt(o, "eps", nil)
  self.elementwise_affine = opt(o, "elementwise_affine", true)
  if self.elementwise_affine then self:register_parameter("weight", wb.ones(d)) end
end
function RMSNorm:forward(x) return wb.rms_norm(x, self.weight, self.eps or F32_EPS) end
function RMSNorm:extra_repr()
  return string.format("(%d,), eps=%s, elementwise_affine=%s", self.normalized_shape, self.eps and fmtnum(self.eps) or "None", pybool(self.elementwise_affine))
end

------------------------------------------------------------------ Embedding
local Embedding = nn.class("Embedding")
nn.Embedding = Embedding
-- Embedding(n, d, {padding_idx}); weight N(0,1); ids are 0-based. The
-- padding row starts at zero and receives no gradient, as in PyTorch.
function Embedding:__init(n, d, o)
  self.num_embeddings, self.embedding_dim = n, d
  local pad = opt(o, "padding_idx", nil)
  if pad and pad < 0 then pad = n + pad end
  if pad and (pad < 0 or pad >= n) then error("Embedding: padding_idx must be within num_embeddings", 3) end
  self.padding_idx = pad
  local w = wb.randn(n, d)
  if pad then w:select(1, pad + 1):zero_() end
  self:register_parameter("weight", w)
end
function Embedding:forward(idx)
  local y = wb.embedding(self.weight, idx)
  if self.padding_idx and self.weight.requires_grad and wb.grad_enabled() then
    -- multiply by (idx != pad): same values, and no gradient into the padding row
    local keep = idx:ne(self.padding_idx):to("f32"):unsqueeze(-1)
    y = y * keep
  end
  return y
end
function Embedding:extra_repr()
  local s = string.format("%d, %d", self.num_embeddings, self.embedding_dim)
  if self.padding_idx then s = s .. ", padding_idx=" .. self.padding_idx end
  return s
end

------------------------------------------------------------------ Dropout, activations
local Dropout = nn.class("Dropout")
nn.Dropout = Dropout
function Dropout:__init(p)
  p = p or 0.5
  if p < 0 or p > 1 then error("Dropout: probability has to be between 0 and 1, but got " .. p, 3) end
  self.p = p
end
function Dropout:forward(x)
  if not self.training or self.p == 0 then return x end
  return wb.dropout(x, self.p, true)
end
function Dropout:extra_repr() return "p=" .. fmtnum(self.p) .. ", inplace=False" end

local function activation(name, fn)
  local cls = nn.class(name)
  cls.forward = function(_, x) return fn(x) end
  nn[name] = cls
  return cls
end
activation("ReLU", wb.relu)
activation("SiLU", wb.silu)
activation("Tanh", wb.tanh)
activation("Sigmoid", wb.sigmoid)
activation("Identity", function(x) return x end)
local GELU = nn.class("GELU")
nn.GELU = GELU
-- GELU({approximate = "none" | "tanh"}) or GELU("tanh")
function GELU:__init(o)
  self.approximate = type(o) == "string" and o or opt(o, "approximate", "none")
end
function GELU:forward(x) return wb.gelu(x, self.approximate) end
function GELU:extra_repr() return "approximate='" .. self.approximate .. "'" end

------------------------------------------------------------------ containers
local ModuleList = nn.class("ModuleList")
nn.ModuleList = ModuleList
function ModuleList:__init(list)
  for _, m in ipairs(list or {}) do self:append(m) end
end
function ModuleList:append(m)
  return self:add_module(tostring(#self._module_names), m)
end
function ModuleList:forward() error("ModuleList has no forward; iterate over it", 2) end

local Sequential = nn.class("Sequential")
nn.Sequential = Sequential
-- Sequential(m1, m2, ...) or Sequential{m1, m2, ...}
function Sequential:__init(...)
  local list = { ... }
  if #list == 1 and not is_module(list[1]) and type(list[1]) == "table" then list = list[1] end
  for _, m in ipairs(list) do self:add_module(tostring(#self._module_names), m) end
end
Sequential.append = ModuleList.append
function Sequential:forward(x)
  for i = 1, #self._module_names do x = self[i](x) end
  return x
end

------------------------------------------------------------------ attention
-- attn_mask in PyTorch's sense (bool: true = blocked; float: 0 / -inf) ->
-- bool with 1 = attend, as ewb_sdpa takes it
local function attend_mask(m)
  if m == nil then return nil end
  if m.dtype == "bool" then return m:logical_not() end
  return m:eq(0)
end

-- logical and of two "attend" masks that broadcast together
local function both_attend(a, b)
  if a == nil then return b end
  if b == nil then return a end
  return wb.where(a, b, 0)
end

local MultiheadAttention = nn.class("MultiheadAttention")
nn.MultiheadAttention = MultiheadAttention
-- MultiheadAttention(embed_dim, num_heads, {dropout=0, bias=true, batch_first=true})
-- in_proj_weight (3E, E) xavier-uniform, in_proj_bias (3E) zero, out_proj
-- Linear(E, E) with its default weight and a zero bias
function MultiheadAttention:__init(E, H, o)
  if E % H ~= 0 then error(string.format("MultiheadAttention: embed_dim %d must be divisible by num_heads %d", E, H), 3) end
  if o and ((o.kdim and o.kdim ~= E) or (o.vdim and o.vdim ~= E)) then
    error("MultiheadAttention: kdim/vdim other than embed_dim are not supported", 3)
  end
  self.embed_dim, self.num_heads, self.head_dim = E, H, E / H
  self.dropout, self.batch_first = opt(o, "dropout", 0), opt(o, "batch_first", true)
  local bias = opt(o, "bias", true)
  self:register_parameter("in_proj_weight", nn.init.xavier_uniform_(wb.zeros(3 * E, E)))
  self:register_parameter("in_proj_bias", bias and wb.zeros(3 * E) or nil)
  self.out_proj = Linear(E, E, bias)
  self.out_proj._repr_name = "NonDynamicallyQuantizableLinear"
  if bias then self.out_proj.bias:zero_() end
end

-- (B, T, E) -> (B, H, T, hd)
local function heads(x, B, T, H, hd)
  return x:reshape(B, T, H, hd):permute(1, 3, 2, 4)
end

-- mha(query, key, value, {key_padding_mask, attn_mask, need_weights=false,
--     average_attn_weights=true, is_causal=false}) -> out (B, T, E), weights or nil
-- query (B, T, E), key/value (B, S, E) (batch first; (T, B, E) when
-- batch_first=false; unbatched (T, E) works too). key_padding_mask (B, S)
-- and attn_mask (T, S) or (B*H, T, S): PyTorch's sense, true = blocked.
-- is_causal without attn_mask applies the causal mask.
function MultiheadAttention:forward(query, key, value, o)
  key, value = key or query, value or key or query
  local unbatched = query:dim() == 2
  if unbatched then
    query, key, value = query:unsqueeze(1), key:unsqueeze(1), value:unsqueeze(1)
  elseif not self.batch_first then
    query, key, value = query:transpose(1, 2), key:transpose(1, 2), value:transpose(1, 2)
  end
  local B, T, E = query:size(1), query:size(2), query:size(3)
  local S = key:size(2)
  if E ~= self.embed_dim then
    error(string.format("MultiheadAttention: expected embed_dim %d, got query %s", self.embed_dim, query:describe()), 2)
  end
  local H, hd = self.num_heads, self.head_dim
  local W, b = self.in_proj_weight, self.in_proj_bias
  local q, k, v
  if query == key and key == value then
    local qkv = wb.linear(query, W, b) -- (B, T, 3E)
    q, k, v = qkv:narrow(3, 1, E), qkv:narrow(3, E + 1, E), qkv:narrow(3, 2 * E + 1, E)
  else
    local function part(x, i)
      return wb.linear(x, W:narrow(1, i * E + 1, E), b and b:narrow(1, i * E + 1, E) or nil)
    end
    q = part(query, 0)
    if key == value then
      local kv = wb.linear(key, W:narrow(1, E + 1, 2 * E), b and b:narrow(1, E + 1, 2 * E) or nil) -- (B, S, 2E)
      k, v = kv:narrow(3, 1, E), kv:narrow(3, E + 1, E)
    else
      k, v = part(key, 1), part(value, 2)
    end
  end
  q, k, v = heads(q, B, T, H, hd), heads(k, B, S, H, hd), heads(v, B, S, H, hd)

  -- the mask, broadcast to (B, H, T, S), 1 = attend
  local am = attend_mask(o and o.attn_mask)
  if am and am:dim() == 3 then am = am:reshape(B, H, T, S) end
  local kpm = attend_mask(o and o.key_padding_mask)
  if kpm then kpm = kpm:reshape(B, 1, 1, S) end
  local mask = both_attend(am, kpm)
  local causal = o and o.is_causal and not (o and o.attn_mask)
  local scale = 1 / math.sqrt(hd)
  local need_weights = o and o.need_weights
  local p = self.training and self.dropout or 0

  local out, weights -- out (B, H, T, hd)
  if p == 0 and not need_weights then
    out = wb.sdpa(q, k, v, { mask = mask, causal = causal, scale = scale })
  else -- explicit attention: softmax(q kᵀ * scale + mask) with dropout on the weights
    local s = wb.matmul(q, k:transpose(3, 4)) * scale -- (B, H, T, S)
    if causal then
      -- (T, S): query t attends to keys s <= t
      mask = both_attend(mask, wb.arange(T):reshape(T, 1):ge(wb.arange(S):reshape(1, S)))
    end
    if mask then s = s:masked_fill(mask:logical_not(), -math.huge) end
    local a = wb.softmax(s, -1)
    weights = a
    if p > 0 then a = wb.dropout(a, p, true) end
    out = wb.matmul(a, v)
    if need_weights and o.average_attn_weights ~= false then weights = weights:mean(2) end
  end
  out = out:transpose(2, 3):reshape(B, T, E)
  out = self.out_proj(out)
  if unbatched then
    out = out:squeeze(1)
    if weights then weights = weights:squeeze(1) end
  elseif not self.batch_first then
    out = out:transpose(1, 2)
  end
  return out, need_weights and weights or nil
end
function MultiheadAttention:extra_repr() return "" end

------------------------------------------------------------------ transformer layers
local ACT = { relu = wb.relu, gelu = function(x) return wb.gelu(x) end }
local function act_fn(a)
  if type(a) == "function" then return a end
  local f = ACT[a or "relu"]
  if not f then error("activation should be relu/gelu, not " .. tostring(a), 4) end
  return f
end

-- (d_model, nhead, opts) or ({d_model=, nhead=, ...})
local function layer_args(d, h, o)
  if type(d) == "table" then o = d; d, h = o.d_model, o.nhead end
  o = o or {}
  if type(d) ~= "number" or type(h) ~= "number" then error("transformer layer: d_model and nhead are required numbers", 4) end
  local cfg = {
    d_model = d, nhead = h, dim_feedforward = o.dim_feedforward or 2048, dropout = o.dropout or 0.1,
    activation = o.activation or "relu", layer_norm_eps = o.layer_norm_eps or 1e-5,
    batch_first = o.batch_first == nil and true or o.batch_first, norm_first = o.norm_first or false,
    bias = o.bias == nil and true or o.bias,
  }
  return cfg
end

local TransformerEncoderLayer = nn.class("TransformerEncoderLayer")
nn.TransformerEncoderLayer = TransformerEncoderLayer
-- TransformerEncoderLayer(d_model, nhead, {dim_feedforward=2048, dropout=0.1,
--   activation="relu"|"gelu", layer_norm_eps=1e-5, batch_first=true, norm_first=false, bias=true})
function TransformerEncoderLayer:__init(d, h, o)
  local c = layer_args(d, h, o)
  self.cfg = c
  self.norm_first = c.norm_first
  self.self_attn = MultiheadAttention(c.d_model, c.nhead, { dropout = c.dropout, bias = c.bias, batch_first = c.batch_first })
  self.linear1 = Linear(c.d_model, c.dim_feedforward, c.bias)
  self.dropout = Dropout(c.dropout)
  self.linear2 = Linear(c.dim_feedforward, c.d_model, c.bias)
  self.norm1 = LayerNorm(c.d_model, { eps = c.layer_norm_eps, bias = c.bias })
  self.norm2 = LayerNorm(c.d_model, { eps = c.layer_norm_eps, bias = c.bias })
  self.dropout1 = Dropout(c.dropout)
  self.dropout2 = Dropout(c.dropout)
  self.activation = act_fn(c.activation)
end
function TransformerEncoderLayer:_sa_block(x, mask, kpm, causal)
  local y = self.self_attn(x, x, x, { attn_mask = mask, key_padding_mask = kpm, is_causal = causal })
  return self.dropout1(y)
end
function TransformerEncoderLayer:_ff_block(x)
  return self.dropout2(self.linear2(self.dropout(self.activation(self.linear1(x)))))
end
-- layer(src, {src_mask, src_key_padding_mask, is_causal})
function TransformerEncoderLayer:forward(x, o)
  local mask, kpm, causal = o and o.src_mask, o and o.src_key_padding_mask, o and o.is_causal
  if self.norm_first then
    x = x + self:_sa_block(self.norm1(x), mask, kpm, causal)
    x = x + self:_ff_block(self.norm2(x))
  else
    x = self.norm1(x + self:_sa_block(x, mask, kpm, causal))
    x = self.norm2(x + self:_ff_block(x))
  end
  return x
end

local TransformerDecoderLayer = nn.class("TransformerDecoderLayer")
nn.TransformerDecoderLayer = TransformerDecoderLayer
-- TransformerDecoderLayer(d_model, nhead, {...as the encoder layer})
function TransformerDecoderLayer:__init(d, h, o)
  local c = layer_args(d, h, o)
  self.cfg = c
  self.norm_first = c.norm_first
  local mo = { dropout = c.dropout, bias = c.bias, batch_first = c.batch_first }
  self.self_attn = MultiheadAttention(c.d_model, c.nhead, mo)
  self.multihead_attn = MultiheadAttention(c.d_model, c.nhead, mo)
  self.linear1 = Linear(c.d_model, c.dim_feedforward, c.bias)
  self.dropout = Dropout(c.dropout)
  self.linear2 = Linear(c.dim_feedforward, c.d_model, c.bias)
  local no = { eps = c.layer_norm_eps, bias = c.bias }
  -- one assignment per statement: children register in assignment order
  self.norm1 = LayerNorm(c.d_model, no)
  self.norm2 = LayerNorm(c.d_model, no)
  self.norm3 = LayerNorm(c.d_model, no)
  self.dropout1 = Dropout(c.dropout)
  self.dropout2 = Dropout(c.dropout)
  self.dropout3 = Dropout(c.dropout)
  self.activation = act_fn(c.activation)
end
function TransformerDecoderLayer:_sa_block(x, mask, kpm, causal)
  return self.dropout1(self.self_attn(x, x, x, { attn_mask = mask, key_padding_mask = kpm, is_causal = causal }))
end
function TransformerDecoderLayer:_mha_block(x, mem, mask, kpm, causal)
  return self.dropout2(self.multihead_attn(x, mem, mem, { attn_mask = mask, key_padding_mask = kpm, is_causal = causal }))
end
function TransformerDecoderLayer:_ff_block(x)
  return self.dropout3(self.linear2(self.dropout(self.activation(self.linear1(x)))))
end
-- layer(tgt, memory, {tgt_mask, memory_mask, tgt_key_padding_mask,
--   memory_key_padding_mask, tgt_is_causal, memory_is_causal})
-- tgt_is_causal=true without tgt_mask makes the self-attention causal.
function TransformerDecoderLayer:forward(x, mem, o)
  o = o or {}
  if self.norm_first then
    x = x + self:_sa_block(self.norm1(x), o.tgt_mask, o.tgt_key_padding_mask, o.tgt_is_causal)
    x = x + self:_mha_block(self.norm2(x), mem, o.memory_mask, o.memory_key_padding_mask, o.memory_is_causal)
    x = x + self:_ff_block(self.norm3(x))
  else
    x = self.norm1(x + self:_sa_block(x, o.tgt_mask, o.tgt_key_padding_mask, o.tgt_is_causal))
    x = self.norm2(x + self:_mha_block(x, mem, o.memory_mask, o.memory_key_padding_mask, o.memory_is_causal))
    x = self.norm3(x + self:_ff_block(x))
  end
  return x
end

-- layers of a stack: a module is deep-copied n times (PyTorch's _get_clones:
-- every layer starts with the same weights); a function is called n times
-- (independent initialisations)
local function clones(layer, n)
  local list = ModuleList()
  for i = 1, n do list:append(type(layer) == "function" and layer(i) or layer:clone()) end
  return list
end

local TransformerEncoder = nn.class("TransformerEncoder")
nn.TransformerEncoder = TransformerEncoder
-- TransformerEncoder(layer_or_factory, num_layers, {norm = nn.LayerNorm(d)})
function TransformerEncoder:__init(layer, n, o)
  self.layers = clones(layer, n)
  self.num_layers = n
  if o and o.norm then self.norm = o.norm end
end
-- enc(src, {mask, src_key_padding_mask, is_causal})
function TransformerEncoder:forward(x, o)
  o = o or {}
  local lo = { src_mask = o.mask, src_key_padding_mask = o.src_key_padding_mask, is_causal = o.is_causal }
  for i = 1, #self.layers do x = self.layers[i](x, lo) end
  if self.norm then x = self.norm(x) end
  return x
end

local TransformerDecoder = nn.class("TransformerDecoder")
nn.TransformerDecoder = TransformerDecoder
-- TransformerDecoder(layer_or_factory, num_layers, {norm = nn.LayerNorm(d)})
function TransformerDecoder:__init(layer, n, o)
  self.layers = clones(layer, n)
  self.num_layers = n
  if o and o.norm then self.norm = o.norm end
end
-- dec(tgt, memory, {tgt_mask, memory_mask, tgt_key_padding_mask, memory_key_padding_mask, tgt_is_causal, memory_is_causal})
function TransformerDecoder:forward(x, mem, o)
  for i = 1, #self.layers do x = self.layers[i](x, mem, o) end
  if self.norm then x = self.norm(x) end
  return x
end

return nn
