// Package httperr is authd's HTTP error plumbing: Write, the one function
// that turns an error into a response, and what every request needs
// around it — request ids, panic recovery, the 404/405 answers of the
// router, request body limits, JSON-or-HTML negotiation, the HTML error
// page and the catalog pages at /docs/errors.
//
// The error model itself (codes, the catalog, *errors.Error) lives in
// package errors, which knows nothing of HTTP; this package renders it in
// the shape of RFC 6749 §5.2:
//
//	{"error":"invalid_request","error_description":"Missing required parameter: client_id",
//	 "error_uri":"https://auth.example.com/docs/errors#invalid_request","request_id":"…"}
//
// How an error is rendered is chosen explicitly, never by state a handler
// changes as it runs: a browser-facing route is wrapped in HTML in the
// route table, and a handler whose error belongs on a page of its own
// returns WithPage(err, page). The only per-request state Middleware
// keeps is the request id (and whether the response has started); what
// Write counts goes through Config.Count.
package httperr
