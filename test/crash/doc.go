// Package crash is the kill -9 suite of ecsd: it builds ../../cmd/ecsd,
// runs it on loopback with the simulator driver, submits reinstalls and
// power batches through the Go client (package client), SIGKILLs the daemon
// while those jobs are mid-flight, restarts it on the same data dir and
// port, and checks what the durable-jobs contract promises after the last
// restart:
//
//   - every job it was given a job_id for finishes, and with no fault
//     injected it finishes SUCCESS (a crash is resumed, never failed);
//   - every server is idle (task_state null) in the power state the test
//     asked for, with exactly one system disk at /dev/vda;
//   - the simulator's files agree: the disk file exists, is attached to
//     that server, was made from the server's image and holds exactly the
//     credentials of the server's last reinstall (a SHA-512 crypt hash that
//     verifies, or the key pair's public key); the server file names that
//     disk and has booted exactly as often as the test started it;
//   - no disk file is left that is not some server's system disk.
//
// Two smaller tests kill ecsd while a step hangs (--sim-faults or --faults ...=hang):
// restarted without the fault the job resumes and succeeds; restarted with
// the resumed step failing once, the job ends FAIL with a reason, the
// server keeps its old system disk, and a new reinstall succeeds.
//
// It runs in the main module's `go test ./...` (about 20 s on a quiet 2-core machine, most of it building ecsd). The random
// schedule is logged as a seed; replay one with
//
//	go test ./test/crash -run TestKill -crash.seed=N -v
//
// The package has no non-test code; this file only documents it.
package crash
