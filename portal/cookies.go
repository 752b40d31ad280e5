package portal

// CookieNames are the cookies the portal sets, which the proxy must not
// pass upstream.
func CookieNames() []string { return []string{sessionCookie, hopCookie} }
