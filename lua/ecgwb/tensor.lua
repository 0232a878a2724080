--[[ ecgwb.tensor: the Lua face of the C core: loading the API, the tensor
metatype, construction, metadata, autograd entry points and views.
Math ops are added by ecgwb.ops; `require "ecgwb"` assembles everything.

  local wb = require "ecgwb"
  local x = wb.randn(4, 8)
  local w = wb.randn(3, 8):requires_grad_()
  local loss = (x:matmul(w:t())):pow(2):mean()
  loss:backward()
  print(w.grad)

Tensors are FFI cdata (struct ewb_tensor*) with a metatype; ffi.gc releases
the C reference, and t:free() releases the memory at once. Conventions are
Torch7's for a Lua user: dims and indices count from 1, negative dims count
from the end (-1 is the last). Every C status is turned into error() with the
message of the op that failed.
]]
local ffi = require "ffi"
local bit = require "bit"

local M = {}

-- load the C API: the host exports it (ffi.C); plain luajit loads libecgwb
ffi.cdef "const char *ewb_api_header(void);"
local C
if pcall(function() return ffi.C.ewb_api_header end) then
  C = ffi.C
else
  C = ffi.load(os.getenv("ECGWB_LIB") or "ecgwb")
end
do
  local hdr = ffi.string(C.ewb_api_header())
  local body = hdr:match("/%* ffi:begin %*/(.-)/%* ffi:end %*/")
  ffi.cdef(body)
end
M.C = C
M.ffi = ffi

local DT = { f32 = C.EWB_DTYPE_F32, i32 = C.EWB_DTYPE_I32, i64 = C.EWB_DTYPE_I64, bool = C.EWB_DTYPE_BOOL }
local DTNAME = { [0] = "f32", "i32", "i64", "bool" }
M.dtypes = DT

local function check(rc, level)
  if rc ~= 0 then error(ffi.string(C.ewb_last_error()), (level or 1) + 2) end
end
M.check = check

local Tensor = {}          -- methods
local tensor_ct            -- ctype of a Lua tensor (struct ewb_ref), set below
local out1 = ffi.new("ewb_tensor*[1]")
local out2 = ffi.new("ewb_tensor*[1]")

-- A Lua tensor is a one-field struct holding the C pointer. (A bare
-- `ewb_tensor*` cdata would be simpler, but LuaJIT gives t[i] on a pointer
-- its C meaning, pointer arithmetic; on a struct it reaches __index.)
ffi.cdef "typedef struct ewb_ref { ewb_tensor *ptr; } ewb_ref;"
local function release(r) C.ewb_tensor_free(r.ptr) end
local function wrap(p)
  if C.ewb_mem_pressure() ~= 0 then collectgarbage() end
  return ffi.gc(tensor_ct(p), release)
end
M.wrap = wrap

local function is_tensor(x) return ffi.istype(tensor_ct, x) end
M.is_tensor = is_tensor

-- shape arguments: f(2, 3) or f({2, 3}) or f(t:shape())
local shape_buf = ffi.new("int64_t[8]")
local function shape_of(a, ...)
  local s = type(a) == "table" and a or { a, ... }
  if #s > 8 then error("at most 8 dims, got " .. #s, 3) end
  for i = 1, #s do
    if type(s[i]) ~= "number" then error("shape entries must be numbers, got " .. type(s[i]), 3) end
    shape_buf[i - 1] = s[i]
  end
  return #s, shape_buf
end

-- 1-based / negative Lua dim -> 0-based / negative C dim
local function cdim(d)
  if d == nil then return nil end
  if d > 0 then return d - 1 end
  if d < 0 then return d end
  error("dims count from 1 (or from -1 at the end); got 0", 3)
end

-- tensor arguments are passed to C as their pointer
local function u(x)
  if ffi.istype(tensor_ct, x) then return x.ptr end
  return x
end
M.unwrap = u

-- run f(args..., out) and wrap the result (explicit arities: a vararg in
-- the middle of an argument list would be cut to one value)
local function op1(f, ...)
  local n = select("#", ...)
  local a, b, c, d, e, g, h, i, j = ...
  a, b, c, d, e, g, h, i, j = u(a), u(b), u(c), u(d), u(e), u(g), u(h), u(i), u(j)
  local rc
  if n == 1 then rc = f(a, out1)
  elseif n == 2 then rc = f(a, b, out1)
  elseif n == 3 then rc = f(a, b, c, out1)
  elseif n == 4 then rc = f(a, b, c, d, out1)
  elseif n == 5 then rc = f(a, b, c, d, e, out1)
  elseif n == 6 then rc = f(a, b, c, d, e, g, out1)
  elseif n == 7 then rc = f(a, b, c, d, e, g, h, out1)
  elseif n == 8 then rc = f(a, b, c, d, e, g, h, i, out1)
  elseif n == 9 then rc = f(a, b, c, d, e, g, h, i, j, out1)
  else error("op1: too many arguments") end
  check(rc, 1)
  return wrap(out1[0])
