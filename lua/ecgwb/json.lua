--[[ ecgwb.json: a small JSON encoder and decoder, for configs stored in
checkpoints and for JSONL metric logs (wb.jsonl).

  local s = wb.json.encode({ step = 3, loss = 0.25, tags = { "a", "b" } })
  --> {"loss":0.25,"step":3,"tags":["a","b"]}
  local t = wb.json.decode(s)

Encoding:
- Numbers are written in the shortest form that reads back to the same
  double (integers without a fraction), so every finite number round-trips
  exactly.
- NaN and ±infinity have no JSON form. They are written as the bare tokens
  NaN, Infinity and -Infinity, as Python's json module does (json.loads reads
  them back; strict parsers such as jq do not). encode(v, {strict = true})
  raises an error instead.
- Strings are bytes, assumed UTF-8: ", \ and control characters are escaped,
  other bytes pass through.
- Tables: a table whose keys are exactly 1..n is an array; one whose keys are
  all strings is an object, keys sorted (so output is deterministic). An
  empty table is written as {}. Mixed or sparse keys, cycles, functions,
  userdata and cdata (tensors included) are errors naming the path.
- M.null encodes as null; decode returns M.null for null.

Decoding accepts standard JSON plus the NaN/Infinity tokens; \u escapes
(surrogate pairs included) become UTF-8. Errors name the byte position.
]]
local M = {}

M.null = setmetatable({}, { __tostring = function() return "null" end })

------------------------------------------------------------------ encode
local escapes = { ['"'] = '\\"', ["\\"] = "\\\\", ["\b"] = "\\b", ["\f"] = "\\f", ["\n"] = "\\n", ["\r"] = "\\r", ["\t"] = "\\t" }
local function escape_char(c) return escapes[c] or string.format("\\u%04x", c:byte()) end
local function encode_string(s) return '"' .. s:gsub('[%c"\\]', escape_char) .. '"' end

local function encode_number(x, strict, path)
  if x ~= x or x == math.huge or x == -math.huge then
    if strict then error("json.encode: " .. path .. " is " .. tostring(x) .. ", which JSON cannot represent", 0) end
    return x ~= x and "NaN" or (x > 0 and "Infinity" or "-Infinity")
  end
  if x == math.floor(x) and math.abs(x) < 2 ^ 53 then
    if x == 0 and 1 / x < 0 then return "-0" end
    return string.format("%d", x)
  end
  for digits = 15, 17 do
    local s = string.format("%." .. digits .. "g", x)
    if tonumber(s) == x then return s end
  end
end

local encode_value

