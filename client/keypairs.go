package client

import "context"

// Keypair is a Nova key pair (/v2.1/{project_id}/os-keypairs). PrivateKey
// is only ever set in the answer to CreateKeypair, once.
type Keypair struct {
	Name        string `json:"name"`
	Type        string `json:"type,omitempty"`
	PublicKey   string `json:"public_key"`
	PrivateKey  string `json:"private_key,omitempty"`
	Fingerprint string `json:"fingerprint"`
	UserID      string `json:"user_id,omitempty"`
	ID          int64  `json:"id,omitempty"`
	CreatedAt   string `json:"created_at,omitempty"`
	UpdatedAt   string `json:"updated_at,omitempty"`
	Deleted     bool   `json:"deleted,omitempty"`
}

type createKeypairRequest struct {
	Name      string `json:"name"`
	PublicKey string `json:"public_key,omitempty"`
}

type keypairBody[T any] struct {
	Keypair T `json:"keypair"`
}

type keypairList struct {
	Keypairs []keypairBody[Keypair] `json:"keypairs"`
}

func (c *Client) createKeypair(ctx context.Context, req createKeypairRequest) (Keypair, error) {
	var out keypairBody[Keypair]
	err := c.do(ctx, "POST", c.projectPath("v2.1", "os-keypairs"), nil, keypairBody[createKeypairRequest]{req}, &out)
	return out.Keypair, err
}

// CreateKeypair has the server generate a key pair and returns it with its
// private key, which the server does not keep.
func (c *Client) CreateKeypair(ctx context.Context, name string) (Keypair, error) {
	return c.createKeypair(ctx, createKeypairRequest{Name: name})
}

// ImportKeypair registers an existing public key (OpenSSH format).
func (c *Client) ImportKeypair(ctx context.Context, name, publicKey string) (Keypair, error) {
	return c.createKeypair(ctx, createKeypairRequest{Name: name, PublicKey: publicKey})
}

// ListKeypairs returns the project's key pairs.
func (c *Client) ListKeypairs(ctx context.Context) ([]Keypair, error) {
	var out keypairList
	if err := c.do(ctx, "GET", c.projectPath("v2.1", "os-keypairs"), nil, nil, &out); err != nil {
		return nil, err
	}
	kps := make([]Keypair, len(out.Keypairs))
	for i, k := range out.Keypairs {
		kps[i] = k.Keypair
	}
	return kps, nil
}

// ShowKeypair returns one key pair.
func (c *Client) ShowKeypair(ctx context.Context, name string) (Keypair, error) {
	var out keypairBody[Keypair]
	err := c.do(ctx, "GET", c.projectPath("v2.1", "os-keypairs", esc(name)), nil, nil, &out)
	return out.Keypair, err
}

// DeleteKeypair deletes a key pair.
func (c *Client) DeleteKeypair(ctx context.Context, name string) error {
	return c.do(ctx, "DELETE", c.projectPath("v2.1", "os-keypairs", esc(name)), nil, nil, nil)
}
