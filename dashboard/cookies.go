package dashboard

// CookieNames are the cookies the dashboard sets. Browsers do not separate
// cookies by port, so they also reach the proxy port, which must not pass
// them upstream.
func CookieNames() []string { return []string{dashCookie, dashLoginCookie} }
