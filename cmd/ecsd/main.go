// Command ecsd is the ECS service daemon: the Huawei Cloud ECS API over a
// simulated or QEMU compute backend, with state in an embedded database,
// and the operator actions on its data dir.
//
//	ecsd [serve] [flags]                   serve the API (see ecsd help)
//	ecsd image import [flags] FILE         import an image (qemu data dir)
//	ecsd credentials add [flags]           make a credential for a new project
//	ecsd help [COMMAND]                    every command and flag
//
// main is flags and environment -> Config -> wire -> run; the rules live in
// internal/cloud, the data dir's layout in internal/datadir.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"
)

// runFunc runs a command with the arguments left after its flags.
type runFunc func(ctx context.Context, args []string, out, errOut io.Writer) error

// command is a subcommand of ecsd.
type command struct {
	name    string // "image import"
	args    string // what follows the flags, for the synopsis
	summary string
	// flags declares the command's flags on fs and returns the command
	// bound to them.
	flags func(fs *flagSet) runFunc
}

func commands() []command {
	return []command{
		{"serve", "", "serve the API (the default command)", serveCommand},
		{"image import", "FILE", "copy an image file into a qemu data dir and record it (safe while ecsd runs)", imageImportCommand},
		{"credentials add", "", "make a new project with its own access key, printed as JSON", credentialsAddCommand},
		{"hosts", "", "list the cloud's hosts: up or down, capacity, allocated, servers", hostsCommand},
	}
}

func main() {
	// Everything ecsd writes (database, keys, disks, credentials) is
	// private to it.
	syscall.Umask(0o077)
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.LookupEnv, os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// run runs the command line args and returns the exit status: 0, 1 for a
// failure, 2 for a usage error.
func run(ctx context.Context, args []string, lookup func(string) (string, bool), out, errOut io.Writer) int {
	cmd, rest, err := findCommand(args)
	if errors.Is(err, flag.ErrHelp) {
		if len(rest) == 1 {
			if c, ok := lookupCommand(rest[0]); ok {
				commandHelp(out, c, lookup)
				return 0
			}
			fmt.Fprintf(errOut, "ecsd: no command %q; see ecsd help\n", rest[0])
			return 2
		}
		help(out, lookup)
		return 0
	}
	if err != nil {
		fmt.Fprintf(errOut, "ecsd: %v; see ecsd help\n", err)
		return 2
	}
	fs := newFlagSet(cmd.name, lookup)
	runCmd := cmd.flags(fs)
	if err := fs.parse(rest); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			commandHelp(out, cmd, lookup)
			return 0
		}
		fmt.Fprintf(errOut, "ecsd %s: %v\nsee ecsd %s --help\n", cmd.name, err, cmd.name)
		return 2
	}
	if err := runCmd(ctx, fs.args(), out, errOut); err != nil {
		var ue usageError
		if errors.As(err, &ue) {
			fmt.Fprintf(errOut, "ecsd %s: %v\nsee ecsd %s --help\n", cmd.name, err, cmd.name)
			return 2
		}
		fmt.Fprintf(errOut, "ecsd %s: %v\n", cmd.name, err)
		return 1
	}
	return 0
}

// findCommand picks the command args name. Flags alone mean serve. For
// help (ecsd help [CMD], ecsd -h) it returns flag.ErrHelp and the command
// asked about, if any.
func findCommand(args []string) (command, []string, error) {
	if len(args) == 0 || strings.HasPrefix(args[0], "-") {
		if len(args) > 0 && isHelpFlag(args[0]) {
			return command{}, nil, flag.ErrHelp
		}
		c, _ := lookupCommand("serve")
		return c, args, nil
	}
	if args[0] == "help" {
		if len(args) > 1 {
			return command{}, []string{strings.Join(args[1:], " ")}, flag.ErrHelp
		}
		return command{}, nil, flag.ErrHelp
	}
	if c, ok := lookupCommand(args[0]); ok {
		return c, args[1:], nil
	}
	if len(args) > 1 {
		if c, ok := lookupCommand(args[0] + " " + args[1]); ok {
			return c, args[2:], nil
		}
	}
	var known []string
	for _, c := range commands() {
		if strings.HasPrefix(c.name, args[0]+" ") {
			known = append(known, "ecsd "+c.name)
		}
	}
	if len(known) > 0 {
		return command{}, nil, usagef("%q needs a subcommand: %s", args[0], strings.Join(known, ", "))
	}
	return command{}, nil, usagef("no command %q", args[0])
}

func isHelpFlag(a string) bool { return a == "-h" || a == "-help" || a == "--help" }

func lookupCommand(name string) (command, bool) {
	for _, c := range commands() {
		if c.name == name {
			return c, true
		}
	}
	return command{}, false
}

func synopsis(c command) string {
	s := "ecsd " + c.name + " [flags]"
	if c.name == "serve" {
		s = "ecsd [serve] [flags]"
	}
	if c.args != "" {
		s += " " + c.args
	}
	return s
}

// help writes every command with its flags.
func help(w io.Writer, lookup func(string) (string, bool)) {
	fmt.Fprintln(w, "ecsd: the Huawei Cloud ECS API over simulated (sim) or QEMU (qemu) compute, and its operator commands.")
	fmt.Fprintln(w)
	fmt.Fprintln(w, "Commands:")
	for _, c := range commands() {
		fmt.Fprintf(w, "  %-40s %s\n", synopsis(c), c.summary)
	}
	fmt.Fprintf(w, "  %-40s %s\n", "ecsd help [COMMAND]", "this help, or one command's")
	for _, c := range commands() {
		fmt.Fprintln(w)
		commandHelp(w, c, lookup)
	}
}

// commandHelp writes one command's synopsis and flags.
func commandHelp(w io.Writer, c command, lookup func(string) (string, bool)) {
	fmt.Fprintf(w, "%s\n    %s\n", synopsis(c), c.summary)
	fs := newFlagSet(c.name, lookup)
	c.flags(fs)
	fmt.Fprintln(w, "Flags:")
	fs.printDefaults(w)
}
