package datadir

import (
	"errors"
	"io/fs"

	"github.com/ecsproject/ecsd/client"
)

// ReadCredentials reads credentials.json (format: client.CredentialsFile);
// ok is false when it does not exist.
func (d Dir) ReadCredentials() (c client.CredentialsFile, ok bool, err error) {
	c, err = client.ReadCredentialsFile(d.CredentialsPath())
	if errors.Is(err, fs.ErrNotExist) {
		return c, false, nil
	}
	if err != nil {
		return c, false, err
	}
	return c, true, nil
}

// WriteCredentials replaces credentials.json (mode 0600) with c.
func (d Dir) WriteCredentials(c client.CredentialsFile) error {
	return client.WriteCredentialsFile(d.CredentialsPath(), c)
}

// SetCredentialsEndpoint rewrites the endpoint of credentials.json when it
// differs (a restart on another address, or with TLS turned on or off),
// and the CA file that clients should trust for it (caCert: the served
// certificate when TLS is on, else ""). A missing or unreadable file is
// left alone: the operator moved it away.
func (d Dir) SetCredentialsEndpoint(endpoint, caCert string) error {
	c, ok, err := d.ReadCredentials()
	if !ok || err != nil || (c.Endpoint == endpoint && c.CACert == caCert) {
		return nil
	}
	c.Endpoint, c.CACert = endpoint, caCert
	return d.WriteCredentials(c)
}
