-- wrk script: POST one defect-detector row, keep-alive. With VIGIL_KEY set, the key
-- goes along as a bearer token (bench/auth.sh).
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.body = '{"features": [70, 250, 2.5, 45, 1500, 12]}'
local key = os.getenv("VIGIL_KEY")
if key and key ~= "" then
  wrk.headers["Authorization"] = "Bearer " .. key
end
