-- One new 100-event /v1/batch call per request, every event with its own messageId.
dofile(debug.getinfo(1, "S").source:match("@(.*/)") .. "common.lua")

request = function()
  n = n + 1
  local items = {}
  for j = 1, 100 do
    items[j] = event_json(n * 100 + j)
  end
  local body = '{"sentAt":"2026-11-01T10:00:01.000Z","batch":[' .. table.concat(items, ",") .. ']}'
  return wrk.format(nil, "/v1/batch", nil, body)
end
