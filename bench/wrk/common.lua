-- Shared by the wrk scripts: the request frame, a per-thread id, and a JSON summary
-- line that bench/bench_ingest.py reads. RAPPORT_AUTH (the Basic header) and
-- RAPPORT_RUN (a prefix that keeps messageIds unique across runs) come from the
-- environment.
local counter = 0
run = os.getenv("RAPPORT_RUN") or "run"
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = os.getenv("RAPPORT_AUTH")

function setup(thread)
  thread:set("id", counter)
  counter = counter + 1
end

function init(args)
  n = 0
end

function event_json(i)
  return string.format(
    '{"type":"track","userId":"user-%d","anonymousId":"anon-%d","event":"Product Viewed",' ..
    '"messageId":"%s-%d-%d","originalTimestamp":"2026-11-01T10:00:00.000Z",' ..
    '"properties":{"product_id":"sku-%d","price":19.99,"currency":"EUR"},' ..
    '"context":{"ip":"10.0.0.1","userAgent":"Mozilla/5.0","page":{"path":"/p/1"}}}',
    i % 50000, i % 80000, run, id, i, i % 997)
end

done = function(summary, latency, requests)
  local errors = summary.errors
  io.write(string.format("JSON {\"requests\": %d, \"errors\": %d, \"seconds\": %.3f, " ..
    "\"p50_ms\": %.2f, \"p99_ms\": %.2f}\n",
    summary.requests, errors.status + errors.connect + errors.read + errors.write + errors.timeout,
    summary.duration / 1e6, latency:percentile(50) / 1000, latency:percentile(99) / 1000))
end
