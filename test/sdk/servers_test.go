package sdk

import (
	"encoding/json"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"testing"
	"time"

	"github.com/ecsproject/ecsd/internal/testd"
	"github.com/huaweicloud/huaweicloud-sdk-go-v3/services/ecs/v2/model"
	imsmodel "github.com/huaweicloud/huaweicloud-sdk-go-v3/services/ims/v2/model"
)

func TestCredentialsFile(t *testing.T) {
	t.Parallel()
	d := sharedDaemon(t)
	st, err := os.Stat(filepath.Join(d.DataDir(), "credentials.json"))
	if err != nil {
		t.Fatal(err)
	}
	if perm := st.Mode().Perm(); perm != 0o600 {
		t.Errorf("credentials.json mode %o, want 600", perm)
	}
	c := d.main.cred
	if c.AccessKey == "" || c.SecretKey == "" || c.ProjectID == "" || c.UserID == "" || c.Endpoint == "" {
		t.Errorf("credentials.json misses a field: %+v", c)
	}
	u, err := url.Parse(c.Endpoint)
	if err != nil || u.Host != d.Addr() {
		t.Errorf("credentials.json endpoint %q, want one whose host is %s", c.Endpoint, d.Addr())
	}
}

func TestConfigFromEnv(t *testing.T) {
	t.Parallel()
	d, err := launch(testd.Config{DataDir: t.TempDir(), UseEnv: true, Env: map[string]string{"ECS_SIM_LATENCY": "1ms"}})
	if err != nil {
		t.Fatalf("ecsd configured by ECS_LISTEN/ECS_DATA_DIR/ECS_DRIVER: %v", err)
	}
	defer func() {
		if err := d.Stop(); err != nil {
			t.Error(err)
		}
	}()
	if _, err := d.main.ecs.ListServersDetails(&model.ListServersDetailsRequest{}); err != nil {
		t.Errorf("ListServersDetails on an env-configured daemon: %v", err)
	}
}

func TestListImages(t *testing.T) {
	t.Parallel()
	tn := sharedDaemon(t).main
	resp, err := tn.ims.ListImages(&imsmodel.ListImagesRequest{})
	if err != nil {
		t.Fatalf("IMS ListImages: %v", err)
	}
	if resp.Images == nil || len(*resp.Images) == 0 {
		t.Fatal("no images")
	}
	osTypes := map[string]bool{}
	ids := map[string]bool{}
	for _, im := range *resp.Images {
		if im.Id == "" || im.Name == "" {
			t.Errorf("image without id or name: %+v", im)
		}
		if ids[im.Id] {
			t.Errorf("image %s listed twice", im.Id)
		}
		ids[im.Id] = true
		osTypes[im.OsType.Value()] = true
		if im.Status.Value() != "active" {
			t.Errorf("built-in image %s has status %q, want active", im.Id, im.Status.Value())
		}
	}
	if !osTypes["Linux"] || !osTypes["Windows"] {
		t.Errorf("__os_type values %v, want at least Linux and Windows", osTypes)
	}
}

func TestListFlavors(t *testing.T) {
	t.Parallel()
	tn := sharedDaemon(t).main
	resp, err := tn.ecs.ListFlavors(&model.ListFlavorsRequest{})
	if err != nil {
		t.Fatalf("ListFlavors: %v", err)
	}
	if resp.Flavors == nil || len(*resp.Flavors) == 0 {
		t.Fatal("no flavors")
	}
	for _, f := range *resp.Flavors {
		if f.Id == "" || f.Name == "" {
			t.Errorf("flavor without id or name: %+v", f)
		}
		if n, err := strconv.Atoi(f.Vcpus); err != nil || n < 1 {
			t.Errorf("flavor %s vcpus %q, want a positive number in a string", f.Id, f.Vcpus)
		}
		if f.Ram < 1 {
			t.Errorf("flavor %s ram %d, want > 0", f.Id, f.Ram)
		}
	}
}

