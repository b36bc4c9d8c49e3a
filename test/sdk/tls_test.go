package sdk

import (
	"strings"
	"testing"

	"github.com/ecsproject/ecsd/internal/testd"
	"github.com/huaweicloud/huaweicloud-sdk-go-v3/core/config"
	ecs "github.com/huaweicloud/huaweicloud-sdk-go-v3/services/ecs/v2"
	"github.com/huaweicloud/huaweicloud-sdk-go-v3/services/ecs/v2/model"
)

// TestSDKOverTLS runs the official SDK over HTTPS against an ecsd serving a
// self-signed certificate made for the test (--tls-cert/--tls-key). The
// SDK trusts exactly that certificate through its HttpConfig: the chain,
// validity and host name are checked, nothing is skipped.
func TestSDKOverTLS(t *testing.T) {
	t.Parallel()
	d := startDaemonConfig(t, testd.Config{DataDir: t.TempDir(), TLS: true})
	tn := d.main
	if !strings.HasPrefix(tn.cred.Endpoint, "https://") || tn.cred.Endpoint != d.Endpoint() {
		t.Errorf("credentials.json endpoint %q, want %s", tn.cred.Endpoint, d.Endpoint())
	}

	fl, err := tn.ecs.ListFlavors(&model.ListFlavorsRequest{})
	if err != nil {
		t.Fatalf("ListFlavors over TLS: %v", err)
	}
	if fl.Flavors == nil || len(*fl.Flavors) == 0 {
		t.Fatal("ListFlavors over TLS returned no flavor")
	}
	// Create a server and follow its job (ShowJob) to SUCCESS.
	resp := tn.createServers(t, serverSpec{})
	j := tn.waitJobSuccess(t, *resp.JobId)
	if id := (*resp.ServerIds)[0]; tn.show(t, id).Status != "ACTIVE" {
		t.Errorf("server %s after its create job %s: %s, want ACTIVE", id, str(j.JobId), tn.show(t, id).Status)
	}

	// The same SDK with its default trust (the system roots) refuses the
	// self-signed certificate: the check above was a real one.
	c := tn.cred
	hc, err := d.sdkClient(ecs.EcsClientBuilder(), c.AccessKey, c.SecretKey, c.ProjectID, config.DefaultHttpConfig())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ecs.NewEcsClient(hc).ListFlavors(&model.ListFlavorsRequest{}); err == nil ||
		!strings.Contains(err.Error(), "certificate") {
		t.Fatalf("an SDK that does not trust the certificate: %v, want a certificate error", err)
	}
}
