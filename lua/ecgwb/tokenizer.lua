--[[ ecgwb.tokenizer: the byte-level BPE tokenizer (core/tokenizer.c) from Lua.

  local tok = wb.tokenizer.train(reports, { vocab_size = 1000 })   -- default specials
  local ids = tok:encode("sinus rhythm, 72 bpm", { bos = true, eos = true })  -- i64 (n)
  tok:decode(ids)                        -- "<bos>sinus rhythm, 72 bpm<eos>"
  tok:decode(ids, { skip_special = true })  -- "sinus rhythm, 72 bpm"
  local x, mask = tok:encode_batch({ "a", "bb cc" }, { eos = true })  -- i64 (2, T), bool (2, T)
  tok:save("tok.bpe"); tok = wb.tokenizer.load("tok.bpe")

Token ids are 0-based (they index embedding rows, like PyTorch): 0..255 are
the bytes, then the merges, then the special tokens. Special tokens in the
text (e.g. "<ecg>") are recognised and never split, unless { special = false }.
]]
local wb = require "ecgwb"
local ffi, C = wb.ffi, wb.C
local I = wb._internal

local M = {}

-- the specials a new tokenizer gets unless told otherwise
M.default_specials = { "<pad>", "<bos>", "<eos>", "<ecg>", "<gen>" }

local Tok = {}
Tok.__index = Tok

local function live(self, fn)
  if not self.handle then error("tokenizer." .. fn .. ": the tokenizer was freed", 3) end
  return self.handle
end

local function wrap(p)
  return setmetatable({ handle = ffi.gc(p, C.ewb_tokenizer_free) }, Tok)
end

local function cstrings(list, fn)
  if type(list) ~= "table" then error("tokenizer." .. fn .. ": expected a list of strings, got " .. type(list), 3) end
  local n = #list
  local a, lens = ffi.new("const char*[?]", math.max(n, 1)), ffi.new("int64_t[?]", math.max(n, 1))
  for i = 1, n do
    local s = list[i]
    if type(s) ~= "string" then error("tokenizer." .. fn .. ": entry " .. i .. " must be a string, got " .. type(s), 3) end
    a[i - 1], lens[i - 1] = s, #s
  end
  return a, lens, n
end

local function encode_flags(o, fn)
  o = o or {}
  local known = { bos = true, eos = true, special = true, max_len = true, pad_left = true }
  for k in pairs(o) do
    if not known[k] then error("tokenizer." .. fn .. ": unknown option '" .. tostring(k) .. "'", 3) end
  end
  local f = 0
  if o.bos then f = f + C.EWB_TOK_BOS end
  if o.eos then f = f + C.EWB_TOK_EOS end
  if o.special == false then f = f + C.EWB_TOK_NO_SPECIAL end
  if o.pad_left then f = f + C.EWB_TOK_PAD_LEFT end
  return f, o
end

-- wb.tokenizer.new { specials = {...} }: bytes only, no merges yet
function M.new(o)
  o = o or {}
  local specials = o.specials or M.default_specials
  local a, _, n = cstrings(specials, "new")
  local out = ffi.new("ewb_tokenizer*[1]")
  local rc = C.ewb_tokenizer_new(out, a, n)
  I.check(rc, 1)
  return wrap(out[0])
end

-- wb.tokenizer.train(texts, { vocab_size = 1000, specials = {...} })
function M.train(texts, o)
  o = o or {}
  local tok = M.new { specials = o.specials }
  tok:train(texts, o.vocab_size or 1000)
  return tok
end

function M.load(file)
  if type(file) ~= "string" then error("tokenizer.load: expected a file name, got " .. type(file), 2) end
  local out = ffi.new("ewb_tokenizer*[1]")
  I.check(C.ewb_tokenizer_load(out, file), 1)
  return wrap(out[0])
end

