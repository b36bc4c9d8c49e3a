package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/ecsproject/ecsd/client"
)

// env is the outside world of one run.
type env struct {
	stdin          io.Reader
	stdout, stderr io.Writer
	getenv         func(string) string
}

// app holds the state of one run: the global flags and the I/O streams.
type app struct {
	env
	credentials string
	caCert      string // --ca-cert: overrides ECS_CA_CERT and the file's ca_cert
	output      string
	// cfg is the configuration loaded by client(), for explaining errors.
	cfg client.Config
	// pollInterval is how often --wait polls the job and the servers.
	pollInterval time.Duration
}

// usageError is a mistake on the command line (exit status 2).
type usageError struct{ msg string }

func (e *usageError) Error() string { return e.msg }

func usagef(format string, args ...any) error {
	return &usageError{msg: fmt.Sprintf(format, args...)}
}

// exitError carries an exit status for an error already reported.
type exitError struct{ code int }

func (e *exitError) Error() string { return fmt.Sprintf("exit status %d", e.code) }

// run executes one ecsctl command line and returns the exit status.
func run(ctx context.Context, args []string, e env) int {
	return newApp(e).run(ctx, args)
}

func newApp(e env) *app {
	return &app{env: e, output: "table", pollInterval: 200 * time.Millisecond}
}

func (a *app) run(ctx context.Context, args []string) int {
	err := a.dispatch(ctx, args)
	var ue *usageError
	var xe *exitError
	switch {
	case err == nil:
		return 0
	case errors.Is(err, flag.ErrHelp):
		return 0
	case errors.As(err, &xe):
		return xe.code
	case errors.As(err, &ue):
		fmt.Fprintf(a.stderr, "ecsctl: %s\nRun 'ecsctl help' for usage.\n", ue.msg)
		return 2
	}
	fmt.Fprintf(a.stderr, "ecsctl: %v\n", a.explain(err))
	return 1
}

// command is one leaf command: its usage line and what it does with its
// arguments.
type command struct {
	usage string
	run   func(a *app, ctx context.Context, args []string) error
}

// commands maps "group verb" (or a lone word) to its command.
var commands map[string]command

func init() {
	commands = map[string]command{
		"server create":         {"server create --name N --image ID --flavor ID [--keypair K | --password-stdin] [--count N] [--wait]", (*app).serverCreate},
		"server list":           {"server list [--name N] [--status S] [--limit N] [--offset PAGE]", (*app).serverList},
		"server show":           {"server show ID", (*app).serverShow},
		"server start":          {"server start ID... [--wait]", (*app).serverStart},
		"server stop":           {"server stop ID... [--hard] [--wait]", (*app).serverStop},
		"server reboot":         {"server reboot ID... [--hard] [--wait]", (*app).serverReboot},
		"server delete":         {"server delete ID... [--wait]", (*app).serverDelete},
		"server reinstall":      {"server reinstall SERVER (--password-stdin | --keypair NAME) [--user-data FILE] [--user-id ID] [--with-stop] [--wait]", (*app).serverReinstall},
		"server change-os":      {"server change-os SERVER --image ID (--password-stdin | --keypair NAME) [--user-data FILE] [--cloud-init] [--user-id ID] [--with-stop] [--wait]", (*app).serverChangeOS},
		"server reset-password": {"server reset-password SERVER --password-stdin", (*app).serverResetPassword},
		"keypair create":        {"keypair create NAME [--out FILE]", (*app).keypairCreate},
		"keypair import":        {"keypair import NAME --public-key-file FILE", (*app).keypairImport},
		"keypair list":          {"keypair list", (*app).keypairList},
		"keypair show":          {"keypair show NAME", (*app).keypairShow},
		"keypair delete":        {"keypair delete NAME", (*app).keypairDelete},
		"image list":            {"image list", (*app).imageList},
		"flavor list":           {"flavor list", (*app).flavorList},
		"job show":              {"job show ID [--wait]", (*app).jobShow},
		"image import":          {"image import (an operator action: ecsd image import)", (*app).imageImport},
		"volume create":         {"volume create --size GB [--name N] [--volume-type T]", (*app).volumeCreate},
		"volume list":           {"volume list", (*app).volumeList},
		"volume delete":         {"volume delete ID [--wait]", (*app).volumeDelete},
		"server attach":         {"server attach SERVER VOLUME [--device /dev/vdX] [--wait]", (*app).serverAttach},
		"server detach":         {"server detach SERVER VOLUME [--delete] [--wait]", (*app).serverDetach},
	}
}

