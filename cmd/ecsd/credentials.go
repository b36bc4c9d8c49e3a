package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strconv"
	"time"

	"github.com/ecsproject/ecsd/client"
	"github.com/ecsproject/ecsd/internal/cloud"
	"github.com/ecsproject/ecsd/internal/datadir"
	"github.com/ecsproject/ecsd/internal/secret"
	"github.com/ecsproject/ecsd/internal/store"
)

// credentialsAddCommand is `ecsd credentials add`: a new project with its
// own access key, printed as JSON (the credentials.json format). It works
// beside running daemons: on the SQLite database of a data dir, or on the
// PostgreSQL store of a cloud (--store), with the cloud's secret key.
func credentialsAddCommand(fs *flagSet) runFunc {
	var dataDir, storeURL, keyFile, name, endpoint string
	fs.stringVar(&dataDir, "data-dir", "ECS_DATA_DIR", "./data", "existing data `DIR` of the ecsd to add to (with --store: only for its secret.key and credentials.json)")
	storeFlag(fs, &storeURL)
	secretKeyFlag(fs, &keyFile)
	fs.stringVar(&name, "project-name", "", "", "`NAME` of the new project [default project-UNIXTIME]")
	fs.stringVar(&endpoint, "endpoint", "", "", "`URL` to print as the endpoint [default: the one in credentials.json]")
	return func(ctx context.Context, args []string, out, _ io.Writer) error {
		if len(args) > 0 {
			return usagef("unexpected argument %q", args[0])
		}
		if err := checkStoreURL(storeURL); err != nil {
			return usagef("%s: %v", fs.source("store"), err)
		}
		st, box, dir, err := openOperatorStore(ctx, storeURL, dataDir, keyFile)
		if err != nil {
			return err
		}
		defer st.Close()
		svc := cloud.New(cloud.Config{Store: st, Box: box, Logger: slog.New(slog.DiscardHandler)})
		if name == "" {
			name = "project-" + strconv.FormatInt(time.Now().Unix(), 10)
		}
		c, err := svc.NewCredential(ctx, name)
		if err != nil {
			return err
		}
		caCert := ""
		if endpoint == "" {
			if first, ok, err := dir.ReadCredentials(); ok && err == nil {
				endpoint, caCert = first.Endpoint, first.CACert
			}
		}
		b, _ := json.MarshalIndent(client.CredentialsFile{AccessKey: c.AccessKey, SecretKey: c.SecretKey,
			ProjectID: c.ProjectID, UserID: c.UserID, Endpoint: endpoint, CACert: caCert}, "", "  ")
		_, err = fmt.Fprintf(out, "%s\n", b)
		return err
	}
}

// openOperatorStore opens the store of an operator command and the secret
// box that seals its credentials: the SQLite database of the existing data
// dir, or the PostgreSQL store at storeURL. The key (keyFile, default
// <data-dir>/secret.key) must exist and open the credentials already
// stored: a credential sealed with another key would be refused by every
// node. dir is the data dir, which may not exist with --store.
func openOperatorStore(ctx context.Context, storeURL, dataDir, keyFile string) (store.Store, *secret.Box, datadir.Dir, error) {
	dir := datadir.Dir{Path: dataDir}
	if storeURL == "" {
		var err error
		if dir, err = datadir.Open(dataDir); err != nil {
			return nil, nil, dir, err
		}
		if err := dir.CheckStore(false); err != nil {
			return nil, nil, dir, err
		}
	}
	path := secretKeyPath(keyFile, dataDir)
	key, err := os.ReadFile(path)
	if err != nil {
		return nil, nil, dir, fmt.Errorf("secret key (--secret-key-file): %w", err)
	}
	box, err := secret.New(key)
	if err != nil {
		return nil, nil, dir, fmt.Errorf("secret key %s: %w", path, err)
	}
	st, err := openStore(ctx, storeURL, 0, dir, "FULL", slog.New(slog.DiscardHandler))
	if err != nil {
		return nil, nil, dir, err
	}
	if err := checkSecretKey(ctx, st, box, path); err != nil {
		st.Close()
		return nil, nil, dir, err
	}
	return st, box, dir, nil
}
