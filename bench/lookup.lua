-- wrk script for the lookup cases: GET <BENCH_PATH><address> with random
-- addresses out of user0..user{2*rows-1}@bench.example.com. hush and the
-- baseline both hold user0..user{rows-1}, so about half are hits (a miss is
-- a 404, which wrk counts under "non2xx": the bench reports it as the miss
-- rate).
local rows = tonumber(os.getenv("BENCH_ROWS") or "1000000")
local prefix = os.getenv("BENCH_PATH") or "/v3/asm/suppressions/global/"
local token = os.getenv("BENCH_TOKEN") or ""
local started = 0

function setup(thread)
  started = started + 1
  thread:set("seed", started)
end

function init(args)
  math.randomseed(seed * 7919 + os.time())
  wrk.headers["Authorization"] = "Bearer " .. token
end

function request()
  return wrk.format("GET", prefix .. "user" .. math.random(0, 2 * rows - 1) .. "@bench.example.com")
end

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    "BENCH requests=%d duration_us=%d p50_us=%d p99_us=%d non2xx=%d socket_errors=%d\n",
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(99),
    e.status, e.connect + e.read + e.write + e.timeout))
end
