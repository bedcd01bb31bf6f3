-- wrk script: POST one defect-detector row, keep-alive.
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.body = '{"features": [70, 250, 2.5, 45, 1500, 12]}'
