package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"time"
)

// The peers keygate is compared with besides the Go proxies: nginx and
// HAProxy doing a key check of their own (a map from token to key id, the id
// forwarded as X-Keygate-Key-Id, 401 for anything else), on two workers or
// threads like the two cores keygate gets. Their configs go into the temp
// dir and bind 127.0.0.1 only. A peer whose binary is missing is reported,
// not measured.

// peerKeyHeader is the header the peers forward the key id in, as keygate
// does; the echo upstream copies it back as X-Echo.
const peerKeyHeader = "X-Keygate-Key-Id"

// nginxConf renders an nginx config: a map from the Authorization header to
// a key id, 401 when there is none, keep-alive to the upstream.
func nginxConf(dir, listen, upstream string, tokens []string, asRoot bool) string {
	var b strings.Builder
	b.WriteString("# written by bench: nginx with a key map, 2 workers\n")
	if asRoot {
		b.WriteString("user root;\n") // the temp dir is private to the runner
	}
	fmt.Fprintf(&b, `worker_processes 2;
daemon off;
pid %[1]s/nginx.pid;
error_log %[1]s/nginx-error.log warn;
events { worker_connections 4096; }
http {
  access_log off;
  client_body_temp_path %[1]s/nginx-tmp/body;
  proxy_temp_path %[1]s/nginx-tmp/proxy;
  fastcgi_temp_path %[1]s/nginx-tmp/fastcgi;
  uwsgi_temp_path %[1]s/nginx-tmp/uwsgi;
  scgi_temp_path %[1]s/nginx-tmp/scgi;
  map_hash_max_size %[2]d;
  map_hash_bucket_size 128;
  map $http_authorization $kg_key_id {
    default "";
`, dir, max(1024, 2*len(tokens)))
	for i, tok := range tokens {
		fmt.Fprintf(&b, "    \"Bearer %s\" key-%d;\n", tok, i)
	}
	fmt.Fprintf(&b, `  }
  upstream echo {
    server %s;
    keepalive 128;
  }
  server {
    listen %s;
    location / {
      if ($kg_key_id = "") { return 401; }
      proxy_pass http://echo;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_set_header Authorization "";
      proxy_set_header %s $kg_key_id;
    }
  }
}
`, upstream, listen, peerKeyHeader)
	return b.String()
}

// haproxyConf renders an HAProxy config: the token's key id from a map file,
// 401 when there is none, a per-key request rate in a stick table with a
// limit that never triggers (the work of a rate limit), keep-alive to the
// upstream.
func haproxyConf(mapPath, listen, upstream string) string {
	return fmt.Sprintf(`# written by bench: HAProxy with a key map and a stick-table limit, 2 threads
global
  nbthread 2
  maxconn 8192
defaults
  mode http
  timeout connect 5s
  timeout client 60s
  timeout server 30s
  http-reuse always
frontend keys
  bind %s
  stick-table type string len 64 size 100k expire 1m store http_req_rate(1m)
  http-request set-var(txn.key_id) req.hdr(authorization),field(2,' '),map(%s)
  http-request deny deny_status 401 unless { var(txn.key_id) -m found }
  http-request track-sc0 var(txn.key_id)
  http-request deny deny_status 429 if { sc_http_req_rate(0) gt 1000000000 }
  http-request del-header authorization
  http-request set-header %s %%[var(txn.key_id)]
  default_backend echo
backend echo
  server echo %s
`, listen, mapPath, peerKeyHeader, upstream)
}

// haproxyMap is the map file: token, then key id.
func haproxyMap(tokens []string) string {
	var b strings.Builder
	for i, tok := range tokens {
		fmt.Fprintf(&b, "%s key-%d\n", tok, i)
	}
	return b.String()
}

// startPeer starts nginx or HAProxy on a fresh loopback port and checks it
// lets a known key through and refuses an unknown one. It returns "" and the
// reason when the binary is not installed.
func (e *env) startPeer(ctx context.Context, name string) (addr, missing string, err error) {
	bin, err := exec.LookPath(name)
	if err != nil {
		for _, p := range []string{"/usr/sbin/" + name, "/usr/local/sbin/" + name} {
			if _, serr := os.Stat(p); serr == nil {
				bin, err = p, nil
				break
			}
		}
	}
	if err != nil {
		return "", name + " is not installed (apt-get install -y " + map[string]string{"nginx": "nginx-light", "haproxy": "haproxy"}[name] + ")", nil
	}
	if addr, err = freeAddr(); err != nil {
		return "", "", err
	}
	var args []string
	switch name {
	case "nginx":
		if err := os.MkdirAll(e.dir+"/nginx-tmp", 0o700); err != nil {
			return "", "", err
		}
		path := e.dir + "/nginx.conf"
		if err := os.WriteFile(path, []byte(nginxConf(e.dir, addr, e.echo, e.tokens, os.Geteuid() == 0)), 0o600); err != nil {
			return "", "", err
		}
		args = []string{"-p", e.dir, "-e", e.dir + "/nginx-error.log", "-c", path}
	case "haproxy":
		mapPath, path := e.dir+"/haproxy-keys.map", e.dir+"/haproxy.cfg"
		if err := os.WriteFile(mapPath, []byte(haproxyMap(e.tokens)), 0o600); err != nil {
			return "", "", err
		}
		if err := os.WriteFile(path, []byte(haproxyConf(mapPath, addr, e.echo)), 0o600); err != nil {
			return "", "", err
		}
		args = []string{"-db", "-f", path}
	}
	p, err := startProc(name, e.dir+"/"+name+".log", bin, args...)
	if err != nil {
		return "", "", err
	}
	e.ps.add(p)
	if err := waitTCP(ctx, p, addr, 10*time.Second); err != nil {
		return "", "", err
	}
	if err := checkKeygate(ctx, "http://"+addr+"/", e.tokens[0]); err != nil {
		return "", "", fmt.Errorf("%s: %w\n%s", name, err, p.logTail(10))
	}
	return addr, "", nil
}
