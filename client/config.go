package client

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net/http"
	"os"
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
	// HTTPClient, when non-nil, replaces the default transport.
	HTTPClient *http.Client
}

// credentialsFile is the JSON credentials file.
type credentialsFile struct {
	AccessKey string `json:"access_key"`
	SecretKey string `json:"secret_key"`
	ProjectID string `json:"project_id"`
	UserID    string `json:"user_id"`
	Endpoint  string `json:"endpoint"`
}

// LoadConfig reads credentials from the JSON credentials file (fields
// access_key, secret_key, project_id, user_id, endpoint) at path or, when
// path is "", at $ECS_CREDENTIALS or ./data/credentials.json. The variables
// ECS_ENDPOINT, ECS_ACCESS_KEY, ECS_SECRET_KEY, ECS_PROJECT_ID and
// ECS_USER_ID, when set, override the file's fields.
//
// A file named by path or $ECS_CREDENTIALS must exist; the default file may
// be missing when the environment supplies everything. The result must have
// an endpoint, an access key, a secret key and a project id.
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

	var f credentialsFile
	raw, err := os.ReadFile(path)
	switch {
	case err == nil:
		if err := json.Unmarshal(raw, &f); err != nil {
			return Config{}, fmt.Errorf("credentials file %s: %w", path, err)
		}
	case errors.Is(err, fs.ErrNotExist) && !explicit:
		// The environment may supply everything.
	default:
		return Config{}, fmt.Errorf("credentials file: %w", err)
	}

	cfg := Config{
		Endpoint:  f.Endpoint,
		AccessKey: f.AccessKey,
		SecretKey: f.SecretKey,
		ProjectID: f.ProjectID,
		UserID:    f.UserID,
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
		return Config{}, fmt.Errorf("credentials (%s): missing %s", path, strings.Join(missing, ", "))
	}
	return cfg, nil
}
