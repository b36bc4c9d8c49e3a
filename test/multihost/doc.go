// Package multihost is the proof that several ecsd nodes make one cloud:
// it builds ../../cmd/ecsd, starts a throwaway PostgreSQL through
// scripts/postgres.sh (package pgtest), runs three nodes on it (driver
// sim, distinct --host, ports and data dirs, one --secret-key-file), and
// then kills, restarts and cuts them off while servers are created and
// reinstalled through random nodes:
//
//   - TestFleet: 300 servers spread over the hosts, reinstalled through
//     random nodes, one node killed -9 mid-flight and restarted: every job
//     SUCCESS, no host over its capacity, every job run on its server's
//     host, and no job's driver calls made by two runs interleaved.
//   - TestOneWinnerAcrossNodes: concurrent reinstalls of one server through
//     every node give exactly one job.
//   - TestPostgresRestart: PostgreSQL stopped mid-run: the nodes answer
//     503 meanwhile, then recover; every accepted job finishes.
//   - TestResetPasswordFlagAcrossNodes: os-resetpwd-flag is answered by
//     the server's own host (forwarded there by the receiving node), and
//     False when that node is down.
//   - TestPartition: one node cut off from PostgreSQL (a TCP proxy in the
//     test, toxiproxy) for longer than its lease: it stops acting on its
//     jobs, which wait for it and finish once it is back, none twice.
//
// The proof that no job ran twice is the simulator's call journal
// (ecsd --sim-journal): every driver call, with the job and the lease
// token of the run that made it.
//
// It lives in its own Go module (the proxy is a test-only dependency) and
// is run by `make test-multihost` (CI: .ci/run):
//
//	cd test/multihost && go test -count=1 -timeout 6m ./...
//
// With ECS_TEST_POSTGRES set to a server's URL it uses that server
// instead of starting one. The package has no non-test code.
package multihost
