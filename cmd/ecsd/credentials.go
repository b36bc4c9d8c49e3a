package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"strconv"
	"time"

	"github.com/ecsproject/ecsd/client"
	"github.com/ecsproject/ecsd/internal/cloud"
	"github.com/ecsproject/ecsd/internal/datadir"
	"github.com/ecsproject/ecsd/internal/store/sqlite"
)

// credentialsAddCommand is `ecsd credentials add`: a new project with its
// own access key, printed as JSON (the credentials.json format).
func credentialsAddCommand(fs *flagSet) runFunc {
	var dataDir, name, endpoint string
	fs.stringVar(&dataDir, "data-dir", "ECS_DATA_DIR", "./data", "existing data `DIR` of the ecsd to add to")
	fs.stringVar(&name, "project-name", "", "", "`NAME` of the new project [default project-UNIXTIME]")
	fs.stringVar(&endpoint, "endpoint", "", "", "`URL` to print as the endpoint [default: the one in credentials.json]")
	return func(ctx context.Context, args []string, out, _ io.Writer) error {
		if len(args) > 0 {
			return usagef("unexpected argument %q", args[0])
		}
		dir, err := datadir.Open(dataDir)
		if err != nil {
			return err
		}
		box, err := dir.LoadBox()
		if err != nil {
			return err
		}
		st, err := sqlite.Open(ctx, sqlite.Config{Path: dir.DBPath(), Synchronous: "FULL"})
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
