package cloud_test

import (
	"context"
	"strings"
	"testing"

	"github.com/ecsproject/ecsd/internal/cloud"
	"github.com/ecsproject/ecsd/internal/compute/sim"
)

// Refusals a CLI user meets say what to type and name what is missing.
func TestRefusalMessagesSayWhatToDo(t *testing.T) {
	t.Parallel()
	b := setup(t, sim.Config{})
	ctx := context.Background()
	running := b.server(t, linuxImage, false)
	create := cloud.CreateInput{Name: "n", ImageRef: linuxImage, FlavorRef: "s6.small.1", VPCID: "v", SubnetIDs: []string{"s"},
		VolumeType: "SSD", KeyName: "my-missing-key"}
	tests := []struct {
		name string
		call func() error
		want string
	}{
		{"reinstall of a running server names the mode and the CLI flag", func() error {
			_, err := b.svc.Reinstall(ctx, b.caller, running.ID, cloud.ReinstallInput{AdminPass: str(goodPass)})
			return err
		}, `use mode "withStopServer" (ecsctl server reinstall --with-stop)`},
		{"reinstall with an unknown key pair names it", func() error {
			_, err := b.svc.Reinstall(ctx, b.caller, running.ID, cloud.ReinstallInput{KeyName: str("my-missing-key"), Mode: str(cloud.ModeWithStopServer)})
			return err
		}, "Key pair my-missing-key does not exist."},
		{"create with an unknown key pair names it", func() error {
			_, _, err := b.svc.CreateServers(ctx, b.caller, create)
			return err
		}, "Key pair my-missing-key does not exist."},
		{"an unprintable key name is made safe", func() error {
			in := create
			in.KeyName = "bad\"key\n"
			_, _, err := b.svc.CreateServers(ctx, b.caller, in)
			return err
		}, "Key pair bad?key? does not exist."},
	}
	for _, tt := range tests {
		if err := tt.call(); err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: err = %v, want it to contain %q", tt.name, err, tt.want)
		}
	}
}
