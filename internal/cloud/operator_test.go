package cloud_test

import (
	"context"
	"errors"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ecsproject/ecsd/internal/cloud"
	"github.com/ecsproject/ecsd/internal/ecs"
	"github.com/ecsproject/ecsd/internal/secret"
	"github.com/ecsproject/ecsd/internal/store/sqlite"
)

// operatorService is a Service as the operator commands make one: a
// store and no driver.
func operatorService(t *testing.T) *cloud.Service {
	t.Helper()
	dir := t.TempDir()
	st, err := sqlite.Open(context.Background(), sqlite.Config{Path: filepath.Join(dir, "db")})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	box, err := secret.LoadOrCreate(filepath.Join(dir, "key"))
	if err != nil {
		t.Fatal(err)
	}
	return cloud.New(cloud.Config{Store: st, Box: box})
}

func TestFirstCredential(t *testing.T) {
	t.Parallel()
	svc := operatorService(t)
	ctx := context.Background()
	c, made, err := svc.FirstCredential(ctx)
	if err != nil || !made || c.AccessKey == "" || c.SecretKey == "" {
		t.Fatalf("first call: %+v made=%v err=%v", c, made, err)
	}
	if sk, ok := svc.LookupSecret(ctx, c.AccessKey); !ok || sk != c.SecretKey {
		t.Errorf("the first credential is not usable")
	}
	if c2, made, err := svc.FirstCredential(ctx); err != nil || made || c2.AccessKey != "" {
		t.Errorf("second call: %+v made=%v err=%v, want nothing made", c2, made, err)
	}
}

func TestImportImageRules(t *testing.T) {
	t.Parallel()
	inspected := func(osType, version string) func(context.Context, string) (ecs.Image, error) {
		return func(_ context.Context, id string) (ecs.Image, error) {
			return ecs.Image{ID: id, Status: "active", DiskFormat: "raw", OSType: osType, OSVersion: version,
				File: "/images/" + id + ".raw"}, nil
		}
	}
	tests := []struct {
		name, imgName, osType string
		found, version        string // what inspection found
		wantErr               string
		wantOS, wantPlatform  string
	}{
		{"inspected", "Debian", "", "Linux", "Debian 12", "", "Linux", ""},
		{"agreeing OS type", "Debian", "linux", "Linux", "Debian 12", "", "Linux", ""},
		{"OS type fills in", "Win", "Windows", "", "", "", "Windows", "Windows"},
		{"Linux fills in", "Other", "LINUX", "", "", "", "Linux", "Other"},
		{"contradiction", "Debian", "Windows", "Linux", "Debian 12", "holds Linux (Debian 12), not Windows", "", ""},
		{"bad OS type", "x", "Plan9", "", "", `OS type "Plan9" is not Linux or Windows`, "", ""},
		{"no name", " ", "", "Linux", "", "needs a name", "", ""},
		{"long name", strings.Repeat("n", 129), "", "Linux", "", "longer than 128", "", ""},
		{"control character", "a\nb", "", "Linux", "", "control character", "", ""},
	}
	for _, tt := range tests {
		svc := operatorService(t)
		ctx := context.Background()
		imported, discarded := false, false
		imp := inspected(tt.found, tt.version)
		img, err := svc.ImportImage(ctx, cloud.ImportImageInput{Name: tt.imgName, OSType: tt.osType,
			Import: func(ctx context.Context, id string) (ecs.Image, error) {
				imported = true
				return imp(ctx, id)
			},
			Discard: func(ecs.Image) { discarded = true },
		})
		imgs, lerr := svc.ListImages(ctx)
		if lerr != nil {
			t.Fatal(lerr)
		}
		if tt.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("%s: %v, want %q", tt.name, err, tt.wantErr)
			}
			if len(imgs) != 0 || (imported && !discarded) {
				t.Errorf("%s: refused, yet %d images recorded (imported %v, discarded %v)", tt.name, len(imgs), imported, discarded)
			}
			continue
		}
		if err != nil {
			t.Errorf("%s: %v", tt.name, err)
			continue
		}
		if img.Name != tt.imgName || img.OSType != tt.wantOS || (tt.wantPlatform != "" && img.Platform != tt.wantPlatform) {
			t.Errorf("%s: %+v", tt.name, img)
		}
		if len(imgs) != 1 || imgs[0].ID != img.ID || discarded {
			t.Errorf("%s: catalog %+v, discarded %v", tt.name, imgs, discarded)
		}
	}
	// A failed Import records nothing.
	svc := operatorService(t)
	boom := errors.New("image file x does not exist")
	if _, err := svc.ImportImage(context.Background(), cloud.ImportImageInput{Name: "x",
		Import: func(context.Context, string) (ecs.Image, error) { return ecs.Image{}, boom }}); !errors.Is(err, boom) {
		t.Errorf("failed import: %v", err)
	}
}

