package main

import (
	"strings"
	"testing"
	"time"
)

func TestServeFlagsFromEnv(t *testing.T) {
	t.Parallel()
	env := map[string]string{"ECS_WORKERS": "8", "ECS_STEP_TIMEOUT": "90s", "ECS_INSECURE_HTTP": "true",
		"ECS_LISTEN": "0.0.0.0:9000", "ECS_DRIVER": "qemu"}
	c, err := parseServe(nil, lookupIn(env))
	if err != nil {
		t.Fatal(err)
	}
	if c.Workers != 8 || c.StepTimeout != 90*time.Second || !c.InsecureHTTP || c.Listen != "0.0.0.0:9000" || c.Driver != "qemu" {
		t.Errorf("config from env: %+v", c)
	}
	// A flag wins over its variable.
	c, err = parseServe([]string{"--workers", "3"}, lookupIn(env))
	if err != nil || c.Workers != 3 {
		t.Errorf("--workers 3 with ECS_WORKERS=8: %d, %v", c.Workers, err)
	}
}

// A bad value in a variable is refused with the variable's name, not
// silently replaced by the default.
func TestServeBadEnvRefused(t *testing.T) {
	t.Parallel()
	tests := []struct {
		env, value string
		args       []string // flags given too
		want       string   // in the error; "" for no error
	}{
		{"ECS_WORKERS", "abc", nil, `ECS_WORKERS="abc" is not an integer`},
		{"ECS_WORKERS", "0", nil, "ECS_WORKERS: must be at least 1"},
		{"ECS_STEP_TIMEOUT", "5", nil, `ECS_STEP_TIMEOUT="5" is not a duration`},
		{"ECS_JOB_RETENTION", "1 day", nil, `ECS_JOB_RETENTION="1 day" is not a duration`},
		{"ECS_SIM_LATENCY", "-1s", nil, "ECS_SIM_LATENCY: must not be negative"},
		{"ECS_INSECURE_HTTP", "maybe", nil, `ECS_INSECURE_HTTP="maybe" is not a boolean`},
		{"ECS_DRIVER", "kvm", nil, `ECS_DRIVER: must be sim or qemu, not "kvm"`},
		{"ECS_LOG_LEVEL", "loud", nil, "ECS_LOG_LEVEL: must be debug"},
		{"ECS_SQLITE_SYNCHRONOUS", "OFF", nil, "ECS_SQLITE_SYNCHRONOUS: must be NORMAL or FULL"},
		{"ECS_QEMU_ACCEL", "hvf", nil, "ECS_QEMU_ACCEL: must be tcg, kvm or auto"},
		{"ECS_SIM_FAULTS", "start=explode", nil, "ECS_SIM_FAULTS: "},
		{"ECS_LISTEN", "8080", nil, "ECS_LISTEN: "},
		// The flag given on the command line wins; its variable is not read.
		{"ECS_WORKERS", "abc", []string{"--workers", "2"}, ""},
		{"ECS_DRIVER", "kvm", []string{"--driver", "sim"}, ""},
		// The flag is named when it is the one at fault.
		{"ECS_DRIVER", "sim", []string{"--driver", "kvm"}, `--driver: must be sim or qemu, not "kvm"`},
	}
	for _, tt := range tests {
		_, err := parseServe(tt.args, lookupIn(map[string]string{tt.env: tt.value}))
		switch {
		case tt.want == "" && err != nil:
			t.Errorf("%s=%q %v: %v, want no error", tt.env, tt.value, tt.args, err)
		case tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)):
			t.Errorf("%s=%q %v: %v, want an error with %q", tt.env, tt.value, tt.args, err, tt.want)
		}
		if _, ok := err.(usageError); err != nil && !ok {
			t.Errorf("%s=%q: %T is not a usage error (exit 2)", tt.env, tt.value, err)
		}
	}
}

// Plain HTTP off the loopback needs --insecure-http; TLS needs both files.
func TestServeListenAndTLSChecks(t *testing.T) {
	t.Parallel()
	tests := []struct {
		args []string
		env  map[string]string
		want string // in the error; "" for no error
	}{
		{[]string{"--listen", "127.0.0.1:8080"}, nil, ""},
		{[]string{"--listen", "127.0.0.2:8080"}, nil, ""},
		{[]string{"--listen", "[::1]:8080"}, nil, ""},
		{[]string{"--listen", "localhost:8080"}, nil, ""},
		{[]string{"--listen", "0.0.0.0:8080"}, nil, "--insecure-http"},
		{[]string{"--listen", ":8080"}, nil, "--insecure-http"},
		{[]string{"--listen", "[::]:8080"}, nil, "--insecure-http"},
		{[]string{"--listen", "192.0.2.7:8080"}, nil, "--listen 192.0.2.7:8080 is reachable from other machines"},
		{[]string{"--listen", "ecs.example:8080"}, nil, "--tls-cert FILE --tls-key FILE"},
		{nil, map[string]string{"ECS_LISTEN": "0.0.0.0:8080"}, "ECS_LISTEN 0.0.0.0:8080 is reachable"},
		{[]string{"--listen", "0.0.0.0:8080", "--insecure-http"}, nil, ""},
		{[]string{"--listen", "0.0.0.0:8080"}, map[string]string{"ECS_INSECURE_HTTP": "1"}, ""},
		{[]string{"--listen", "0.0.0.0:8080", "--tls-cert", "c.pem", "--tls-key", "k.pem"}, nil, ""},
		{[]string{"--listen", "0.0.0.0:8080"}, map[string]string{"ECS_TLS_CERT": "c.pem", "ECS_TLS_KEY": "k.pem"}, ""},
		{[]string{"--tls-cert", "c.pem"}, nil, "--tls-cert and --tls-key go together"},
		{[]string{"--tls-key", "k.pem"}, nil, "--tls-cert and --tls-key go together"},
		{[]string{"--listen", "0.0.0.0:8080", "--tls-cert", "c.pem"}, nil, "--tls-cert and --tls-key go together"},
	}
	for _, tt := range tests {
		c, err := parseServe(tt.args, lookupIn(tt.env))
		switch {
		case tt.want == "" && err != nil:
			t.Errorf("%v %v: %v, want no error", tt.args, tt.env, err)
		case tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)):
			t.Errorf("%v %v: %v, want an error with %q", tt.args, tt.env, err, tt.want)
		}
		if err == nil && c.TLS() != (c.TLSCert != "") {
			t.Errorf("%v: TLS() = %v with cert %q", tt.args, c.TLS(), c.TLSCert)
		}
	}
}

func lookupIn(env map[string]string) func(string) (string, bool) {
	return func(k string) (string, bool) {
		v, ok := env[k]
		return v, ok
	}
}