func TestCreateAndShowServer(t *testing.T) {
	t.Parallel()
	tn := sharedDaemon(t).main
	cat := tn.catalog(t)
	key := uniq("k")
	tn.importKeypair(t, key, sshKey(t))
	name := uniq("show")
	resp := tn.createServers(t, serverSpec{name: name, keyName: key})
	if resp.HttpStatusCode != 200 {
		t.Errorf("CreatePostPaidServers HTTP %d, want 200", resp.HttpStatusCode)
	}
	job := tn.waitJobSuccess(t, *resp.JobId)
	if got := str(job.JobId); got != *resp.JobId {
		t.Errorf("job_id %q, want %q", got, *resp.JobId)
	}
	id := (*resp.ServerIds)[0]

	s := tn.show(t, id)
	checks := []struct {
		field     string
		got, want any
	}{
		{"id", s.Id, id},
		{"name", s.Name, name},
		{"status", s.Status, "ACTIVE"},
		{"OS-EXT-STS:vm_state", s.OSEXTSTSvmState, "active"},
		{"OS-EXT-STS:task_state", s.OSEXTSTStaskState, ""},
		{"OS-EXT-STS:power_state", s.OSEXTSTSpowerState, int32(1)},
		{"locked", s.Locked, false},
		{"tenant_id", s.TenantId, tn.cred.ProjectID},
		{"user_id", s.UserId, tn.cred.UserID},
		{"key_name", s.KeyName, key},
		{"OS-EXT-SRV-ATTR:root_device_name", s.OSEXTSRVATTRrootDeviceName, "/dev/vda"},
		{"metadata.os_type", s.Metadata["os_type"], "Linux"},
	}
	for _, c := range checks {
		if c.got != c.want {
			t.Errorf("%s = %#v, want %#v", c.field, c.got, c.want)
		}
	}
	if s.Image == nil || s.Image.Id != cat.linuxImage {
		t.Errorf("image = %+v, want id %s", s.Image, cat.linuxImage)
	}
	// The host the server was placed on (the daemon's one host).
	if s.OSEXTSRVATTRhost == "" || s.OSEXTSRVATTRhypervisorHostname != s.OSEXTSRVATTRhost {
		t.Errorf("OS-EXT-SRV-ATTR:host %q, hypervisor_hostname %q: want the server's host in both",
			s.OSEXTSRVATTRhost, s.OSEXTSRVATTRhypervisorHostname)
	}
	if s.Flavor == nil || s.Flavor.Id != cat.flavor {
		t.Errorf("flavor = %+v, want id %s", s.Flavor, cat.flavor)
	} else if _, err := strconv.Atoi(s.Flavor.Vcpus); err != nil {
		t.Errorf("flavor.vcpus %q is not a number in a string", s.Flavor.Vcpus)
	}
	for field, v := range map[string]string{"created": s.Created, "updated": s.Updated} {
		if _, err := time.Parse(time.RFC3339, v); err != nil {
			t.Errorf("%s %q is not YYYY-MM-DDTHH:MM:SSZ: %v", field, v, err)
		}
	}
	vol := systemVolume(t, s)
	disk := tn.d.disk(t, vol)
	if disk.ImageID != cat.linuxImage || disk.AttachedTo != id {
		t.Errorf("system disk record %+v, want image %s attached to %s", disk, cat.linuxImage, id)
	}

	// Show by raw request: the strict wire types of reference §c.
	r := tn.raw(t, rawReq{method: "GET", path: "/v1/{project_id}/cloudservers/" + id})
	if r.status != 200 {
		t.Fatalf("raw show: %d %s", r.status, r.body)
	}
	var wire struct {
		Server map[string]json.RawMessage `json:"server"`
	}
	if err := json.Unmarshal(r.body, &wire); err != nil {
		t.Fatal(err)
	}
	wantJSONKind(t, wire.Server, "OS-EXT-STS:power_state", '1')
	wantJSONKind(t, wire.Server, "locked", 'f')
	wantJSONKind(t, wire.Server, "OS-EXT-STS:task_state", 'n')
}

// wantJSONKind checks the first byte of a raw JSON value: '1' any number,
// 'f' a bool, 'n' null, '"' a string.
func wantJSONKind(t *testing.T, obj map[string]json.RawMessage, key string, kind byte) {
	t.Helper()
	v, ok := obj[key]
	if !ok || len(v) == 0 {
		t.Errorf("%s missing", key)
		return
	}
	c := v[0]
	switch kind {
	case '1':
		if (c < '0' || c > '9') && c != '-' {
			t.Errorf("%s = %s, want a number", key, v)
		}
	case 'f':
		if c != 't' && c != 'f' {
			t.Errorf("%s = %s, want a bool", key, v)
		}
	default:
		if c != kind {
			t.Errorf("%s = %s, want JSON starting with %c", key, v, kind)
		}
	}
}