end
-- constructors take the out-pointer first: f(out, args...)
local function new1(f, ...)
  check(f(out1, ...), 1)
  return wrap(out1[0])
end

------------------------------------------------------------------ construction
local function ensure_tensor(x, like)
  if is_tensor(x) then return x end
  if type(x) == "number" then
    local s = ffi.new("int64_t[1]")
    check(C.ewb_full(out1, like and C.ewb_tensor_dtype(like.ptr) or 0, 0, s, x))
    return wrap(out1[0])
  end
  error("expected a tensor or a number, got " .. type(x), 3)
end

function M.zeros(...) local n, s = shape_of(...); return new1(C.ewb_tensor_new, 0, n, s) end
function M.ones(...) local n, s = shape_of(...); return new1(C.ewb_full, 0, n, s, 1) end
function M.full(shape, v, dtype) local n, s = shape_of(shape); return new1(C.ewb_full, DT[dtype or "f32"], n, s, v) end
function M.empty(...) return M.zeros(...) end
function M.rand(...) local n, s = shape_of(...); return new1(C.ewb_rand, n, s) end
function M.randn(...) local n, s = shape_of(...); return new1(C.ewb_randn, n, s) end
function M.randint(lo, hi, shape) local n, s = shape_of(shape); return new1(C.ewb_randint, lo, hi, n, s) end
function M.randperm(n) return new1(C.ewb_randperm, n) end
function M.arange(a, b, step, dtype)
  if b == nil then a, b = 0, a end
  return new1(C.ewb_arange, DT[dtype or "f32"], a, b, step or 1)
end
function M.manual_seed(s) C.ewb_manual_seed(s) end
function M.rng_state()
  local a, b = ffi.new("uint64_t[1]"), ffi.new("uint64_t[1]")
  C.ewb_rng_get_state(a, b)
  return { seed = a[0], offset = b[0] }
end
function M.set_rng_state(st) C.ewb_rng_set_state(st.seed, st.offset) end