func (a *app) dispatch(ctx context.Context, args []string) error {
	g := a.flags("ecsctl")
	g.Usage = func() { fmt.Fprint(a.stderr, usageText) }
	if err := g.Parse(args); err != nil {
		return a.flagErr(err)
	}
	args = g.Args()
	if len(args) == 0 {
		fmt.Fprint(a.stderr, usageText)
		return &exitError{code: 2}
	}
	if args[0] == "help" {
		fmt.Fprint(a.stdout, usageText)
		return nil
	}
	if len(args) < 2 {
		return usagef("%q needs a subcommand", args[0])
	}
	name := args[0] + " " + args[1]
	cmd, ok := commands[name]
	if !ok {
		if !knownGroup(args[0]) {
			return usagef("unknown command %q", args[0])
		}
		return usagef("unknown command %q", name)
	}
	return cmd.run(a, ctx, args[2:])
}

func knownGroup(g string) bool {
	for name := range commands {
		if strings.HasPrefix(name, g+" ") {
			return true
		}
	}
	return false
}

// flags returns a FlagSet named name that also accepts the global flags, so
// they may be given anywhere on the line.
func (a *app) flags(name string) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(a.stderr)
	fs.StringVar(&a.credentials, "credentials", a.credentials, "credentials `FILE` (default $ECS_CREDENTIALS or ./data/credentials.json)")
	fs.StringVar(&a.caCert, "ca-cert", a.caCert, "trust the CA certificates of the PEM `FILE` for an https endpoint (default $ECS_CA_CERT or the credentials' ca_cert)")
	fs.StringVar(&a.output, "o", a.output, "output `format`: table or json")
	if c, ok := commands[name]; ok {
		fs.Usage = func() {
			fmt.Fprintf(a.stderr, "usage: ecsctl %s\n", c.usage)
			fs.PrintDefaults()
		}
	}
	return fs
}

// parse parses args with fs, letting flags and positional arguments mix
// ("server stop ID --hard"); "--" ends the flags. It returns the positional
// arguments and checks the global flags.
func (a *app) parse(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, a.flagErr(err)
		}
		rest := fs.Args()
		if len(rest) == 0 {
			break
		}
		if n := len(args) - len(rest); n > 0 && args[n-1] == "--" {
			pos = append(pos, rest...)
			break
		}
		pos = append(pos, rest[0])
		args = rest[1:]
	}
	if a.output != "table" && a.output != "json" {
		return nil, usagef("-o must be table or json, not %q", a.output)
	}
	return pos, nil
}

// flagErr turns a flag package error (already printed) into an exit status.
func (a *app) flagErr(err error) error {
	if errors.Is(err, flag.ErrHelp) {
		return err
	}
	return &exitError{code: 2}
}

// exactly checks the number of positional arguments.
func exactly(n int, pos []string, what string) error {
	if len(pos) != n {
		return usagef("want %s, got %d argument(s)", what, len(pos))
	}
	return nil
}

// parseN parses args with fs, checks that there are n positional arguments
// (what names them in the usage error) and builds the API client.
func (a *app) parseN(fs *flag.FlagSet, args []string, n int, what string) ([]string, *client.Client, error) {
	pos, err := a.parse(fs, args)
	if err != nil {
		return nil, nil, err
	}
	if err := exactly(n, pos, what); err != nil {
		return nil, nil, err
	}
	c, err := a.client()
	if err != nil {
		return nil, nil, err
	}
	return pos, c, nil
}

// atLeastOne checks there is at least one positional argument.
func atLeastOne(pos []string, what string) error {
	if len(pos) == 0 {
		return usagef("want at least one %s", what)
	}
	return nil
}

// client loads the configuration and builds the API client.
func (a *app) client() (*client.Client, error) {
	cfg, err := client.LoadConfigEnv(a.credentials, a.getenv)
	if err != nil {
		return nil, err
	}
	if a.caCert != "" {
		cfg.CACertFile = a.caCert
	}
	a.cfg = cfg
	return client.New(cfg), nil
}
