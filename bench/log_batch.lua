-- wrk script: POST /log with batches of 500 unique records (ids never repeat
-- across requests or threads), as the forwarder sends them.
local counter = 0
local thread_id = 0

function setup(thread)
  thread:set("tid", math.random(1, 1e9))
end

function init(args)
  thread_id = tid
end

local function record(id)
  return '{"prediction_id":"' .. id .. '","model":"defect-detector","model_version":"1.0.0",'
    .. '"timestamp":"2026-11-22T21:00:00.000Z","label":"ok","confidence":0.97,"is_defect":false,'
    .. '"latency_ms":0.8,"request_id":"' .. id .. '","trace_id":"4bf92f3577b34da6a3ce929d0e0e4736",'
    .. '"status":"success"}'
end

request = function()
  local parts = {}
  for i = 1, 500 do
    counter = counter + 1
    parts[i] = record(thread_id .. "-" .. counter)
  end
  local body = '{"records":[' .. table.concat(parts, ",") .. ']}'
  return wrk.format("POST", "/log", {["Content-Type"] = "application/json"}, body)
end
