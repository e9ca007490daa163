package transport

// RESTRoutes returns restRoutes as "METHOD pattern" lines.
func RESTRoutes() []string {
	var out []string
	for _, r := range restRoutes {
		out = append(out, r.method+" "+r.pattern)
	}
	return out
}