-- the pre-tokenisation alone: a list of the words of text
function M.pretokenize(text)
  if type(text) ~= "string" then error("tokenizer.pretokenize: expected a string, got " .. type(text), 2) end
  local n = ffi.new("int64_t[1]")
  I.check(C.ewb_pretokenize(text, #text, nil, 0, n), 1)
  local ends = ffi.new("int64_t[?]", math.max(tonumber(n[0]), 1))
  I.check(C.ewb_pretokenize(text, #text, ends, n[0], n), 1)
  local words, start = {}, 0
  for i = 0, tonumber(n[0]) - 1 do
    local e = tonumber(ends[i])
    words[#words + 1] = text:sub(start + 1, e)
    start = e
  end
  return words
end

-- learns merges from a list of strings until the vocabulary has vocab_size tokens
function Tok:train(texts, vocab_size)
  local h = live(self, "train")
  local a, lens, n = cstrings(texts, "train")
  if type(vocab_size) ~= "number" then error("tokenizer.train: vocab_size must be a number", 2) end
  local rc = C.ewb_tokenizer_train(h, a, lens, n, vocab_size)
  I.check(rc, 1)
  return self
end

function Tok:vocab_size() return tonumber(C.ewb_tokenizer_vocab_size(live(self, "vocab_size"))) end
function Tok:num_merges() return tonumber(C.ewb_tokenizer_num_merges(live(self, "num_merges"))) end

-- the merges as a list of { left, right } ids; merge i makes token 255 + i
function Tok:merges()
  local h = live(self, "merges")
  local l, r, out = ffi.new("int64_t[1]"), ffi.new("int64_t[1]"), {}
  for i = 0, tonumber(C.ewb_tokenizer_num_merges(h)) - 1 do
    I.check(C.ewb_tokenizer_merge(h, i, l, r), 1)
    out[i + 1] = { tonumber(l[0]), tonumber(r[0]) }
  end
  return out
end

function Tok:specials()
  local h = live(self, "specials")
  local n, base, out = tonumber(C.ewb_tokenizer_num_specials(h)), tonumber(C.ewb_tokenizer_vocab_size(h)), {}
  base = base - n
  for i = 0, n - 1 do out[i + 1] = self:token(base + i) end
  return out
end

function Tok:special_id(name)
  local id = ffi.new("int64_t[1]")
  if type(name) ~= "string" then error("tokenizer.special_id: expected a string, got " .. type(name), 2) end
  I.check(C.ewb_tokenizer_special_id(live(self, "special_id"), name, id), 1)
  return tonumber(id[0])
end

function Tok:add_special(name)
  local id = ffi.new("int64_t[1]")
  if type(name) ~= "string" then error("tokenizer.add_special: expected a string, got " .. type(name), 2) end
  I.check(C.ewb_tokenizer_add_special(live(self, "add_special"), name, id), 1)
  return tonumber(id[0])
end

-- the bytes of token id (0-based)
function Tok:token(id)
  local p, n = ffi.new("const char*[1]"), ffi.new("int64_t[1]")
  I.check(C.ewb_tokenizer_token(live(self, "token"), id, p, n), 1)
  return ffi.string(p[0], n[0])
end

-- the id of the token with exactly these bytes, or nil
function Tok:id(bytes)
  if type(bytes) ~= "string" then error("tokenizer.id: expected a string, got " .. type(bytes), 2) end
  local id = tonumber(C.ewb_tokenizer_token_id(live(self, "id"), bytes, #bytes))
  if id < 0 then return nil end
  return id
end

-- i64 tensor (n); options bos, eos, special (false: special-token text is plain text)
function Tok:encode(text, o)
  local h = live(self, "encode")
  if type(text) ~= "string" then error("tokenizer.encode: expected a string, got " .. type(text), 2) end
  local f, opts = encode_flags(o, "encode")
  if opts.max_len or opts.pad_left then error("tokenizer.encode: max_len and pad_left are for encode_batch", 2) end
  I.check(C.ewb_tokenizer_encode(h, text, #text, f, I.out1), 1)
  return I.wrap(I.out1[0])
end

-- ids i64 (B, T) and mask bool (B, T); options bos, eos, special, max_len, pad_left
function Tok:encode_batch(texts, o)
  local h = live(self, "encode_batch")
  local f, opts = encode_flags(o, "encode_batch")
  local a, lens, n = cstrings(texts, "encode_batch")
  I.check(C.ewb_tokenizer_encode_batch(h, a, lens, n, opts.max_len or 0, f, I.out1, I.out2), 1)
  return I.wrap(I.out1[0]), I.wrap(I.out2[0])
end

local dbuf, dcap = nil, 0
-- ids: an integer tensor (any shape) or a Lua list of ids; { skip_special = true }
function Tok:decode(ids, o)
  local h = live(self, "decode")
  o = o or {}
  for k in pairs(o) do
    if k ~= "skip_special" then error("tokenizer.decode: unknown option '" .. tostring(k) .. "'", 2) end
  end
  if type(ids) == "table" then ids = wb.tensor(ids, "i64")
  elseif type(ids) == "number" then ids = wb.tensor({ ids }, "i64")
  elseif not wb.is_tensor(ids) then error("tokenizer.decode: expected a tensor or a list of ids, got " .. type(ids), 2) end
  local f = o.skip_special and C.EWB_TOK_SKIP_SPECIAL or 0
  local need = ffi.new("int64_t[1]")
  I.check(C.ewb_tokenizer_decode(h, ids.ptr, f, dbuf, dcap, need), 1)
  local n = tonumber(need[0])
  if n == 0 then return "" end
  if n > dcap then
    dcap = math.max(n, 2 * dcap, 4096)
    dbuf = ffi.new("char[?]", dcap)
    I.check(C.ewb_tokenizer_decode(h, ids.ptr, f, dbuf, dcap, need), 1)
  end
  return ffi.string(dbuf, n)
end

function Tok:save(file)
  if type(file) ~= "string" then error("tokenizer.save: expected a file name, got " .. type(file), 2) end
  I.check(C.ewb_tokenizer_save(live(self, "save"), file), 1)
  return self
end

-- releases the C tokenizer now
function Tok:free()
  if self.handle then
    C.ewb_tokenizer_free(ffi.gc(self.handle, nil))
    self.handle = nil
  end
end

function Tok:__tostring()
  if not self.handle then return "tokenizer (freed)" end
  return string.format("tokenizer (byte-level BPE, %d tokens: 256 bytes, %d merges, %d specials)", self:vocab_size(),
    self:num_merges(), tonumber(C.ewb_tokenizer_num_specials(self.handle)))
end

return M
