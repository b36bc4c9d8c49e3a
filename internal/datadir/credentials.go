package datadir

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
)

// Credentials is the content of credentials.json: an access key with its
// project and user, and the endpoint to reach the daemon at.
type Credentials struct {
	AccessKey string `json:"access_key"`
	SecretKey string `json:"secret_key"`
	ProjectID string `json:"project_id"`
	UserID    string `json:"user_id"`
	Endpoint  string `json:"endpoint"`
}

// JSON returns c as indented JSON with a final newline.
func (c Credentials) JSON() []byte {
	b, _ := json.MarshalIndent(c, "", "  ") // plain strings cannot fail
	return append(b, '\n')
}

// ReadCredentials reads credentials.json; ok is false when it does not
// exist.
func (d Dir) ReadCredentials() (c Credentials, ok bool, err error) {
	b, err := os.ReadFile(d.CredentialsPath())
	if errors.Is(err, fs.ErrNotExist) {
		return c, false, nil
	}
	if err != nil {
		return c, false, err
	}
	if err := json.Unmarshal(b, &c); err != nil {
		return c, false, fmt.Errorf("%s: %w", d.CredentialsPath(), err)
	}
	return c, true, nil
}

// WriteCredentials replaces credentials.json (mode 0600) with c.
func (d Dir) WriteCredentials(c Credentials) error {
	return writeFile(d.CredentialsPath(), c.JSON(), 0o600)
}

// SetCredentialsEndpoint rewrites the endpoint of credentials.json when it
// differs (a restart on another address, or with TLS turned on or off). A
// missing or unreadable file is left alone: the operator moved it away.
func (d Dir) SetCredentialsEndpoint(endpoint string) error {
	c, ok, err := d.ReadCredentials()
	if !ok || err != nil || c.Endpoint == endpoint {
		return nil
	}
	c.Endpoint = endpoint
	return d.WriteCredentials(c)
}
