-- wrk script for bench/wechat_endpoint.py: replays pre-generated signed WeChat posts, never the
-- same one twice unless the file runs out (then it wraps and says so), checks every reply, and
-- optionally paces requests to a fixed rate.
--
--   wrk -t T -c C -d D -s bench/wrk/wechat.lua URL -- <requests-file-prefix> <rate-per-second|0>
--
-- Thread i reads <prefix>.<i>: records "<length>\n<raw HTTP request>" written by the harness.
-- done() prints one line "BENCH_JSON {...}" that the harness parses.
--
-- Each message's <CreateTime> is set to the second it is sent, as in WeChat's first try of a
-- message (the files are written before the run; the real app takes a message over 4 s old for a
-- possible retry and claims it before answering, which is slower). Same length: 10 digits.

local ffi = require("ffi")
ffi.cdef([[
typedef struct { long tv_sec; long tv_nsec; } bench_timespec;
int clock_gettime(int clk_id, bench_timespec *tp);
]])
local CLOCK_MONOTONIC = 1
local timespec = ffi.new("bench_timespec")

local function now_ms()
  ffi.C.clock_gettime(CLOCK_MONOTONIC, timespec)
  return tonumber(timespec.tv_sec) * 1000 + tonumber(timespec.tv_nsec) / 1e6
end

-- setup() runs in the main Lua state, once per thread, before that thread's init().
local threads = {}
local thread_count = 0

function setup(thread)
  thread_count = thread_count + 1
  thread:set("tid", thread_count)
  table.insert(threads, thread)
end

-- Per-thread state (each wrk thread has its own Lua state). Globals so done() can read them.
requests_total = 0
issued = 0
wraps = 0
ok = 0
bad_status = 0
bad_body = 0
first_bad = ""
late = 0
local reqs = {}
local heads = {}  -- reqs[i] cut around its CreateTime digits (nil when it has none)
local tails = {}
local idx = 0
local interval_ms = 0
local next_slot = nil

function init(args)
  local prefix = args[1]
  local rate = tonumber(args[2] or "0") or 0
  local nthreads = tonumber(args[3] or "1") or 1
  local f = assert(io.open(prefix .. "." .. tid, "rb"))
  local data = f:read("*a")
  f:close()
  local pos = 1
  local size = #data
  while pos <= size do
    local nl = data:find("\n", pos, true)
    local len = tonumber(data:sub(pos, nl - 1))
    local req = data:sub(nl + 1, nl + len)
    reqs[#reqs + 1] = req
    local open_end = select(2, req:find("<CreateTime>", 1, true))
    local close_start = req:find("</CreateTime>", 1, true)
    if open_end and close_start and close_start - open_end - 1 == 10 then
      heads[#reqs] = req:sub(1, open_end)
      tails[#reqs] = req:sub(close_start)
    end
    pos = nl + 1 + len
  end
  requests_total = #reqs
  if rate > 0 then
    -- Each thread keeps its share of the rate on a schedule of evenly spaced slots. delay() is
    -- defined only when pacing: wrk looks for it after the first init() and skips timers without it.
    interval_ms = 1000 * nthreads / rate
    delay = paced_delay
  end
end

function request()
  idx = idx + 1
  if idx > requests_total then
    idx = 1
    wraps = wraps + 1
  end
  issued = issued + 1
  local head = heads[idx]
  if head then
    return head .. os.time() .. tails[idx]
  end
  return reqs[idx]
end

function response(status, headers, body)
  if status ~= 200 then
    bad_status = bad_status + 1
    if first_bad == "" then first_bad = tostring(status) .. " " .. (body or ""):sub(1, 200) end
  elseif not (body and body:find("<xml>", 1, true) and body:find("<MsgType>", 1, true)) then
    bad_body = bad_body + 1
    if first_bad == "" then first_bad = "200 " .. (body or ""):sub(1, 200) end
  else
    ok = ok + 1
  end
end

function paced_delay()
  local now = now_ms()
  if next_slot == nil then next_slot = now end
  next_slot = next_slot + interval_ms
  local d = next_slot - now
  if d < 0 then
    late = late + 1
    -- More than a second behind: the server cannot keep up; drop the missed slots rather than
    -- bursting to catch up (the achieved rate shows the shortfall).
    if d < -1000 then next_slot = now end
    return 0
  end
  return d
end

function done(summary, latency, requests)
  local totals = { issued = 0, wraps = 0, ok = 0, bad_status = 0, bad_body = 0, late = 0, requests_total = 0 }
  local first = ""
  for _, t in ipairs(threads) do
    for k, _ in pairs(totals) do totals[k] = totals[k] + (t:get(k) or 0) end
    local fb = t:get("first_bad")
    if first == "" and fb and fb ~= "" then first = fb end
  end
  local e = summary.errors
  local out = {
    string.format('"duration_us":%d', summary.duration),
    string.format('"requests":%d', summary.requests),
    string.format('"bytes":%d', summary.bytes),
    string.format('"errors":{"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d}',
      e.connect, e.read, e.write, e.status, e.timeout),
    string.format('"latency_us":{"min":%d,"mean":%.1f,"stdev":%.1f,"max":%d,"p50":%d,"p90":%d,"p99":%d,"p999":%d}',
      latency.min, latency.mean, latency.stdev, latency.max, latency:percentile(50.0),
      latency:percentile(90.0), latency:percentile(99.0), latency:percentile(99.9)),
  }
  for k, v in pairs(totals) do out[#out + 1] = string.format('"%s":%d', k, v) end
  local escaped = first:gsub("\\", "\\\\"):gsub('"', '\\"'):gsub("[%c]", " ")
  out[#out + 1] = string.format('"first_bad":"%s"', escaped)
  io.write("BENCH_JSON {" .. table.concat(out, ",") .. "}\n")
end