func TestCreateThreeServersOneJob(t *testing.T) {
	t.Parallel()
	tn := sharedDaemon(t).main
	resp := tn.createServers(t, serverSpec{count: 3})
	ids := *resp.ServerIds
	job := tn.waitJobSuccess(t, *resp.JobId)
	if job.Entities == nil || job.Entities.SubJobsTotal == nil || *job.Entities.SubJobsTotal != 3 {
		t.Fatalf("entities %+v, want sub_jobs_total 3", job.Entities)
	}
	if job.Entities.SubJobs == nil || len(*job.Entities.SubJobs) != 3 {
		t.Fatalf("sub_jobs %+v, want 3", job.Entities.SubJobs)
	}
	if str(job.JobType) != "createServer" {
		t.Errorf("job_type %q, want createServer (Huawei's documented value)", str(job.JobType))
	}
	var seen []string
	for _, sj := range *job.Entities.SubJobs {
		if sj.Status == nil || sj.Status.Value() != "SUCCESS" {
			t.Errorf("sub job %s status %v, want SUCCESS", str(sj.JobId), sj.Status)
		}
		if str(sj.JobId) == "" || str(sj.JobType) == "" {
			t.Errorf("sub job without job_id or job_type: %+v", sj)
		}
		if sj.Entities == nil || sj.Entities.ServerId == nil {
			t.Errorf("sub job %s without entities.server_id", str(sj.JobId))
			continue
		}
		seen = append(seen, *sj.Entities.ServerId)
	}
	sort.Strings(seen)
	want := slices.Clone(ids)
	sort.Strings(want)
	if !slices.Equal(seen, want) || len(slices.Compact(slices.Clone(want))) != 3 {
		t.Errorf("sub job servers %v, want the 3 distinct serverIds %v", seen, want)
	}
	for _, id := range ids {
		tn.wantActive(t, id)
	}
}