-- nested Lua tables -> tensor
function M.tensor(data, dtype)
  if is_tensor(data) then return data:clone() end
  if type(data) == "number" then return M.full({}, data, dtype) end
  local shape, flat = {}, {}
  local t = data
  while type(t) == "table" do shape[#shape + 1] = #t; t = t[1] end
  local function walk(x, d)
    if d > #shape then flat[#flat + 1] = x; return end
    if type(x) ~= "table" or #x ~= shape[d] then error("tensor: ragged nested table at depth " .. d, 3) end
    for i = 1, #x do walk(x[i], d + 1) end
  end
  walk(data, 1)
  dtype = dtype or "f32"
  local ctype = ({ f32 = "float", i32 = "int32_t", i64 = "int64_t", bool = "uint8_t" })[dtype]
  if not ctype then error("tensor: unknown dtype " .. tostring(dtype), 2) end
  local buf = ffi.new(ctype .. "[?]", math.max(#flat, 1))
  for i = 1, #flat do
    local v = flat[i]
    if type(v) == "boolean" then v = v and 1 or 0 end
    buf[i - 1] = v
  end
  local n, s = shape_of(shape)
  return new1(C.ewb_tensor_from_data, DT[dtype], n, s, buf)
end

------------------------------------------------------------------ metadata
function Tensor.dim(t) return C.ewb_tensor_ndim(t.ptr) end
function Tensor.nelement(t) return tonumber(C.ewb_tensor_numel(t.ptr)) end
Tensor.numel = Tensor.nelement
function Tensor.size(t, d)
  if d then
    local nd = C.ewb_tensor_ndim(t.ptr)
    local i = d > 0 and d - 1 or nd + d
    if i < 0 or i >= nd then error("size: dim " .. d .. " out of range for a " .. nd .. "-d tensor", 2) end
    return tonumber(C.ewb_tensor_size(t.ptr, i))
  end
  local s = {}
  for i = 0, C.ewb_tensor_ndim(t.ptr) - 1 do s[i + 1] = tonumber(C.ewb_tensor_size(t.ptr, i)) end
  return s
end
Tensor.shape = Tensor.size
function Tensor.stride(t)
  local s = {}
  for i = 0, C.ewb_tensor_ndim(t.ptr) - 1 do s[i + 1] = tonumber(C.ewb_tensor_stride(t.ptr, i)) end
  return s
end
function Tensor.type(t) return DTNAME[C.ewb_tensor_dtype(t.ptr)] end
function Tensor.is_contiguous(t) return C.ewb_tensor_is_contiguous(t.ptr) ~= 0 end
function Tensor.data_ptr(t) return C.ewb_tensor_data(t.ptr) end
local descr = ffi.new("char[160]")
function Tensor.describe(t)
  if C.ewb_tensor_is_alive(t.ptr) == 0 then return "tensor(freed)" end
  C.ewb_tensor_describe(t.ptr, descr, 160)
  return ffi.string(descr)
end
function Tensor.item(t)
  local v = ffi.new("double[1]")
  check(C.ewb_tensor_item(t.ptr, v))
  return v[0]
end
local idxbuf = ffi.new("int64_t[8]")
function Tensor.get(t, ...)
  local idx = { ... }
  if #idx ~= C.ewb_tensor_ndim(t.ptr) then error("get: need " .. C.ewb_tensor_ndim(t.ptr) .. " indices, got " .. #idx, 2) end
  for i = 1, #idx do idxbuf[i - 1] = idx[i] > 0 and idx[i] - 1 or idx[i] end
  local v = ffi.new("double[1]")
  check(C.ewb_tensor_get(t.ptr, idxbuf, v))
  return v[0]
end
function Tensor.set(t, ...)
  local idx = { ... }
  local v = table.remove(idx)
  if #idx ~= C.ewb_tensor_ndim(t.ptr) then error("set: need " .. C.ewb_tensor_ndim(t.ptr) .. " indices and a value", 2) end
  for i = 1, #idx do idxbuf[i - 1] = idx[i] > 0 and idx[i] - 1 or idx[i] end
  check(C.ewb_tensor_set(t.ptr, idxbuf, v))
  return t
end
-- flat Lua table of all values (row-major)
function Tensor.totable(t)
  local c = t:contiguous():to("f32")
  local n = c:numel()
  local p = ffi.cast("float*", C.ewb_tensor_data(c.ptr))
  local out = {}
  for i = 0, n - 1 do out[i + 1] = p[i] end
  return out
end
-- nested tables following the shape
function Tensor.tolist(t)
  local flat, shape = t:totable(), t:size()
  local pos = 0
  local function build(d)
    if d > #shape then pos = pos + 1; return flat[pos] end
    local r = {}
    for i = 1, shape[d] do r[i] = build(d + 1) end
    return r
  end
  return build(1)
end
function Tensor.free(t)
  C.ewb_tensor_dispose(t.ptr)
end

------------------------------------------------------------------ autograd
function Tensor.requires_grad_(t, flag)
  check(C.ewb_tensor_set_requires_grad(t.ptr, flag == nil and 1 or (flag and 1 or 0)))
  return t
end
function Tensor.backward(t, grad, retain_graph)
  check(C.ewb_backward(t.ptr, grad and grad.ptr, retain_graph and 1 or 0))
end
function Tensor.detach(t) return op1(C.ewb_detach, t) end
function Tensor.zero_grad(t) check(C.ewb_tensor_set_grad(t.ptr, nil)) end
function Tensor.is_leaf(t) return C.ewb_tensor_is_leaf(t.ptr) ~= 0 end
local function get_grad(t)
  check(C.ewb_tensor_grad(t.ptr, out1))
  if out1[0] == nil then return nil end
  return wrap(out1[0])
end
function M.no_grad(fn, ...)
  local prev = C.ewb_grad_enabled()
  C.ewb_set_grad_enabled(0)
  -- fn runs exactly once (LuaJIT has no table.pack)
  local function finish(ok, ...)
    C.ewb_set_grad_enabled(prev)
    if not ok then error((...), 0) end
    return ...
  end
  return finish(pcall(fn, ...))
end
function M.set_anomaly(flag) C.ewb_set_anomaly(flag and 1 or 0) end
function M.grad_enabled() return C.ewb_grad_enabled() ~= 0 end

------------------------------------------------------------------ copies and in-place
function Tensor.clone(t) return op1(C.ewb_clone, t) end
function Tensor.contiguous(t) return op1(C.ewb_contiguous, t) end
function Tensor.to(t, dtype)
  local d = DT[dtype]
  if not d then error("to: unknown dtype " .. tostring(dtype), 2) end
  if C.ewb_tensor_dtype(t.ptr) == d then return t end
  return op1(C.ewb_to_dtype, t, d)
end
function Tensor.fill_(t, v) check(C.ewb_fill_(t.ptr, v)); return t end
function Tensor.zero_(t) return t:fill_(0) end
function Tensor.copy_(t, src) check(C.ewb_copy_(t.ptr, ensure_tensor(src, t).ptr)); return t end
function Tensor.add_(t, src, alpha) check(C.ewb_add_(t.ptr, ensure_tensor(src, t).ptr, alpha or 1)); return t end
function Tensor.mul_(t, s) check(C.ewb_scale_(t.ptr, s)); return t end
function Tensor.uniform_(t, a, b) check(C.ewb_uniform_(t.ptr, a or 0, b or 1)); return t end
function Tensor.normal_(t, m, s) check(C.ewb_normal_(t.ptr, m or 0, s or 1)); return t end

------------------------------------------------------------------ views
function Tensor.view(t, ...) local n, s = shape_of(...); return op1(C.ewb_view, t, n, s) end
function Tensor.reshape(t, ...) local n, s = shape_of(...); return op1(C.ewb_reshape, t, n, s) end
function Tensor.expand(t, ...) local n, s = shape_of(...); return op1(C.ewb_expand, t, n, s) end
function Tensor.expand_as(t, o) return t:expand(o:size()) end
function Tensor.view_as(t, o) return t:view(o:size()) end
function Tensor.flatten(t) return t:reshape(-1) end
local permbuf = ffi.new("int[8]")
function Tensor.permute(t, ...)
  local d = type(...) == "table" and ... or { ... }
  if #d ~= C.ewb_tensor_ndim(t.ptr) then error("permute: need " .. C.ewb_tensor_ndim(t.ptr) .. " dims, got " .. #d, 2) end
  for i = 1, #d do permbuf[i - 1] = cdim(d[i]) end
  return op1(C.ewb_permute, t, permbuf)
end
function Tensor.transpose(t, a, b) return op1(C.ewb_transpose, t, cdim(a), cdim(b)) end
function Tensor.t(t) return op1(C.ewb_transpose, t, -2, -1) end
function Tensor.narrow(t, dim, start, len) return op1(C.ewb_narrow, t, cdim(dim), start - 1, len) end
-- t:slice(dim, first, last, step): inclusive 1-based range, as Lua's string.sub
function Tensor.slice(t, dim, first, last, step)
  local n = t:size(dim)
  first = first or 1
  last = last or n
  if first < 0 then first = n + first + 1 end
  if last < 0 then last = n + last + 1 end
  return op1(C.ewb_slice, t, cdim(dim), first - 1, last, step or 1)
end
function Tensor.select(t, dim, i) return op1(C.ewb_select, t, cdim(dim), i > 0 and i - 1 or i) end
function Tensor.squeeze(t, dim) return op1(C.ewb_squeeze, t, cdim(dim)) end
function Tensor.unsqueeze(t, dim) return op1(C.ewb_unsqueeze, t, cdim(dim)) end
-- t:split(size, dim): pieces of `size` along dim (the last may be shorter);
-- t:split({s1, s2, ...}, dim): pieces of exactly those sizes, which must add up
-- to the dim's size. The pieces are views (narrow).
function Tensor.split(t, size, dim)
  dim = dim or 1
  local n, parts, s = t:size(dim), {}, 1
  if type(size) == "table" then
    local total = 0
    for i = 1, #size do
      if type(size[i]) ~= "number" or size[i] < 0 then error("split: sizes must be numbers >= 0", 2) end
      total = total + size[i]
    end
    if total ~= n then error("split: sizes add up to " .. total .. " but dim " .. dim .. " has size " .. n, 2) end
    for i = 1, #size do
      parts[i] = t:narrow(dim, s, size[i])
      s = s + size[i]
    end
    return parts
  end
  if type(size) ~= "number" or size < 1 then error("split: size must be a number >= 1, got " .. tostring(size), 2) end
  while s <= n do
    local len = math.min(size, n - s + 1)
    parts[#parts + 1] = t:narrow(dim, s, len)
    s = s + len
  end
  return parts
end
-- t:chunk(k, dim): at most k pieces of ceil(n / k) along dim, as torch.chunk
function Tensor.chunk(t, k, dim)
  if type(k) ~= "number" or k < 1 then error("chunk: the number of chunks must be >= 1, got " .. tostring(k), 2) end
  local n = t:size(dim or 1)
  if n == 0 then return { t:narrow(dim or 1, 1, 0) } end
  return t:split(math.ceil(n / k), dim)
end

local function tensor_array(list, op)
  op = op or "tensor list"
  if type(list) ~= "table" or #list == 0 then error(op .. ": expected a non-empty list of tensors", 3) end
  local arr = ffi.new("ewb_tensor*[?]", #list)
  for i = 1, #list do
    if not is_tensor(list[i]) then error(op .. ": element " .. i .. " of the list is a " .. type(list[i]) .. ", not a tensor", 3) end
    arr[i - 1] = list[i].ptr
  end
  return arr
end
-- the list stays referenced by the caller for the duration of the call, so
-- the raw pointers in arr remain valid
function M.cat(list, dim) return op1(C.ewb_cat, #list, tensor_array(list, "cat"), cdim(dim or 1)) end
function M.stack(list, dim) return op1(C.ewb_stack, #list, tensor_array(list, "stack"), cdim(dim or 1)) end

------------------------------------------------------------------ metatype
local function fmt(v) return string.format("%.4g", v) end
function Tensor.tostring(t)
  if C.ewb_tensor_is_alive(t.ptr) == 0 then return "tensor(freed)" end
  local parts = { "tensor " .. t:describe() }
  local n = t:numel()
  if n > 0 then
    local c = t:detach():contiguous():to("f32")
    local p = ffi.cast("float*", C.ewb_tensor_data(c.ptr))
    local vals = {}
    local shown = math.min(n, 6)
    for i = 0, shown - 1 do vals[#vals + 1] = fmt(p[i]) end
    if n > shown then vals[#vals + 1] = "... " .. fmt(p[n - 1]) end
    parts[#parts + 1] = "{" .. table.concat(vals, ", ") .. "}"
  end
  local fn = C.ewb_tensor_grad_fn(t.ptr)
  if fn ~= nil then parts[#parts + 1] = "grad_fn=" .. ffi.string(fn)
  elseif C.ewb_tensor_requires_grad(t.ptr) ~= 0 then parts[#parts + 1] = "requires_grad" end
  return table.concat(parts, " ")
end

local props = {
  grad = get_grad,
  requires_grad = function(t) return C.ewb_tensor_requires_grad(t.ptr) ~= 0 end,
  ndim = function(t) return C.ewb_tensor_ndim(t.ptr) end,
  dtype = function(t) return DTNAME[C.ewb_tensor_dtype(t.ptr)] end,
  grad_fn = function(t) local f = C.ewb_tensor_grad_fn(t.ptr); return f ~= nil and ffi.string(f) or nil end,
}

local mt = {
  __index = function(t, k)
    local m = Tensor[k]
    if m then return m end
    local p = props[k]
    if p then return p(t) end
    if type(k) == "number" then
      local s = t:select(1, k)
      if s:dim() == 0 then return s:item() end
      return s
    end
    error("tensor has no method or field '" .. tostring(k) .. "'", 2)
  end,
  __newindex = function(t, k, v)
    if k == "grad" then check(C.ewb_tensor_set_grad(t.ptr, v and v.ptr)); return end
    if k == "requires_grad" then t:requires_grad_(v); return end
    if type(k) == "number" then t:select(1, k):copy_(v); return end
    error("cannot set field '" .. tostring(k) .. "' of a tensor", 2)
  end,
  __tostring = Tensor.tostring,
  __len = function(t) return t:dim() > 0 and t:size(1) or 0 end,
  __add = function(a, b) return M.add(a, b) end,
  __sub = function(a, b) return M.sub(a, b) end,
  __mul = function(a, b) return M.mul(a, b) end,
  __div = function(a, b) return M.div(a, b) end,
  __unm = function(a) return M.neg(a) end,
  __pow = function(a, b) return M.pow(a, b) end,
}
tensor_ct = ffi.metatype("struct ewb_ref", mt)
M.Tensor = Tensor
M._internal = { wrap = wrap, op1 = op1, new1 = new1, ensure = ensure_tensor, check = check, out1 = out1, out2 = out2,
  shape_of = shape_of, cdim = cdim, tensor_array = tensor_array, DTNAME = DTNAME }
return M
