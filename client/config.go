package client

import (
	"errors"
	"fmt"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"strings"
)

// DefaultCredentialsPath is where LoadConfig looks when neither its argument
// nor $ECS_CREDENTIALS names a file.
const DefaultCredentialsPath = "data/credentials.json"

// Config is what a Client needs: where the API is and whose keys sign the
// requests.
type Config struct {
	Endpoint  string // scheme://host[:port]; no scheme means https
	AccessKey string
	SecretKey string
	ProjectID string
	UserID    string // optional; reinstalling with a key pair needs it
	// CACertFile, when set, is a PEM file of the CA certificates an https
	// endpoint's certificate must chain to, in place of the system's roots
	// (like curl --cacert); it lets a client trust a self-signed ecsd.
	// Ignored when HTTPClient is set.
	CACertFile string
	// HTTPClient, when non-nil, replaces the default transport.
	HTTPClient *http.Client
}

// NoCredentialsError is LoadConfig's error when the credentials file does
// not exist (for the default file: and the environment does not supply
// everything either). errors.Is(err, fs.ErrNotExist) holds for it.
type NoCredentialsError struct {
	Path string // the file looked for
	Err  error  // the cause, wrapping fs.ErrNotExist
}

func (e *NoCredentialsError) Error() string { return "no credentials at " + e.Path }
func (e *NoCredentialsError) Unwrap() error { return e.Err }

// LoadConfig reads credentials from the credentials file (CredentialsFile)
// at path or, when path is "", at $ECS_CREDENTIALS or
// ./data/credentials.json. The variables ECS_ENDPOINT, ECS_ACCESS_KEY,
// ECS_SECRET_KEY, ECS_PROJECT_ID, ECS_USER_ID and ECS_CA_CERT, when set,
// override the file's fields. The file's ca_cert is relative to the file's
// directory, ECS_CA_CERT to the working directory.
//
// A file named by path or $ECS_CREDENTIALS must exist; the default file may
// be missing when the environment supplies everything. A missing file is a
// *NoCredentialsError. The result must have an endpoint, an access key, a
// secret key and a project id.
func LoadConfig(path string) (Config, error) {
	return LoadConfigEnv(path, os.Getenv)
}

// LoadConfigEnv is LoadConfig reading the environment through getenv.
func LoadConfigEnv(path string, getenv func(string) string) (Config, error) {
	explicit := true
	if path == "" {
		path = getenv("ECS_CREDENTIALS")
	}
	if path == "" {
		path, explicit = DefaultCredentialsPath, false
	}

	f, err := ReadCredentialsFile(path)
	var noFile error
	switch {
	case err == nil:
		if f.CACert != "" && !filepath.IsAbs(f.CACert) {
			f.CACert = filepath.Join(filepath.Dir(path), f.CACert)
		}
	case errors.Is(err, fs.ErrNotExist):
		noFile = &NoCredentialsError{Path: path, Err: err}
		if explicit {
			return Config{}, noFile
		}
		// The environment may supply everything.
	default:
		return Config{}, err
	}

	cfg := Config{
		Endpoint:   f.Endpoint,
		AccessKey:  f.AccessKey,
		SecretKey:  f.SecretKey,
		ProjectID:  f.ProjectID,
		UserID:     f.UserID,
		CACertFile: f.CACert,
	}
	for _, o := range []struct {
		env string
		dst *string
	}{
		{"ECS_ENDPOINT", &cfg.Endpoint},
		{"ECS_ACCESS_KEY", &cfg.AccessKey},
		{"ECS_SECRET_KEY", &cfg.SecretKey},
		{"ECS_PROJECT_ID", &cfg.ProjectID},
		{"ECS_USER_ID", &cfg.UserID},
		{"ECS_CA_CERT", &cfg.CACertFile},
	} {
		if v := getenv(o.env); v != "" {
			*o.dst = v
		}
	}

	var missing []string
	for _, r := range []struct{ name, v string }{
		{"endpoint (ECS_ENDPOINT)", cfg.Endpoint},
		{"access_key (ECS_ACCESS_KEY)", cfg.AccessKey},
		{"secret_key (ECS_SECRET_KEY)", cfg.SecretKey},
		{"project_id (ECS_PROJECT_ID)", cfg.ProjectID},
	} {
		if strings.TrimSpace(r.v) == "" {
			missing = append(missing, r.name)
		}
	}
	if len(missing) > 0 {
		if noFile != nil {
			return Config{}, noFile
		}
		return Config{}, fmt.Errorf("credentials (%s): missing %s", path, strings.Join(missing, ", "))
	}
	return cfg, nil
}
