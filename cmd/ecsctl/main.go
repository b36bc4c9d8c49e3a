// Command ecsctl is the command-line client of ecsd: it manages servers,
// key pairs and jobs through the Huawei ECS API, using package client.
//
// It promises: flags are parsed with the standard flag package (one FlagSet
// per subcommand, flags may follow the arguments); results go to stdout as
// tables (text/tabwriter) or, with -o json, as the API's JSON objects;
// progress and errors go to stderr; errors read "ecsctl: <code>: <message>
// (request id ...)". Exit status: 0 on success, 1 on an error or a failed
// job, 2 on a usage error. A password is read only from stdin
// (--password-stdin), never from argv, and is never printed.
//
// Run "ecsctl help" for the commands.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], env{
		stdin:  os.Stdin,
		stdout: os.Stdout,
		stderr: os.Stderr,
		getenv: os.Getenv,
	})
	stop()
	os.Exit(code)
}
