package main

import (
	"flag"
	"strings"
	"testing"
)

// Help is asked for in every usual way; it exits 0 and lists every command
// and every flag.
func TestHelp(t *testing.T) {
	t.Parallel()
	_, full, _ := ecsd(t, nil, "help")
	for _, c := range commands() {
		if !strings.Contains(full, synopsis(c)) {
			t.Errorf("ecsd help does not list %q", synopsis(c))
		}
		for _, name := range flagNames(c) {
			if !strings.Contains(full, "--"+name+" ") && !strings.Contains(full, "--"+name+"\n") {
				t.Errorf("ecsd help does not list --%s of %s", name, c.name)
			}
		}
	}
	for _, args := range [][]string{{"help"}, {"-h"}, {"--help"}, {"-help"}} {
		code, out, errOut := ecsd(t, nil, args...)
		if code != 0 || out != full || errOut != "" {
			t.Errorf("ecsd %v: exit %d, stderr %q, same as ecsd help: %v", args, code, errOut, out == full)
		}
	}
	for _, c := range commands() {
		for _, args := range [][]string{
			append(strings.Fields(c.name), "--help"),
			append(strings.Fields(c.name), "-h"),
			append([]string{"help"}, strings.Fields(c.name)...),
		} {
			code, out, errOut := ecsd(t, nil, args...)
			if code != 0 || errOut != "" {
				t.Errorf("ecsd %v: exit %d, stderr %q", args, code, errOut)
			}
			for _, name := range flagNames(c) {
				if !strings.Contains(out, "--"+name) {
					t.Errorf("ecsd %v does not list --%s", args, name)
				}
			}
		}
	}
	// Flags before --help still get help, not a start.
	if code, out, _ := ecsd(t, nil, "--driver", "sim", "--help"); code != 0 || !strings.Contains(out, "--tls-cert") {
		t.Errorf("ecsd --driver sim --help: exit %d, %q", code, out)
	}
}

func flagNames(c command) []string {
	fs := newFlagSet(c.name, lookupIn(nil))
	c.flags(fs)
	var names []string
	fs.fs.VisitAll(func(f *flag.Flag) { names = append(names, f.Name) })
	return names
}

func TestUsageErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		args []string
		want string
	}{
		{[]string{"frobnicate"}, `no command "frobnicate"`},
		{[]string{"image"}, "ecsd image import"},
		{[]string{"credentials", "remove"}, "ecsd credentials add"},
		{[]string{"help", "nothing"}, `no command "nothing"`},
		{[]string{"--no-such-flag"}, "flag provided but not defined: -no-such-flag"},
		{[]string{"serve", "extra"}, `unexpected argument "extra"`},
		{[]string{"image", "import", "--data-dir", "x"}, "no image FILE given"},
		{[]string{"image", "import", "--data-dir", "x", "f"}, "--name is required"},
		{[]string{"image", "import", "--name", "n", "--initrd", "i", "f"}, "--initrd needs --kernel"},
		{[]string{"image", "import", "--name", "n", "f", "--kernel", "k"}, "flags go before FILE"},
	}
	for _, tt := range tests {
		code, out, errOut := ecsd(t, nil, tt.args...)
		if code != 2 || out != "" || !strings.Contains(errOut, tt.want) {
			t.Errorf("ecsd %v: exit %d, stdout %q, stderr %q; want exit 2 and %q", tt.args, code, out, errOut, tt.want)
		}
	}
}