local function encode_table(t, strict, path, seen, out)
  if seen[t] then error("json.encode: " .. path .. " contains itself (a cycle)", 0) end
  seen[t] = true
  local n, nkeys, strings = #t, 0, 0
  for k in pairs(t) do
    nkeys = nkeys + 1
    if type(k) == "string" then strings = strings + 1 end
  end
  if nkeys > 0 and strings == 0 then -- an array: keys must be exactly 1..n
    if n ~= nkeys then error("json.encode: " .. path .. " is a sparse array or has non-integer keys", 0) end
    out[#out + 1] = "["
    for i = 1, n do
      if i > 1 then out[#out + 1] = "," end
      encode_value(t[i], strict, path .. "[" .. i .. "]", seen, out)
    end
    out[#out + 1] = "]"
  else
    if strings ~= nkeys then error("json.encode: " .. path .. " mixes string and non-string keys", 0) end
    local keys = {}
    for k in pairs(t) do keys[#keys + 1] = k end
    table.sort(keys)
    out[#out + 1] = "{"
    for i, k in ipairs(keys) do
      if i > 1 then out[#out + 1] = "," end
      out[#out + 1] = encode_string(k)
      out[#out + 1] = ":"
      encode_value(t[k], strict, path .. "." .. k, seen, out)
    end
    out[#out + 1] = "}"
  end
  seen[t] = nil
end

encode_value = function(v, strict, path, seen, out)
  local tv = type(v)
  if v == M.null or v == nil then out[#out + 1] = "null"
  elseif tv == "boolean" then out[#out + 1] = v and "true" or "false"
  elseif tv == "number" then out[#out + 1] = encode_number(v, strict, path)
  elseif tv == "string" then out[#out + 1] = encode_string(v)
  elseif tv == "table" then encode_table(v, strict, path, seen, out)
  else error("json.encode: " .. path .. " is a " .. tv .. ", which JSON cannot represent", 0) end
end

-- v as JSON text; opts.strict: NaN and infinities are errors
function M.encode(v, opts)
  local out = {}
  local ok, err = pcall(encode_value, v, opts and opts.strict, "value", {}, out)
  if not ok then error(err, 2) end
  return table.concat(out)
end

------------------------------------------------------------------ decode
local function utf8(cp)
  if cp < 0x80 then return string.char(cp) end
  if cp < 0x800 then return string.char(0xC0 + math.floor(cp / 64), 0x80 + cp % 64) end
  if cp < 0x10000 then
    return string.char(0xE0 + math.floor(cp / 4096), 0x80 + math.floor(cp / 64) % 64, 0x80 + cp % 64)
  end
  return string.char(0xF0 + math.floor(cp / 262144), 0x80 + math.floor(cp / 4096) % 64,
    0x80 + math.floor(cp / 64) % 64, 0x80 + cp % 64)
end

local function fail(s, i, what)
  local near = s:sub(i, i + 20):gsub("%c", " ")
  error(string.format("json.decode: %s at byte %d near '%s'", what, i, near), 0)
end

local decode_value

local function skip(s, i) return s:find("[^ \t\r\n]", i) or #s + 1 end

local function decode_string(s, i) -- s:sub(i, i) == '"'
  local parts, j = {}, i + 1
  while true do
    local k = s:find('["\\%c]', j)
    if not k then fail(s, i, "unterminated string") end
    parts[#parts + 1] = s:sub(j, k - 1)
    local c = s:sub(k, k)
    if c == '"' then return table.concat(parts), k + 1 end
    if c ~= "\\" then fail(s, k, "control character in string") end
    local e = s:sub(k + 1, k + 1)
    local simple = ({ ['"'] = '"', ["\\"] = "\\", ["/"] = "/", b = "\b", f = "\f", n = "\n", r = "\r", t = "\t" })[e]
    if simple then
      parts[#parts + 1] = simple
      j = k + 2
    elseif e == "u" then
      local hex = s:match("^%x%x%x%x", k + 2)
      if not hex then fail(s, k, "bad \\u escape") end
      local cp = tonumber(hex, 16)
      j = k + 6
      if cp >= 0xD800 and cp <= 0xDBFF then -- a surrogate pair
        local lo = s:match("^\\u(%x%x%x%x)", j)
        lo = lo and tonumber(lo, 16)
        if not lo or lo < 0xDC00 or lo > 0xDFFF then fail(s, k, "unpaired surrogate") end
        cp = 0x10000 + (cp - 0xD800) * 1024 + (lo - 0xDC00)
        j = j + 6
      end
      parts[#parts + 1] = utf8(cp)
    else
      fail(s, k, "bad escape")
    end
  end
end

local literals = { ["true"] = true, ["false"] = false, ["null"] = M.null, NaN = 0 / 0, Infinity = math.huge,
  ["-Infinity"] = -math.huge }

decode_value = function(s, i, depth)
  if depth > 500 then fail(s, i, "nesting deeper than 500") end
  i = skip(s, i)
  local c = s:sub(i, i)
  if c == "" then fail(s, i, "unexpected end of input") end
  if c == '"' then return decode_string(s, i) end
  if c == "{" then
    local t = {}
    i = skip(s, i + 1)
    if s:sub(i, i) == "}" then return t, i + 1 end
    while true do
      if s:sub(i, i) ~= '"' then fail(s, i, "expected a string key") end
      local k
      k, i = decode_string(s, i)
      i = skip(s, i)
      if s:sub(i, i) ~= ":" then fail(s, i, "expected ':'") end
      local v
      v, i = decode_value(s, i + 1, depth + 1)
      t[k] = v
      i = skip(s, i)
      local d = s:sub(i, i)
      if d == "}" then return t, i + 1 end
      if d ~= "," then fail(s, i, "expected ',' or '}'") end
      i = skip(s, i + 1)
    end
  end
  if c == "[" then
    local t, n = {}, 0
    i = skip(s, i + 1)
    if s:sub(i, i) == "]" then return t, i + 1 end
    while true do
      local v
      v, i = decode_value(s, i, depth + 1)
      n = n + 1
      t[n] = v
      i = skip(s, i)
      local d = s:sub(i, i)
      if d == "]" then return t, i + 1 end
      if d ~= "," then fail(s, i, "expected ',' or ']'") end
      i = i + 1
    end
  end
  local num = s:match("^-?%d+%.?%d*[eE]?[-+]?%d*", i)
  if num and num ~= "-" then
    local v = tonumber(num)
    if not v or not num:match("^-?%d") or num:match("^-?0%d") then fail(s, i, "bad number") end
    return v, i + #num
  end
  for word, v in pairs(literals) do
    if s:sub(i, i + #word - 1) == word then return v, i + #word end
  end
  fail(s, i, "unexpected character")
end

-- the value of the JSON text s
function M.decode(s)
  if type(s) ~= "string" then error("json.decode: expected a string, got " .. type(s), 2) end
  local ok, v, i = pcall(decode_value, s, 1, 0)
  if not ok then error(v, 2) end
  i = skip(s, i)
  if i <= #s then
    local ok2, err = pcall(fail, s, i, "trailing characters after the value")
    error(err, 2)
  end
  return v
end

return M
