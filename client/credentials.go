package client

import (
	"encoding/json"
	"fmt"
	"os"

	"github.com/ecsproject/ecsd/internal/atomicfile"
)

// CredentialsFile is the one definition of credentials.json: the file ecsd
// writes into its data dir on first start (and `ecsd credentials add`
// prints), and the file ecsctl and LoadConfig read.
type CredentialsFile struct {
	AccessKey string `json:"access_key"`
	SecretKey string `json:"secret_key"`
	ProjectID string `json:"project_id"`
	UserID    string `json:"user_id"`
	Endpoint  string `json:"endpoint"` // https:// when ecsd serves TLS
	// CACert, when set, is a PEM file of the CA certificates that sign the
	// endpoint's certificate (a self-signed one, say). A relative path is
	// relative to the directory of the credentials file.
	CACert string `json:"ca_cert,omitempty"`
}

// ReadCredentialsFile reads and decodes the credentials file at path. A
// missing file gives an error that errors.Is(err, fs.ErrNotExist) reports.
// Unknown fields are ignored, so older clients read newer files.
func ReadCredentialsFile(path string) (CredentialsFile, error) {
	var cf CredentialsFile
	raw, err := os.ReadFile(path)
	if err != nil {
		return cf, fmt.Errorf("credentials file: %w", err)
	}
	if err := json.Unmarshal(raw, &cf); err != nil {
		return CredentialsFile{}, fmt.Errorf("credentials file %s: %w", path, err)
	}
	return cf, nil
}

// WriteCredentialsFile writes cf to path as indented JSON with mode 0600,
// atomically: readers see the old file or the new one, never a part, and a
// failed write leaves the old file as it was. The directory must exist.
func WriteCredentialsFile(path string, cf CredentialsFile) error {
	b, err := json.MarshalIndent(cf, "", "  ")
	if err != nil {
		return err
	}
	b = append(b, '\n')
	if err := atomicfile.Write(path, b, 0o600); err != nil {
		return fmt.Errorf("credentials file: %w", err)
	}
	return nil
}
