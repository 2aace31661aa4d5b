package importtest

// MethodAndAgentRequests asks for each path with other methods and with
// the User-Agents and headers the cases test.
func MethodAndAgentRequests(paths []string) []Request {
	var out []Request
	for _, p := range paths {
		for _, m := range []string{"HEAD", "POST", "PUT", "DELETE", "OPTIONS", "PROPFIND"} {
			out = append(out, Request{Method: m, Path: p})
		}
		for _, ua := range []string{"", "Mozilla/5.0 (X11; Linux x86_64)", "badbot/1.0", "EvilScraper", "curl/8.0"} {
			out = append(out, Request{Path: p, Header: map[string]string{"User-Agent": ua}})
		}
		out = append(out, Request{Path: p, Header: map[string]string{"X-Debug": "1", "User-Agent": "x"}})
	}
	return out
}
