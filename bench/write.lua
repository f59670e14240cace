-- wrk script for the write case: every request adds one new address to the
-- global unsubscribes (POST /v3/asm/suppressions/global), w<thread>-<n>@write.example.com.
local token = os.getenv("BENCH_TOKEN") or ""
local started = 0
local sent = 0

function setup(thread)
  started = started + 1
  thread:set("seed", started)
end

function init(args)
  wrk.headers["Authorization"] = "Bearer " .. token
  wrk.headers["Content-Type"] = "application/json"
end

function request()
  sent = sent + 1
  return wrk.format("POST", "/v3/asm/suppressions/global", nil,
    '{"recipient_emails":["w' .. seed .. '-' .. sent .. '@write.example.com"]}')
end

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    "BENCH requests=%d duration_us=%d p50_us=%d p99_us=%d non2xx=%d socket_errors=%d\n",
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(99),
    e.status, e.connect + e.read + e.write + e.timeout))
end