func TestListServersDetails(t *testing.T) {
	t.Parallel()
	// A fresh tenant, so that other tests' servers do not change the counts.
	tn := sharedDaemon(t).newTenant(t)
	tok := uniq("ls")
	names := []string{tok + "-a", tok + "-b", tok + "-c", uniq("other")}
	ids := make([]string, len(names))
	jobs := make([]string, len(names))
	for i, n := range names {
		r := tn.createServers(t, serverSpec{name: n})
		ids[i], jobs[i] = (*r.ServerIds)[0], *r.JobId
	}
	for _, j := range jobs {
		tn.waitJobSuccess(t, j)
	}
	tn.stop(t, "SOFT", ids[1])

	list := func(t *testing.T, q model.ListServersDetailsRequest) (int32, []string) {
		t.Helper()
		r, err := tn.ecs.ListServersDetails(&q)
		if err != nil {
			t.Fatalf("ListServersDetails %+v: %v", q, err)
		}
		if r.Count == nil {
			t.Fatalf("ListServersDetails %+v: no count", q)
		}
		var got []string
		if r.Servers != nil {
			for _, s := range *r.Servers {
				got = append(got, s.Id)
			}
		}
		return *r.Count, got
	}
	sorted := func(s []string) []string { s = slices.Clone(s); sort.Strings(s); return s }

	t.Run("all", func(t *testing.T) {
		n, got := list(t, model.ListServersDetailsRequest{})
		if n != 4 || !slices.Equal(sorted(got), sorted(ids)) {
			t.Errorf("count %d servers %v, want 4 servers %v", n, got, ids)
		}
	})
	t.Run("paging", func(t *testing.T) {
		var all []string
		for page := int32(1); page <= 3; page++ {
			n, got := list(t, model.ListServersDetailsRequest{Limit: ptr(int32(2)), Offset: ptr(page)})
			if n != 4 {
				t.Errorf("page %d: count %d, want the total 4", page, n)
			}
			want := 2
			if page == 3 {
				want = 0
			}
			if len(got) != want {
				t.Errorf("page %d (limit 2): %d servers, want %d", page, len(got), want)
			}
			all = append(all, got...)
		}
		if !slices.Equal(sorted(all), sorted(ids)) {
			t.Errorf("pages 1..3 hold %v, want each of %v exactly once", all, ids)
		}
		n, got := list(t, model.ListServersDetailsRequest{Limit: ptr(int32(1))})
		if n != 4 || len(got) != 1 {
			t.Errorf("limit 1: count %d, %d servers; want count 4 and 1 server", n, len(got))
		}
	})
	t.Run("offset 0 is the first page", func(t *testing.T) {
		// The SDK documents offset >= 0, 0 returning page 1 like 1 does.
		_, p0 := list(t, model.ListServersDetailsRequest{Limit: ptr(int32(2)), Offset: ptr(int32(0))})
		_, p1 := list(t, model.ListServersDetailsRequest{Limit: ptr(int32(2)), Offset: ptr(int32(1))})
		if !slices.Equal(p0, p1) {
			t.Errorf("offset 0 gave %v, offset 1 gave %v; offset 0 means the first page", p0, p1)
		}
	})
	t.Run("name", func(t *testing.T) {
		n, got := list(t, model.ListServersDetailsRequest{Name: ptr(tok)})
		if n != 3 || !slices.Equal(sorted(got), sorted(ids[:3])) {
			t.Errorf("name=%s (fuzzy): count %d %v, want 3 %v", tok, n, got, ids[:3])
		}
		n, got = list(t, model.ListServersDetailsRequest{Name: ptr(names[1])})
		if n != 1 || !slices.Equal(got, ids[1:2]) {
			t.Errorf("name=%s: count %d %v, want [%s]", names[1], n, got, ids[1])
		}
		n, got = list(t, model.ListServersDetailsRequest{Name: ptr(uniq("none"))})
		if n != 0 || len(got) != 0 {
			t.Errorf("name matching nothing: count %d %v", n, got)
		}
	})
	t.Run("status", func(t *testing.T) {
		n, got := list(t, model.ListServersDetailsRequest{Status: ptr("SHUTOFF")})
		if n != 1 || !slices.Equal(got, ids[1:2]) {
			t.Errorf("status=SHUTOFF: count %d %v, want [%s]", n, got, ids[1])
		}
		n, got = list(t, model.ListServersDetailsRequest{Status: ptr("ACTIVE")})
		want := []string{ids[0], ids[2], ids[3]}
		if n != 3 || !slices.Equal(sorted(got), sorted(want)) {
			t.Errorf("status=ACTIVE: count %d %v, want %v", n, got, want)
		}
		n, _ = list(t, model.ListServersDetailsRequest{Status: ptr("ACTIVE"), Name: ptr(tok)})
		if n != 2 {
			t.Errorf("status=ACTIVE&name=%s: count %d, want 2", tok, n)
		}
	})
}

func TestStartStopReboot(t *testing.T) {
	t.Parallel()
	tn := sharedDaemon(t).main
	a := tn.newServer(t, serverSpec{})
	b := tn.newServer(t, serverSpec{})

	job := tn.stop(t, "SOFT", a, b)
	if job.Entities == nil || job.Entities.SubJobsTotal == nil || *job.Entities.SubJobsTotal != 2 ||
		job.Entities.SubJobs == nil || len(*job.Entities.SubJobs) != 2 {
		t.Errorf("stop of 2 servers: entities %+v, want 2 sub_jobs", job.Entities)
	}
	tn.start(t, a, b)
	tn.stop(t, "HARD", a)
	tn.start(t, a)

	e := model.GetBatchRebootSeversOptionTypeEnum()
	for _, typ := range []model.BatchRebootSeversOptionType{e.SOFT, e.HARD} {
		resp, err := tn.ecs.BatchRebootServers(&model.BatchRebootServersRequest{Body: &model.BatchRebootServersRequestBody{
			Reboot: &model.BatchRebootSeversOption{Servers: serverIDs([]string{a}), Type: typ},
		}})
		if err != nil {
			t.Fatalf("BatchRebootServers %s: %v", typ.Value(), err)
		}
		tn.waitJobSuccess(t, jobID(t, resp.JobId))
		tn.wantActive(t, a)
	}
}

