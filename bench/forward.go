package main

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"
)

// forwardAuthCompare measures forward auth (SPEC §10): nginx proxying to the
// echo upstream on its own, against the same nginx asking keygate about
// every request with the shipped examples/forward-auth/nginx.conf. The main
// keygate is stopped first and a forward-auth keygate opens its database,
// so the same seeded keys are used.
func (e *env) forwardAuthCompare(ctx context.Context, kg *keygateRun) error {
	bin := findNginx()
	if bin == "" {
		return fmt.Errorf("-forward-auth: nginx is not installed (apt-get install -y nginx-light)")
	}
	kg.p.stop(5 * time.Second)

	// keygate: the main run's config and database, forward auth only.
	c := kg.conf
	var err error
	if c.proxyAddr, err = freeAddr(); err != nil {
		return err
	}
	if c.adminAddr, err = freeAddr(); err != nil {
		return err
	}
	yaml := strings.Replace(c.yaml(), fmt.Sprintf("upstreams: [%q]", "http://"+c.upstream), "upstreams: []", 1)
	if yaml == c.yaml() {
		return fmt.Errorf("forward auth: cannot find proxy.upstreams in the bench config")
	}
	yaml += "forward_auth:\n  path: /_keygate/auth\n  limited_status: 403\n"
	path := filepath.Join(e.dir, "keygate-fwd.yaml")
	if err := os.WriteFile(path, []byte(yaml), 0o600); err != nil {
		return err
	}
	p, err := startProc("keygate-fwd", filepath.Join(e.dir, "keygate-fwd.log"), e.bins["keygate"], "serve", "--config", path)
	if err != nil {
		return err
	}
	e.ps.add(p)
	if _, err := waitHTTP(ctx, p, "http://"+c.adminAddr+"/readyz", 60*time.Second); err != nil {
		return err
	}
	if err := waitTCP(ctx, p, c.proxyAddr, 10*time.Second); err != nil {
		return err
	}

	// nginx: one process serving both, so both get the same nginx.
	alone, err := freeAddr()
	if err != nil {
		return err
	}
	withAuth, err := freeAddr()
	if err != nil {
		return err
	}
	dir := filepath.Join(e.dir, "nginx")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	site, err := os.ReadFile(filepath.Join(e.root, "examples", "forward-auth", "nginx.conf"))
	if err != nil {
		return err
	}
	s := string(site)
	for _, r := range [][2]string{
		{"server 127.0.0.1:8080;", "server " + c.proxyAddr + ";"},
		{"server 127.0.0.1:3000;", "server " + e.echo + ";"},
		{"listen 80;", "listen " + withAuth + ";"},
	} {
		if !strings.Contains(s, r[0]) {
			return fmt.Errorf("examples/forward-auth/nginx.conf no longer contains %q", r[0])
		}
		s = strings.ReplaceAll(s, r[0], r[1])
	}
	if err := os.WriteFile(filepath.Join(dir, "keygate.conf"), []byte(s), 0o644); err != nil {
		return err
	}
	conf := filepath.Join(dir, "nginx.conf")
	if err := os.WriteFile(conf, []byte(fmt.Sprintf(`# written by bench: nginx alone and nginx with keygate forward auth
daemon off;
master_process off;
worker_processes 1;
pid %[1]s/nginx.pid;
error_log %[1]s/error.log warn;
events { worker_connections 4096; }
http {
    access_log off;
    client_body_temp_path %[1]s/client_body;
    proxy_temp_path %[1]s/proxy;
    fastcgi_temp_path %[1]s/fastcgi;
    uwsgi_temp_path %[1]s/uwsgi;
    scgi_temp_path %[1]s/scgi;
    upstream echo_alone {
        server %[2]s;
        keepalive 32;
    }
    server {
        listen %[3]s;
        location / {
            proxy_set_header Host $host;
            proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
            proxy_set_header X-Forwarded-Proto $scheme;
            proxy_set_header Connection "";
            proxy_http_version 1.1;
            proxy_pass http://echo_alone;
        }
    }
    include %[1]s/keygate.conf;
}
`, dir, e.echo, alone)), 0o644); err != nil {
		return err
	}
	np, err := startProc("nginx", filepath.Join(dir, "output.log"), bin, "-p", dir, "-c", conf, "-e", filepath.Join(dir, "error.log"))
	if err != nil {
		return err
	}
	e.ps.add(np)
	for _, addr := range []string{alone, withAuth} {
		if err := waitTCP(ctx, np, addr, 10*time.Second); err != nil {
			return err
		}
	}
	if err := checkForwardAuth(ctx, "http://"+withAuth+"/", e.tokens[0]); err != nil {
		return err
	}

	fmt.Printf("forward auth: nginx alone vs nginx + keygate (auth_request, examples/forward-auth/nginx.conf), one nginx process\n\n")
	return e.compare(ctx, []target{{name: "nginx", url: "http://" + alone + "/"}, {name: "nginx+keygate", url: "http://" + withAuth + "/"}}, nil)
}

// checkForwardAuth asks once with a valid key (want 200 and the key id
// forwarded) and once with none (want 401) before measuring anything.
func checkForwardAuth(ctx context.Context, url, token string) error {
	for _, tok := range []string{token, ""} {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if err != nil {
			return err
		}
		if tok != "" {
			req.Header.Set("Authorization", "Bearer "+tok)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return fmt.Errorf("check forward auth: %w", err)
		}
		resp.Body.Close()
		switch {
		case tok != "" && (resp.StatusCode != http.StatusOK || resp.Header.Get("X-Echo") == ""):
			return fmt.Errorf("check forward auth: a seeded key got status %d, X-Echo %q", resp.StatusCode, resp.Header.Get("X-Echo"))
		case tok == "" && resp.StatusCode != http.StatusUnauthorized:
			return fmt.Errorf("check forward auth: no key got status %d, want 401", resp.StatusCode)
		}
	}
	return nil
}

func findNginx() string {
	if p, err := exec.LookPath("nginx"); err == nil {
		return p
	}
	if _, err := os.Stat("/usr/sbin/nginx"); err == nil {
		return "/usr/sbin/nginx"
	}
	return ""
}
