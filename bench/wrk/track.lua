-- One new single-event /v1/track call per request, each with its own messageId.
dofile(debug.getinfo(1, "S").source:match("@(.*/)") .. "common.lua")

request = function()
  n = n + 1
  return wrk.format(nil, "/v1/track", nil, event_json(n))
end
