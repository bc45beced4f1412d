-- wrk script: POST the z2jh GPU notebook AdmissionReview (path in $REVIEW) on keep-alive connections.
local file = assert(io.open(os.getenv("REVIEW"), "rb"))
wrk.method = "POST"
wrk.path = "/mutate"
wrk.headers["Content-Type"] = "application/json"
wrk.body = file:read("*a")
file:close()