// An image is imported on each host that is to run it: a second import
// with --id on another host records that host (and its file's path), after
// checking that the file is the same image.
func TestImportImageOnAnotherHost(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	ctx := context.Background()
	st, err := sqlite.Open(ctx, sqlite.Config{Path: filepath.Join(dir, "db")})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	onHost := func(host string) *cloud.Service { return cloud.New(cloud.Config{Store: st, Host: host}) }
	file := func(host, sum string) func(context.Context, string) (ecs.Image, error) {
		return func(_ context.Context, id string) (ecs.Image, error) {
			return ecs.Image{ID: id, Status: "active", DiskFormat: "raw", OSType: "Linux", Checksum: sum,
				File: "/" + host + "/images/" + id + ".raw"}, nil
		}
	}
	img, err := onHost("host-a").ImportImage(ctx, cloud.ImportImageInput{Name: "deb", Import: file("host-a", "sum1")})
	if err != nil {
		t.Fatal(err)
	}
	discarded := false
	_, err = onHost("host-b").ImportImage(ctx, cloud.ImportImageInput{ID: img.ID, Import: file("host-b", "other"),
		Discard: func(ecs.Image) { discarded = true }})
	if err == nil || !strings.Contains(err.Error(), "is not image") || !discarded {
		t.Fatalf("import of another file under the id: %v (discarded %v), want a refusal", err, discarded)
	}
	got, err := onHost("host-b").ImportImage(ctx, cloud.ImportImageInput{ID: img.ID, Import: file("host-b", "sum1")})
	if err != nil || got.ID != img.ID || got.File != img.File {
		t.Fatalf("import on host-b = %+v, %v; want the catalog's image", got, err)
	}
	hosts, err := st.ImageHostList(ctx, img.ID)
	if err != nil || len(hosts) != 2 || hosts[0].Host != "host-a" || hosts[1].Host != "host-b" ||
		hosts[1].File != "/host-b/images/"+img.ID+".raw" {
		t.Fatalf("image hosts = %+v, %v", hosts, err)
	}
	if _, err := onHost("host-b").ImportImage(ctx, cloud.ImportImageInput{ID: "6f1d0c2e-5a3b-4c1d-9e8f-000000000000",
		Import: file("host-b", "sum1")}); err == nil || !strings.Contains(err.Error(), "not in the catalog") {
		t.Fatalf("import under an unknown id: %v", err)
	}
}

// TestImportImageCloudInitOverride: --cloud-init=true|false overrides what
// the inspection found; the catalog keeps the override.
func TestImportImageCloudInitOverride(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		name            string
		found, override *bool
		want            bool
	}{
		{"detected", ptrTo(true), nil, true},
		{"not detected", ptrTo(false), nil, false},
		{"forced on", ptrTo(false), ptrTo(true), true},
		{"forced off", ptrTo(true), ptrTo(false), false},
	} {
		svc := operatorService(t)
		ctx := context.Background()
		img, err := svc.ImportImage(ctx, cloud.ImportImageInput{Name: "img", CloudInit: tt.override,
			Import: func(_ context.Context, id string) (ecs.Image, error) {
				return ecs.Image{ID: id, Status: "active", OSType: "Linux", CloudInit: *tt.found, File: "/images/" + id}, nil
			}})
		if err != nil {
			t.Fatalf("%s: %v", tt.name, err)
		}
		got, err := svc.GetImage(ctx, img.ID)
		if err != nil || img.CloudInit != tt.want || got.CloudInit != tt.want {
			t.Errorf("%s: imported CloudInit %v, catalog %v (err %v); want %v", tt.name, img.CloudInit, got.CloudInit, err, tt.want)
		}
	}
	svc := operatorService(t)
	_, err := svc.ImportImage(context.Background(), cloud.ImportImageInput{ID: "6f1d0c2e-5a3b-4c1d-9e8f-0a1b2c3d4e01",
		CloudInit: ptrTo(true), Import: func(context.Context, string) (ecs.Image, error) {
			t.Error("imported despite the refused override")
			return ecs.Image{}, errors.New("no")
		}})
	if err == nil || !strings.Contains(err.Error(), "cloud-init override") {
		t.Errorf("override with --id: err %v, want a refusal", err)
	}
}

func ptrTo[T any](v T) *T { return &v }
