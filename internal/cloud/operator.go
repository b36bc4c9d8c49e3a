package cloud

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"unicode"

	"github.com/ecsproject/ecsd/internal/ecs"
	"github.com/ecsproject/ecsd/internal/store"
)

// Operator actions: run by the ecsd command on a node (ecsd credentials
// add, ecsd image import, the first start), never reached from the tenant
// API. Their errors are for an operator and may name files and causes.

// firstCredentialLock serialises the first starts of nodes on one store.
const firstCredentialLock = "first-credential"

// FirstCredential makes the first project ("default") with its access key
// when the store holds no credential yet. made is false, and c empty, when
// one exists. Of nodes starting at once on an empty store, exactly one
// makes it: the check and the insert run under a store lock
// (store.Tx.Lock) that their Writes take one after another.
func (s *Service) FirstCredential(ctx context.Context) (c ecs.Credential, made bool, err error) {
	n, err := s.store.CredentialCount(ctx)
	if err != nil {
		return c, false, fmt.Errorf("count credentials: %w", err)
	}
	if n > 0 {
		return c, false, nil // the common case, without the lock
	}
	err = s.store.Write(ctx, func(tx store.Tx) error {
		made = false
		if err := tx.Lock(ctx, firstCredentialLock); err != nil {
			return err
		}
		// Under the lock, a first credential made by another node has
		// committed, and this statement (READ COMMITTED) sees it.
		n, err := tx.CredentialCount(ctx)
		if err != nil || n > 0 {
			return err
		}
		var sealed store.SealedCredential
		c, sealed = s.makeCredential()
		if err := insertCredential(ctx, tx, c, sealed, "default"); err != nil {
			return err
		}
		made = true
		return nil
	})
	if err != nil {
		return ecs.Credential{}, false, fmt.Errorf("create the first credential: %w", err)
	}
	if !made {
		c = ecs.Credential{}
	}
	return c, made, nil
}

// ImportImageInput is an image an operator imports.
type ImportImageInput struct {
	Name string
	// OSType is Linux or Windows (any case); "" keeps what the inspection
	// found. It names the OS of an image the inspection could not read,
	// and must agree with one it could.
	OSType string
	// Import copies the image's files into the driver's image store under
	// id and inspects them.
	Import func(ctx context.Context, id string) (ecs.Image, error)
	// Discard, when set, removes what Import stored, when the image cannot
	// be recorded after all.
	Discard func(img ecs.Image)
	// CloudInit, when set, overrides what the inspection found about
	// cloud-init in the image (__support_cloudinit, and with it the v2
	// reinstall and change of OS, user data and the online password
	// reset). Not with ID: the catalog entry is kept as it is.
	CloudInit *bool
	// ID, when set, names an image of the catalog that another host
	// imported: the file imported here must be that image (same
	// checksum), and this host is recorded as one that has it. The catalog
	// entry is kept as it is.
	ID string
}

// maxImageName is the longest image name (Huawei IMS allows 1-128
// characters).
const maxImageName = 128

// ImportImage checks in, gives the image a new id, runs in.Import and
// records the result in the catalog, where it is public to every project.
// The catalog of a running daemon sees it at once (a new id is never
// cached).
func (s *Service) ImportImage(ctx context.Context, in ImportImageInput) (ecs.Image, error) {
	if in.ID != "" {
		if in.CloudInit != nil {
			return ecs.Image{}, errors.New("the cloud-init override applies to a new image, not to an import under an existing id")
		}
		return s.importOnHost(ctx, in)
	}
	if err := checkImageName(in.Name); err != nil {
		return ecs.Image{}, err
	}
	osType, err := normalOSType(in.OSType)
	if err != nil {
		return ecs.Image{}, err
	}
	img, err := in.Import(ctx, NewImageID())
	if err != nil {
		return ecs.Image{}, err
	}
	discard := func() {
		if in.Discard != nil {
			in.Discard(img)
		}
	}
	img.Name = in.Name
	if in.CloudInit != nil {
		img.CloudInit = *in.CloudInit
	}
	if err := applyOSType(&img, osType); err != nil {
		discard()
		return ecs.Image{}, err
	}
	if err := s.AddImage(ctx, img); err != nil {
		discard()
		return ecs.Image{}, fmt.Errorf("record the image: %w", err)
	}
	return img, nil
}

// importOnHost imports the file of catalog image in.ID on this node's
// host (an image's files are imported on every host that is to run its
// servers; placement picks only such hosts).
func (s *Service) importOnHost(ctx context.Context, in ImportImageInput) (ecs.Image, error) {
	if s.cfg.Host == "" {
		return ecs.Image{}, errors.New("this node has no host name")
	}
	if !ecs.ValidID(in.ID) {
		return ecs.Image{}, fmt.Errorf("image id %q is not an image id", safeID(in.ID))
	}
	cat, err := s.store.ImageGet(ctx, in.ID)
	if errors.Is(err, ecs.ErrNotFound) {
		return ecs.Image{}, fmt.Errorf("image %s is not in the catalog: import it without --id first", in.ID)
	}
	if err != nil {
		return ecs.Image{}, err
	}
	if cat.File == "" {
		return ecs.Image{}, fmt.Errorf("image %s is a simulator image without a file: every simulator host has it", in.ID)
	}
	img, err := in.Import(ctx, in.ID)
	if err != nil {
		return ecs.Image{}, err
	}
	if img.Checksum != cat.Checksum {
		if in.Discard != nil {
			in.Discard(img)
		}
		return ecs.Image{}, fmt.Errorf("the file is not image %s: its sha256 is %s, the catalog's %s", in.ID, img.Checksum, cat.Checksum)
	}
	if err := s.store.ImageHostAdd(ctx, store.ImageHost{ImageID: cat.ID, Host: s.cfg.Host, File: img.File, Kernel: img.Kernel,
		Initrd: img.Initrd}); err != nil {
		if in.Discard != nil {
			in.Discard(img)
		}
		return ecs.Image{}, fmt.Errorf("record the image on host %s: %w", s.cfg.Host, err)
	}
	return cat, nil
}

func checkImageName(name string) error {
	switch {
	case strings.TrimSpace(name) == "":
		return errors.New("the image needs a name")
	case len([]rune(name)) > maxImageName:
		return fmt.Errorf("the image name is longer than %d characters", maxImageName)
	case strings.IndexFunc(name, unicode.IsControl) >= 0:
		return errors.New("the image name has a control character")
	}
	return nil
}

func normalOSType(t string) (string, error) {
	switch strings.ToLower(t) {
	case "":
		return "", nil
	case "linux":
		return "Linux", nil
	case "windows":
		return "Windows", nil
	}
	return "", fmt.Errorf("OS type %q is not Linux or Windows", t)
}

// applyOSType sets the OS type an operator gave, when the inspection found
// none, and refuses one that contradicts it.
func applyOSType(img *ecs.Image, osType string) error {
	switch {
	case osType == "" || img.OSType == osType:
		return nil
	case img.OSType != "":
		found := img.OSType
		if img.OSVersion != "" {
			found += " (" + img.OSVersion + ")"
		}
		return fmt.Errorf("the image holds %s, not %s: drop the OS type or fix it", found, osType)
	}
	img.OSType = osType
	if img.Platform == "" {
		img.Platform = map[string]string{"Linux": "Other", "Windows": "Windows"}[osType]
	}
	return nil
}
