"""A constant offered load with Debian's wrk: a Lua script paces the requests to a fixed schedule.

wrk2 (wrk with a constant-rate mode that corrects for coordinated omission) is not packaged by Debian,
so ``RATE_LUA`` gives wrk one through its ``delay()`` hook: each wrk thread keeps a schedule of send
times, one every ``1 / rate`` seconds, and a connection that is ready to send waits until the next
free slot. The cookies rotate as in the maximum-throughput runs (``-`` instead of a file: none).

    wrk -t2 -c50 -d10s --latency -s rate.lua URL -- COOKIES_FILE|- RATE_PER_THREAD

Its limits, said plainly:
- **Latency is measured from the actual send**, as wrk always does, not from the scheduled one as
  wrk2 does. Where the server stalls and every connection is busy, later requests leave late and
  their queueing is not in the percentiles (coordinated omission). The script counts those **late
  sends** (more than 1 ms behind their slot) and the worst lag; with none, or very few, the
  percentiles are what an open-loop client would see. With many, the p99 is understated: read the
  late count next to it.
- wrk's timers have whole-millisecond resolution: a send may leave up to 1 ms before its slot. The
  schedule is absolute, so the average rate holds and the jitter does not accumulate.
- The offered rate is only reached while the connections suffice: ``connections / latency`` must stay
  above the rate (50 connections at 10 ms carry 5,000 req/s).
"""

RATE_LUA = """
-- constant offered load: each wrk thread sends on a fixed schedule (bench/fixed_rate.py says how)
local ffi = require("ffi")
ffi.cdef[[
typedef struct { long tv_sec; long tv_nsec; } bench_timespec;
int clock_gettime(int clk, bench_timespec *ts);
]]
local ts = ffi.new("bench_timespec")
local function now_ms()
  ffi.C.clock_gettime(1, ts)  -- CLOCK_MONOTONIC
  return tonumber(ts.tv_sec) * 1000 + tonumber(ts.tv_nsec) / 1e6
end
local threads = {}
function setup(thread) table.insert(threads, thread) end
local cookies, n, i, interval, slot = {}, 0, 0, 1, nil
late, lag_max = 0, 0  -- globals: done() reads them from each thread
function init(args)
  interval = 1000 / tonumber(args[2])
  if args[1] ~= "-" then
    for line in io.lines(args[1]) do
      if #line > 0 then n = n + 1; cookies[n] = line end
    end
    assert(n > 0, "no cookies in " .. args[1])
    i = math.random(n)
  end
end
function request()
  if n == 0 then return wrk.format() end
  i = i % n + 1
  return wrk.format(nil, nil, {["Cookie"] = cookies[i]})
end
function delay()
  local now = now_ms()
  if slot == nil then slot = now + math.random() * interval end
  local wait = slot - now
  slot = slot + interval
  if wait < -1 then
    late = late + 1
    if -wait > lag_max then lag_max = -wait end
  end
  if wait <= 0 then return 0 end
  return wait
end
function done(summary, latency, requests)
  local l, m = 0, 0
  for _, t in ipairs(threads) do
    l = l + t:get("late")
    m = math.max(m, t:get("lag_max"))
  end
  io.write(string.format("late sends: %d, max lag ms: %.1f\\n", l, m))
end
"""
