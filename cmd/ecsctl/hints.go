package main

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/http"
	"syscall"

	"github.com/ecsproject/ecsd/client"
)

// startHint says how a newcomer gets a running ecsd and its credentials.
const startHint = "start ecsd (make run-sim, or bin/ecsd --data-dir DIR)"

// trustHint says how to trust the certificate of a self-signed ecsd.
const trustHint = "if ecsd uses a self-signed certificate, trust it with --ca-cert FILE (or ECS_CA_CERT, or ca_cert in the credentials file)"

// explain turns an error a newcomer would meet first (no credentials, no
// daemon, an untrusted certificate) into one that says what to do. Other
// errors are returned as they are.
func (a *app) explain(err error) error {
	endpoint := a.cfg.Endpoint
	var (
		noCreds  *client.NoCredentialsError
		unknown  x509.UnknownAuthorityError
		hostname x509.HostnameError
		invalid  x509.CertificateInvalidError
		notTLS   tls.RecordHeaderError
		dns      *net.DNSError
	)
	switch {
	case errors.As(err, &noCreds):
		return fmt.Errorf("no credentials at %s: %s, or pass --credentials FILE / set ECS_CREDENTIALS", noCreds.Path, startHint)
	case errors.Is(err, syscall.ECONNREFUSED):
		return fmt.Errorf("ecsd is not answering at %s (connection refused): %s, or point the credentials' endpoint (or ECS_ENDPOINT) at a running ecsd",
			endpoint, startHint)
	case errors.As(err, &unknown):
		return fmt.Errorf("the TLS certificate of %s is not trusted (%v): %s", endpoint, unknown, trustHint)
	case errors.As(err, &hostname):
		return fmt.Errorf("the TLS certificate of %s is not valid for this host (%v): use a host name the certificate names in the endpoint", endpoint, hostname)
	case errors.As(err, &invalid):
		return fmt.Errorf("the TLS certificate of %s is not valid (%v)", endpoint, invalid)
	case errors.Is(err, http.ErrSchemeMismatch), errors.As(err, &notTLS):
		return fmt.Errorf("%s does not answer in TLS: if ecsd serves plain HTTP, use http:// in the endpoint", endpoint)
	case errors.As(err, &dns):
		return fmt.Errorf("cannot find the host of %s (%v): check the endpoint in the credentials (or ECS_ENDPOINT)", endpoint, dns)
	}
	return err
}
