package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestSystemdUnit checks examples/systemd/keygate.service with
// systemd-analyze verify (when it is installed) and that it keeps the
// hardening options the README promises.
func TestSystemdUnit(t *testing.T) {
	const unitPath = "examples/systemd/keygate.service"
	data, err := os.ReadFile(unitPath)
	if err != nil {
		t.Fatal(err)
	}
	unit := string(data)
	for _, opt := range []string{
		"ExecStart=/usr/local/bin/keygate serve --config /etc/keygate/keygate.yaml",
		"DynamicUser=yes", "StateDirectory=keygate", "NoNewPrivileges=yes", "CapabilityBoundingSet=\n",
		"ProtectSystem=strict", "ProtectHome=yes", "PrivateTmp=yes", "PrivateDevices=yes",
		"ProtectKernelTunables=yes", "ProtectKernelModules=yes", "ProtectControlGroups=yes",
		"RestrictAddressFamilies=AF_INET AF_INET6 AF_UNIX", "RestrictNamespaces=yes",
		"MemoryDenyWriteExecute=yes", "SystemCallFilter=@system-service", "LockPersonality=yes",
		"TimeoutStopSec=30s",
	} {
		if !strings.Contains(unit, opt) {
			t.Errorf("%s lacks %q", unitPath, strings.TrimSpace(opt))
		}
	}

	tool, err := exec.LookPath("systemd-analyze")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("systemd-analyze is not installed (CI installs package systemd)")
		}
		t.Skip("systemd-analyze is not installed; the unit was not verified")
	}
	// verify wants ExecStart to exist: point it at this test binary.
	self, err := filepath.Abs(os.Args[0])
	if err != nil {
		t.Fatal(err)
	}
	tmp := filepath.Join(t.TempDir(), "keygate.service")
	unit = strings.Replace(unit, "ExecStart=/usr/local/bin/keygate", "ExecStart="+self, 1)
	if err := os.WriteFile(tmp, []byte(unit), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(tool, "verify", tmp).CombinedOutput()
	// verify exits 0 on unknown keys and only prints them: any output fails.
	if err != nil || len(strings.TrimSpace(string(out))) > 0 {
		t.Errorf("systemd-analyze verify %s: %v\n%s", unitPath, err, out)
	}
}
