-- One new 100-event /v1/batch call per request, every event with its own messageId.
-- RAPPORT_AUTH (the Basic header) and RAPPORT_RUN come from the environment.
local counter = 0
local run = os.getenv("RAPPORT_RUN") or "run"
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

request = function()
  n = n + 1
  local items = {}
  for j = 1, 100 do
    local i = n * 100 + j
    items[j] = string.format(
      '{"type":"track","userId":"user-%d","anonymousId":"anon-%d","event":"Product Viewed",' ..
      '"messageId":"%s-%d-%d","originalTimestamp":"2026-11-01T10:00:00.000Z",' ..
      '"properties":{"product_id":"sku-%d","price":19.99,"currency":"EUR"},' ..
      '"context":{"ip":"10.0.0.1","userAgent":"Mozilla/5.0","page":{"path":"/p/1"}}}',
      i % 50000, i % 80000, run, id, i, i % 997)
  end
  local body = '{"sentAt":"2026-11-01T10:00:01.000Z","batch":[' .. table.concat(items, ",") .. ']}'
  return wrk.format(nil, "/v1/batch", nil, body)
end

done = function(summary, latency, requests)
  io.write(string.format("JSON {\"requests\": %d, \"errors\": %d, \"seconds\": %.3f, " ..
    "\"p50_ms\": %.2f, \"p99_ms\": %.2f}\n",
    summary.requests, summary.errors.status + summary.errors.connect + summary.errors.read +
    summary.errors.write + summary.errors.timeout, summary.duration / 1e6,
    latency:percentile(50) / 1000, latency:percentile(99) / 1000))
end
