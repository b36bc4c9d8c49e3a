package testd

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"time"
)

// Cert is a self-signed certificate (by default for 127.0.0.1, ::1 and
// localhost), on disk as PEM files, with the pool that trusts it.
type Cert struct {
	CertFile string // PEM certificate (public)
	KeyFile  string // PEM private key, mode 0600
	Pool     *x509.CertPool
	KeyPair  tls.Certificate // for an in-process server's tls.Config
}

// A CertOption changes the certificate NewCert makes.
type CertOption func(*x509.Certificate)

// ForHosts makes the certificate valid for hosts (IP addresses or DNS
// names) instead of 127.0.0.1, ::1 and localhost.
func ForHosts(hosts ...string) CertOption {
	return func(c *x509.Certificate) {
		c.IPAddresses, c.DNSNames = nil, nil
		for _, h := range hosts {
			if ip := net.ParseIP(h); ip != nil {
				c.IPAddresses = append(c.IPAddresses, ip)
			} else {
				c.DNSNames = append(c.DNSNames, h)
			}
		}
	}
}

// NewCert generates a self-signed certificate valid for a day and writes
// it to dir as tls-cert.pem and tls-key.pem. The certificate is its own
// CA: a client whose roots are Pool verifies the server fully (chain,
// validity, host name) without skipping any check. Each certificate has a
// subject of its own, so that one never passes for another's issuer.
func NewCert(dir string, opts ...CertOption) (*Cert, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		return nil, err
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: "ecsd test " + serial.Text(16)},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(24 * time.Hour),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
		IPAddresses:           []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback},
		DNSNames:              []string{"localhost"},
	}
	for _, o := range opts {
		o(tmpl)
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, err
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, err
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, err
	}
	c := &Cert{
		CertFile: filepath.Join(dir, "tls-cert.pem"),
		KeyFile:  filepath.Join(dir, "tls-key.pem"),
		Pool:     x509.NewCertPool(),
		KeyPair:  tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf},
	}
	c.Pool.AddCert(leaf)
	if err := os.WriteFile(c.CertFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644); err != nil {
		return nil, err
	}
	if err := os.WriteFile(c.KeyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}), 0o600); err != nil {
		return nil, err
	}
	return c, nil
}

// TLSConfig is a client configuration that trusts only c (nil c: the
// system roots).
func (c *Cert) TLSConfig() *tls.Config {
	if c == nil {
		return &tls.Config{MinVersion: tls.VersionTLS12}
	}
	return &tls.Config{RootCAs: c.Pool, MinVersion: tls.VersionTLS12}
}

// Transport is a fresh HTTP transport whose TLS trusts only c.
func (c *Cert) Transport() *http.Transport {
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.TLSClientConfig = c.TLSConfig()
	return t
}
