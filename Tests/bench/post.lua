-- wrk script: a 2.5 KB JSON POST, as an AdmissionReview is.
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.body = '{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"uid":"x","pad":"' .. string.rep("p", 2400) .. '"}}'
