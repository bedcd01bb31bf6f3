-- wrk script: POST /feedback with batches of 1000 labels for predictions b-1, b-2, …
-- (stored beforehand by bench/feedback.sh); one wrk thread, so the ids never repeat.
-- Every fifth label is wrong.
local counter = 0

request = function()
  local parts = {}
  for i = 1, 1000 do
    counter = counter + 1
    local label = (counter % 5 == 0) and "defect" or "ok"
    parts[i] = '{"prediction_id":"b-' .. counter .. '","label":"' .. label .. '"}'
  end
  local body = '{"feedback":[' .. table.concat(parts, ",") .. ']}'
  return wrk.format("POST", "/feedback", {["Content-Type"] = "application/json"}, body)
end
