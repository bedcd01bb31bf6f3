-- wrk script: POST the bytes of $BODY_FILE, keep-alive. $CONTENT_TYPE and
-- $HEADER_LENGTH (the Open Inference Protocol's Inference-Header-Content-Length) are
-- sent when set (bench/v2.sh).
wrk.method = "POST"
local f = assert(io.open(os.getenv("BODY_FILE"), "rb"))
wrk.body = f:read("*a")
f:close()
local content_type = os.getenv("CONTENT_TYPE")
if content_type and content_type ~= "" then
  wrk.headers["Content-Type"] = content_type
end
local header_length = os.getenv("HEADER_LENGTH")
if header_length and header_length ~= "" then
  wrk.headers["Inference-Header-Content-Length"] = header_length
end
