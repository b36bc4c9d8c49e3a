package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"
)

// flagSet is a flag.FlagSet whose flags may take their default from an
// environment variable. A variable holding a bad value is refused with its
// name (unless the flag is given on the command line, which wins).
type flagSet struct {
	fs     *flag.FlagSet
	lookup func(string) (string, bool)
	env    map[string]string // flag name -> variable
	envErr map[string]error  // flag name -> why its variable is refused
	set    map[string]bool   // flags given on the command line
	dflt   map[string]string // flag name -> built-in default, for help
}

// usageError is a mistake in the command line or the environment: ecsd
// exits 2 on one, 1 on any other error.
type usageError struct{ err error }

func (e usageError) Error() string { return e.err.Error() }
func (e usageError) Unwrap() error { return e.err }

func usagef(format string, args ...any) error { return usageError{fmt.Errorf(format, args...)} }

func newFlagSet(name string, lookup func(string) (string, bool)) *flagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(io.Discard) // errors are returned, help is printed by the caller
	fs.Usage = func() {}
	return &flagSet{fs: fs, lookup: lookup, env: map[string]string{}, envErr: map[string]error{}, dflt: map[string]string{}}
}

// fromEnv records the flag's built-in default and variable, and returns
// the variable's value when it is set.
func (f *flagSet) fromEnv(name, env string, def any) (string, bool) {
	f.dflt[name] = fmt.Sprint(def)
	if d, ok := def.(time.Duration); ok {
		f.dflt[name] = shortDuration(d)
	}
	if env == "" {
		return "", false
	}
	f.env[name] = env
	return f.lookup(env)
}

func withEnv(usage, env string) string {
	if env == "" {
		return usage
	}
	return usage + " (env " + env + ")"
}

func (f *flagSet) stringVar(p *string, name, env, def, usage string) {
	if v, ok := f.fromEnv(name, env, def); ok {
		def = v
	}
	f.fs.StringVar(p, name, def, withEnv(usage, env))
}

func (f *flagSet) durationVar(p *time.Duration, name, env string, def time.Duration, usage string) {
	if v, ok := f.fromEnv(name, env, def); ok {
		if d, err := time.ParseDuration(v); err == nil {
			def = d
		} else {
			f.envErr[name] = fmt.Errorf("%s=%q is not a duration (examples: 500ms, 30s, 10m, 24h)", env, v)
		}
	}
	f.fs.DurationVar(p, name, def, withEnv(usage, env))
}

func (f *flagSet) intVar(p *int, name, env string, def int, usage string) {
	if v, ok := f.fromEnv(name, env, def); ok {
		if n, err := strconv.Atoi(v); err == nil {
			def = n
		} else {
			f.envErr[name] = fmt.Errorf("%s=%q is not an integer", env, v)
		}
	}
	f.fs.IntVar(p, name, def, withEnv(usage, env))
}

func (f *flagSet) floatVar(p *float64, name, env string, def float64, usage string) {
	if v, ok := f.fromEnv(name, env, def); ok {
		if x, err := strconv.ParseFloat(v, 64); err == nil {
			def = x
		} else {
			f.envErr[name] = fmt.Errorf("%s=%q is not a number", env, v)
		}
	}
	f.fs.Float64Var(p, name, def, withEnv(usage, env))
}

func (f *flagSet) boolVar(p *bool, name, env string, def bool, usage string) {
	if v, ok := f.fromEnv(name, env, def); ok {
		if b, err := strconv.ParseBool(v); err == nil {
			def = b
		} else {
			f.envErr[name] = fmt.Errorf("%s=%q is not a boolean (1, true, 0 or false)", env, v)
		}
	}
	f.fs.BoolVar(p, name, def, withEnv(usage, env))
}

// parse parses args. It returns flag.ErrHelp for -h and --help, and a
// usageError for a bad flag or a bad variable.
func (f *flagSet) parse(args []string) error {
	if err := f.fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return usageError{err}
	}
	f.set = map[string]bool{}
	f.fs.Visit(func(fl *flag.Flag) { f.set[fl.Name] = true })
	var errs []error
	f.fs.VisitAll(func(fl *flag.Flag) {
		if err := f.envErr[fl.Name]; err != nil && !f.set[fl.Name] {
			errs = append(errs, err)
		}
	})
	if len(errs) > 0 {
		return usageError{errors.Join(errs...)}
	}
	return nil
}

// args returns the arguments left after the flags.
func (f *flagSet) args() []string { return f.fs.Args() }

// source names where the value of flag name came from, for messages: the
// flag, or its variable when the flag was not given.
func (f *flagSet) source(name string) string {
	if env, ok := f.env[name]; ok && !f.set[name] {
		if _, isSet := f.lookup(env); isSet {
			return env
		}
	}
	return "--" + name
}

// printDefaults writes the flags, one per paragraph, as `--name TYPE`.
func (f *flagSet) printDefaults(w io.Writer) {
	f.fs.VisitAll(func(fl *flag.Flag) {
		kind, usage := flag.UnquoteUsage(fl)
		line := "  --" + fl.Name
		if kind != "" {
			line += " " + strings.ToUpper(kind)
		}
		fmt.Fprintln(w, line)
		fmt.Fprintf(w, "      %s", usage)
		if d := f.dflt[fl.Name]; d != "" && d != "false" && d != "0" && d != "0s" {
			fmt.Fprintf(w, " [default %s]", d)
		}
		fmt.Fprintln(w)
	})
}

// shortDuration writes d without zero units: 24h, not 24h0m0s.
func shortDuration(d time.Duration) string {
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
}