func TestDeleteServer(t *testing.T) {
	t.Parallel()
	tn := sharedDaemon(t).main
	id := tn.newServer(t, serverSpec{})
	resp, err := tn.ecs.DeleteServers(&model.DeleteServersRequest{Body: &model.DeleteServersRequestBody{
		Servers: serverIDs([]string{id}),
	}})
	if err != nil {
		t.Fatalf("DeleteServers: %v", err)
	}
	tn.waitJobSuccess(t, jobID(t, resp.JobId))
	_, err = tn.ecs.ShowServer(&model.ShowServerRequest{ServerId: id})
	wantErr(t, err, 404, "Ecs.0114")
	_, err = tn.reinstall(id, &model.ReinstallServerWithoutCloudInitOption{Adminpass: ptr("Deleted#Pass1")})
	wantErr(t, err, 404, "Ecs.0114")
}

func TestShowJobErrors(t *testing.T) {
	t.Parallel()
	d := sharedDaemon(t)
	tn := d.main
	_, err := tn.ecs.ShowJob(&model.ShowJobRequest{JobId: uniq("nojob")})
	wantErr(t, err, 400, "Common.0011")

	// Another project's job is not found either.
	resp := tn.createServers(t, serverSpec{})
	other := d.newTenant(t)
	_, err = other.ecs.ShowJob(&model.ShowJobRequest{JobId: *resp.JobId})
	wantErr(t, err, 400, "Common.0011")
	tn.waitJobSuccess(t, *resp.JobId)
}

func TestTenantIsolation(t *testing.T) {
	t.Parallel()
	d := sharedDaemon(t)
	a := d.main
	b := d.newTenant(t)
	id := a.newServer(t, serverSpec{})

	_, err := b.ecs.ShowServer(&model.ShowServerRequest{ServerId: id})
	wantErr(t, err, 404, "Ecs.0114")
	list, err := b.ecs.ListServersDetails(&model.ListServersDetailsRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if list.Servers != nil {
		for _, s := range *list.Servers {
			if s.Id == id {
				t.Errorf("project B lists project A's server %s", id)
			}
		}
	}

	// Project A's key on project B's path.
	cross, err := d.ecsClient(a.cred.AccessKey, a.cred.SecretKey, b.cred.ProjectID)
	if err != nil {
		t.Fatal(err)
	}
	_, err = cross.ListServersDetails(&model.ListServersDetailsRequest{})
	wantErr(t, err, 400, "Ecs.0023")
}

func TestCreateServerRefused(t *testing.T) {
	t.Parallel()
	tn := sharedDaemon(t).main
	cat := tn.catalog(t)
	base := func() *model.PostPaidServer {
		return &model.PostPaidServer{
			Name:       uniq("bad"),
			ImageRef:   cat.linuxImage,
			FlavorRef:  cat.flavor,
			Vpcid:      "vpc-sdk-suite",
			Nics:       []model.PostPaidServerNic{{SubnetId: ptr("subnet-sdk-suite")}},
			RootVolume: &model.PostPaidServerRootVolume{Volumetype: model.GetPostPaidServerRootVolumeVolumetypeEnum().SSD},
		}
	}
	cases := []struct {
		name   string
		mutate func(*model.PostPaidServer)
		codes  []string
	}{
		{"unknown image", func(s *model.PostPaidServer) { s.ImageRef = "00000000-0000-4000-8000-000000000000" }, []string{"Ecs.0031"}},
		{"unknown flavor", func(s *model.PostPaidServer) { s.FlavorRef = "no.such.flavor" }, []string{"Ecs.0029"}},
		{"unknown key pair", func(s *model.PostPaidServer) { s.KeyName = ptr(uniq("missing")) }, []string{"Ecs.0314"}},
		{"empty name", func(s *model.PostPaidServer) { s.Name = "" }, nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			s := base()
			c.mutate(s)
			_, err := tn.ecs.CreatePostPaidServers(&model.CreatePostPaidServersRequest{
				Body: &model.CreatePostPaidServersRequestBody{Server: s},
			})
			wantErr(t, err, 400, c.codes...)
		})
	}
}
