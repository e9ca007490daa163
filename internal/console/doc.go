// Package console serves the operator console: a single-page web
// application under /console/ that shows and changes what the server serves
// through the server's own REST API, nothing else.
//
// The built files (dist/, from the sources in web/ by `make console`) are
// embedded, so the binary serves the console without Node or a CDN. Every
// answer carries a Content-Security-Policy that allows only the console's
// own script, style and REST calls (no inline script, no other origin),
// X-Content-Type-Options: nosniff and a Content-Type chosen by the server.
//
// Besides the static files, three read-only JSON endpoints exist for the
// console, each needing a viewer token (or none when authentication is off):
//
//	GET /console/api/whoami               the caller's token name and role, so the
//	                                      console shows only what the role may do
//	                                      (the API refuses the rest anyway)
//	GET /console/api/evaluations          the `evaluate` reports in the evaluation
//	                                      directory (<data-dir>/evaluations/*.json)
//	GET /console/api/evaluations/{file}   one report: the recommenders' scores and
//	                                      their slack-vs-risk curves
//
// Caveats: the console keeps the bearer token in the tab's sessionStorage
// (gone when the tab closes), never in a URL or localStorage; an evaluation
// report is read from the server's own directory, never from a path a
// request names beyond a plain file name.
package console
