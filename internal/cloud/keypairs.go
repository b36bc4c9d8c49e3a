package cloud

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/rsa"
	"encoding/pem"
	"errors"
	"regexp"
	"strings"
	"time"

	"github.com/ecsproject/ecsd/internal/ecs"
	"github.com/ecsproject/ecsd/internal/store"
	"golang.org/x/crypto/ssh"
)

var keypairName = regexp.MustCompile(`^[A-Za-z0-9_\-.]{1,64}$`)

// KeypairInput is a key pair create or import request.
type KeypairInput struct {
	Name      string
	PublicKey string // "" to generate a key pair
	Type      string // "ssh" (default) or "x509"
	UserID    string // "" for the caller
}

// CreateKeypair creates (generates, or imports a public key as) a key pair.
// For a generated pair it returns the private key, which is not stored
// anywhere: this is its only copy.
func (s *Service) CreateKeypair(ctx context.Context, c Caller, in KeypairInput) (ecs.Keypair, string, error) {
	if !keypairName.MatchString(in.Name) {
		return ecs.Keypair{}, "", ecs.Errorf(ecs.CodeInvalidParam, "Invalid parameter: keypair.name must be 1-64 characters of letters, digits, '-', '_' and '.'.")
	}
	if in.Type == "" {
		in.Type = "ssh"
	}
	if in.Type != "ssh" && in.Type != "x509" {
		return ecs.Keypair{}, "", ecs.Errorf(ecs.CodeInvalidParam, "Invalid parameter: keypair.type must be ssh or x509.")
	}
	if in.UserID != "" && in.UserID != c.UserID {
		return ecs.Keypair{}, "", ecs.Errorf(ecs.CodeInvalidParam, "Invalid parameter: keypair.user_id must be the caller's user.")
	}
	kp := ecs.Keypair{ProjectID: c.ProjectID, UserID: c.UserID, Name: in.Name, Type: in.Type, Created: time.Now().UTC()}
	var private string
	if in.PublicKey == "" {
		pub, priv, err := ed25519.GenerateKey(rand.Reader)
		if err != nil {
			return kp, "", ecs.Wrap(ecs.CodeSystem, err, "Failed to generate the key pair.")
		}
		sshPub, _ := ssh.NewPublicKey(pub)
		block, err := ssh.MarshalPrivateKey(priv, in.Name)
		if err != nil {
			return kp, "", ecs.Wrap(ecs.CodeSystem, err, "Failed to generate the key pair.")
		}
		private = string(pem.EncodeToMemory(block))
		kp.PublicKey = strings.TrimSpace(string(ssh.MarshalAuthorizedKey(sshPub))) + " " + in.Name
		kp.Fingerprint = ssh.FingerprintLegacyMD5(sshPub)
	} else {
		pub, comment, _, rest, err := ssh.ParseAuthorizedKey([]byte(in.PublicKey))
		if err != nil || strings.TrimSpace(string(rest)) != "" {
			return kp, "", ecs.Errorf(ecs.CodeInvalidParam, "Invalid parameter: keypair.public_key is not a valid SSH public key.")
		}
		if rk, ok := pub.(ssh.CryptoPublicKey); ok {
			if r, ok := rk.CryptoPublicKey().(*rsa.PublicKey); ok && r.N.BitLen() < 2048 {
				return kp, "", ecs.Errorf(ecs.CodeInvalidParam, "Invalid parameter: keypair.public_key: RSA keys must have at least 2048 bits.")
			}
		}
		kp.PublicKey = strings.TrimSpace(string(ssh.MarshalAuthorizedKey(pub)))
		if comment != "" {
			kp.PublicKey += " " + comment
		}
		kp.Fingerprint = ssh.FingerprintLegacyMD5(pub)
	}
	err := s.store.Write(ctx, func(tx store.Tx) error { return tx.KeypairInsert(ctx, &kp) })
	if errors.Is(err, ecs.ErrConflict) {
		return kp, "", ecs.Errorf(ecs.CodeKeypairExists, "Key pair %s already exists.", in.Name)
	}
	if err != nil {
		return kp, "", ecs.Wrap(ecs.CodeSystem, err, "Failed to create the key pair.")
	}
	return kp, private, nil
}

// ListKeypairs lists the caller's key pairs.
func (s *Service) ListKeypairs(ctx context.Context, c Caller) ([]ecs.Keypair, error) {
	out, err := s.store.KeypairList(ctx, c.ProjectID, c.UserID)
	if err != nil {
		return nil, ecs.Wrap(ecs.CodeSystem, err, "Failed to list key pairs.")
	}
	return out, nil
}

// GetKeypair returns one of the caller's key pairs.
func (s *Service) GetKeypair(ctx context.Context, c Caller, name string) (ecs.Keypair, error) {
	kp, err := s.store.KeypairGet(ctx, c.ProjectID, c.UserID, name)
	if errors.Is(err, ecs.ErrNotFound) {
		return kp, ecs.Errorf(ecs.CodeKeypairMissing, "Key pair %s does not exist.", safeID(name))
	}
	if err != nil {
		return kp, ecs.Wrap(ecs.CodeSystem, err, "Failed to query the key pair.")
	}
	return kp, nil
}

// DeleteKeypair deletes one of the caller's key pairs.
func (s *Service) DeleteKeypair(ctx context.Context, c Caller, name string) error {
	err := s.store.Write(ctx, func(tx store.Tx) error { return tx.KeypairDelete(ctx, c.ProjectID, c.UserID, name) })
	if errors.Is(err, ecs.ErrNotFound) {
		return ecs.Errorf(ecs.CodeKeypairMissing, "Key pair %s does not exist.", safeID(name))
	}
	if err != nil {
		return ecs.Wrap(ecs.CodeSystem, err, "Failed to delete the key pair.")
	}
	return nil
}
