package sdk

// Volumes through the official SDK against the simulator: EVS create, list,
// show and delete (services/evs/v2), AttachServerVolume and
// DetachServerVolume, the block device calls, and a server whose system
// disk is detached refusing a reinstall with Ecs.0105.

import (
	"encoding/json"
	"os"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/huaweicloud/huaweicloud-sdk-go-v3/services/ecs/v2/model"
	evs "github.com/huaweicloud/huaweicloud-sdk-go-v3/services/evs/v2"
	evsmodel "github.com/huaweicloud/huaweicloud-sdk-go-v3/services/evs/v2/model"
)

func (tn *tenant) evsClient(t *testing.T) *evs.EvsClient {
	t.Helper()
	hc, err := tn.d.sdkClient(evs.EvsClientBuilder(), tn.cred.AccessKey, tn.cred.SecretKey, tn.cred.ProjectID, tn.d.httpConfig())
	if err != nil {
		t.Fatal(err)
	}
	return evs.NewEvsClient(hc)
}

// newVolume creates one volume through EVS and returns its id.
func (tn *tenant) newVolume(t *testing.T, ec *evs.EvsClient, name string, size int32) string {
	t.Helper()
	resp, err := ec.CreateVolume(&evsmodel.CreateVolumeRequest{Body: &evsmodel.CreateVolumeRequestBody{
		Volume: &evsmodel.CreateVolumeOption{Name: ptr(name), Size: size, AvailabilityZone: "az1",
			VolumeType: evsmodel.GetCreateVolumeOptionVolumeTypeEnum().SSD}}})
	if err != nil {
		t.Fatalf("CreateVolume: %v", err)
	}
	if resp.VolumeIds == nil || len(*resp.VolumeIds) != 1 || resp.JobId == nil {
		t.Fatalf("CreateVolume = %+v, want one volume id and a job", resp)
	}
	return (*resp.VolumeIds)[0]
}

func (tn *tenant) showVolume(t *testing.T, ec *evs.EvsClient, id string) *evsmodel.VolumeDetail {
	t.Helper()
	resp, err := ec.ShowVolume(&evsmodel.ShowVolumeRequest{VolumeId: id})
	if err != nil {
		t.Fatalf("ShowVolume %s: %v", id, err)
	}
	return resp.Volume
}

func (tn *tenant) attach(t *testing.T, server, volume, device string) {
	t.Helper()
	opt := &model.AttachServerVolumeOption{VolumeId: volume}
	if device != "" {
		opt.Device = ptr(device)
	}
	resp, err := tn.ecs.AttachServerVolume(&model.AttachServerVolumeRequest{ServerId: server,
		Body: &model.AttachServerVolumeRequestBody{VolumeAttachment: opt}})
	if err != nil {
		t.Fatalf("AttachServerVolume %s to %s: %v", volume, server, err)
	}
	tn.waitJobSuccess(t, jobID(t, resp.JobId))
}

func (tn *tenant) detach(server, volume string, del bool) (*model.DetachServerVolumeResponse, error) {
	flag := model.GetDetachServerVolumeRequestDeleteFlagEnum().E_0
	if del {
		flag = model.GetDetachServerVolumeRequestDeleteFlagEnum().E_1
	}
	return tn.ecs.DetachServerVolume(&model.DetachServerVolumeRequest{ServerId: server, VolumeId: volume, DeleteFlag: &flag})
}

// TestVolumesEVSAndAttach: an EVS volume attaches to a running server as
// /dev/vdb, shows in-use in EVS and in every block device call (bootIndex
// 0 for the system disk), survives a reinstall on the simulator's record,
// cannot be deleted while in use, and is deleted after a detach.
func TestVolumesEVSAndAttach(t *testing.T) {
	t.Parallel()
	d := sharedDaemon(t)
	tn := d.main
	ec := tn.evsClient(t)
	id := tn.newServer(t, serverSpec{})
	sys := systemVolume(t, tn.show(t, id))
	vid := tn.newVolume(t, ec, uniq("data"), 10)
	if v := tn.showVolume(t, ec, vid); v.Status != "available" || v.Size != 10 || len(v.Attachments) != 0 {
		t.Fatalf("new volume = %+v", v)
	}

	tn.attach(t, id, vid, "")
	v := tn.showVolume(t, ec, vid)
	if v.Status != "in-use" || len(v.Attachments) != 1 || v.Attachments[0].ServerId != id || v.Attachments[0].Device != "/dev/vdb" {
		t.Fatalf("attached volume = %+v", v)
	}
	list, err := ec.ListVolumes(&evsmodel.ListVolumesRequest{})
	if err != nil || list.Volumes == nil {
		t.Fatalf("ListVolumes: %v", err)
	}
	if !slices.ContainsFunc(*list.Volumes, func(v evsmodel.VolumeDetail) bool { return v.Id == vid && v.Status == "in-use" }) {
		t.Errorf("ListVolumes has no in-use %s", vid)
	}

	bd, err := tn.ecs.ListServerBlockDevices(&model.ListServerBlockDevicesRequest{ServerId: id})
	if err != nil {
		t.Fatalf("ListServerBlockDevices: %v", err)
	}
	if bd.VolumeAttachments == nil || len(*bd.VolumeAttachments) != 2 {
		t.Fatalf("ListServerBlockDevices = %+v, want 2 devices", bd.VolumeAttachments)
	}
	devs := *bd.VolumeAttachments
	if str(devs[0].VolumeId) != sys || *devs[0].BootIndex != 0 || str(devs[0].Device) != "/dev/vda" ||
		str(devs[1].VolumeId) != vid || *devs[1].BootIndex == 0 || *devs[1].Size != 10 {
		t.Errorf("block devices = %s %v %s, %s %v %s", str(devs[0].VolumeId), *devs[0].BootIndex, str(devs[0].Device),
			str(devs[1].VolumeId), *devs[1].BootIndex, str(devs[1].Device))
	}
	if bd.AttachableQuantity == nil || bd.AttachableQuantity.FreeBlk == nil || *bd.AttachableQuantity.FreeBlk <= 0 {
		t.Errorf("attachableQuantity = %+v", bd.AttachableQuantity)
	}
	one, err := tn.ecs.ShowServerBlockDevice(&model.ShowServerBlockDeviceRequest{ServerId: id, VolumeId: vid})
	if err != nil || one.VolumeAttachment == nil || str(one.VolumeAttachment.Device) != "/dev/vdb" {
		t.Fatalf("ShowServerBlockDevice = %+v, %v", one, err)
	}
	att, err := tn.ecs.ListServerVolumeAttachments(&model.ListServerVolumeAttachmentsRequest{ServerId: id})
	if err != nil || att.VolumeAttachments == nil || len(*att.VolumeAttachments) != 2 {
		t.Fatalf("ListServerVolumeAttachments = %+v, %v", att, err)
	}
	srv := tn.show(t, id)
	if len(srv.OsExtendedVolumesvolumesAttached) != 2 || str(srv.OsExtendedVolumesvolumesAttached[0].BootIndex) != "0" ||
		srv.OsExtendedVolumesvolumesAttached[1].Id != vid {
		t.Errorf("volumes_attached = %+v", srv.OsExtendedVolumesvolumesAttached)
	}

	// Deleting an in-use volume is refused.
	_, err = ec.DeleteVolume(&evsmodel.DeleteVolumeRequest{VolumeId: vid})
	wantErr(t, err, 400, "Ecs.0103")

	// A reinstall replaces the system disk and keeps the data disk.
	tn.reinstallOK(t, id, &opt{Adminpass: ptr("Good-Pass123"), Mode: ptr("withStopServer")})
	if s := d.simServer(t, id); s.DiskID == sys {
		t.Errorf("the reinstall kept system disk %s", sys)
	}
	if _, err := os.Stat(d.diskPath(vid)); err != nil {
		t.Errorf("the data disk's record is gone after the reinstall: %v", err)
	}
	if v := tn.showVolume(t, ec, vid); v.Status != "in-use" {
		t.Errorf("data volume after the reinstall is %s", v.Status)
	}

	// Detach (hot-unplug from the running server), then delete.
	resp, err := tn.detach(id, vid, false)
	if err != nil {
		t.Fatalf("DetachServerVolume: %v", err)
	}
	tn.waitJobSuccess(t, jobID(t, resp.JobId))
	_, err = tn.ecs.ShowServerBlockDevice(&model.ShowServerBlockDeviceRequest{ServerId: id, VolumeId: vid})
	wantErr(t, err, 400, "Ecs.0111")
	del, err := ec.DeleteVolume(&evsmodel.DeleteVolumeRequest{VolumeId: vid})
	if err != nil {
		t.Fatalf("DeleteVolume: %v", err)
	}
	tn.waitJobSuccess(t, str(del.JobId))
	_, err = ec.ShowVolume(&evsmodel.ShowVolumeRequest{VolumeId: vid})
	wantErr(t, err, 404, "Ecs.0103")
	d.wantDiskGone(t, vid)
}

// TestDetachSystemDiskThenReinstall: the system disk of a stopped server
// detaches; a reinstall is then refused with Ecs.0105 and so is a start;
// attaching the volume again as /dev/vda heals the server.
func TestDetachSystemDiskThenReinstall(t *testing.T) {
	t.Parallel()
	tn := sharedDaemon(t).main
	id := tn.newServer(t, serverSpec{})
	sys := systemVolume(t, tn.show(t, id))
	// Not while it runs.
	_, err := tn.detach(id, sys, false)
	wantErr(t, err, 400, "Ecs.0100")

	tn.stop(t, "SOFT", id)
	resp, err := tn.detach(id, sys, false)
	if err != nil {
		t.Fatalf("DetachServerVolume of the system disk: %v", err)
	}
	tn.waitJobSuccess(t, jobID(t, resp.JobId))
	if n := len(tn.show(t, id).OsExtendedVolumesvolumesAttached); n != 0 {
		t.Errorf("volumes_attached has %d volumes after the system disk's detach", n)
	}
	_, err = tn.reinstall(id, withPass("Good-Pass123"))
	wantErr(t, err, 400, "Ecs.0105")
	_, err = tn.changeOSv1(id, &model.ChangeServerOsWithoutCloudInitOption{Imageid: imgUbuntu, Adminpass: ptr("Change#Os2024")})
	wantErr(t, err, 400, "Ecs.0105")
	_, err = tn.ecs.BatchStartServers(&model.BatchStartServersRequest{Body: &model.BatchStartServersRequestBody{
		OsStart: &model.BatchStartServersOption{Servers: serverIDs([]string{id})}}})
	wantErr(t, err, 400, "Ecs.0105")

	tn.attach(t, id, sys, "/dev/vda")
	if got := systemVolume(t, tn.show(t, id)); got != sys {
		t.Fatalf("system volume after re-attach = %s, want %s", got, sys)
	}
	tn.reinstallOK(t, id, withPass("Good-Pass123"))
}

// TestCreateWithDataVolumes: CreatePostPaidServers with data_volumes gives
// the server blank data disks, attached before it starts.
func TestCreateWithDataVolumes(t *testing.T) {
	t.Parallel()
	tn := sharedDaemon(t).main
	cat := tn.catalog(t)
	resp, err := tn.ecs.CreatePostPaidServers(&model.CreatePostPaidServersRequest{Body: &model.CreatePostPaidServersRequestBody{
		Server: &model.PostPaidServer{Name: uniq("dv"), ImageRef: cat.linuxImage, FlavorRef: cat.flavor, Vpcid: "vpc-sdk-suite",
			Nics:       []model.PostPaidServerNic{{SubnetId: ptr("subnet-sdk-suite")}},
			RootVolume: &model.PostPaidServerRootVolume{Volumetype: model.GetPostPaidServerRootVolumeVolumetypeEnum().SSD},
			DataVolumes: &[]model.PostPaidServerDataVolume{
				{Volumetype: model.GetPostPaidServerDataVolumeVolumetypeEnum().SAS, Size: 10},
				{Volumetype: model.GetPostPaidServerDataVolumeVolumetypeEnum().SSD, Size: 20}}}}})
	if err != nil {
		t.Fatalf("CreatePostPaidServers with data_volumes: %v", err)
	}
	tn.waitJobSuccess(t, jobID(t, resp.JobId))
	id := (*resp.ServerIds)[0]
	bd, err := tn.ecs.ListServerBlockDevices(&model.ListServerBlockDevicesRequest{ServerId: id})
	if err != nil || bd.VolumeAttachments == nil {
		t.Fatalf("ListServerBlockDevices: %v", err)
	}
	var got []string
	for _, d := range *bd.VolumeAttachments {
		got = append(got, str(d.Device)+":"+strconv.Itoa(int(*d.Size)))
	}
	if want := []string{"/dev/vda", "/dev/vdb:10", "/dev/vdc:20"}; len(got) != 3 || got[1] != want[1] || got[2] != want[2] ||
		!strings.HasPrefix(got[0], want[0]+":") {
		t.Errorf("block devices = %v, want %v (system disk first)", got, want)
	}
	if s := tn.show(t, id); s.Status != "ACTIVE" {
		t.Errorf("server is %s, want ACTIVE", s.Status)
	}
}

// TestListVolumesFilters: EVS ListVolumes as the SDK sends it honours
// limit, offset, marker, name, status, server_id, id/ids, availability_zone
// and the sort, with count the number of matches; a bad value is 400
// Ecs.0005 and an undocumented parameter is refused by name.
func TestListVolumesFilters(t *testing.T) {
	t.Parallel()
	d := sharedDaemon(t)
	tn := d.newTenant(t)
	ec := tn.evsClient(t)
	srv := tn.newServer(t, serverSpec{})
	sys := systemVolume(t, tn.show(t, srv))
	a, b, c := tn.newVolume(t, ec, "fa", 30), tn.newVolume(t, ec, "fb", 5), tn.newVolume(t, ec, "fc", 20)
	list := func(r evsmodel.ListVolumesRequest) (int32, []string) {
		t.Helper()
		resp, err := ec.ListVolumes(&r)
		if err != nil {
			t.Fatalf("ListVolumes %+v: %v", r, err)
		}
		var ids []string
		for _, v := range *resp.Volumes {
			ids = append(ids, v.Id)
		}
		return *resp.Count, ids
	}
	want := func(what string, gotCount int32, got []string, count int32, ids ...string) {
		t.Helper()
		if gotCount != count || !slices.Equal(got, ids) {
			t.Errorf("%s: count %d ids %v, want count %d ids %v", what, gotCount, got, count, ids)
		}
	}
	bySize := evsmodel.ListVolumesRequest{SortKey: ptr("size"), SortDir: ptr("asc")}
	n, ids := list(bySize)
	want("sort_key=size asc", n, ids, 4, b, sys, c, a)
	r := bySize
	r.Limit = ptr(int32(2))
	n, ids = list(r)
	want("limit=2", n, ids, 4, b, sys)
	r.Marker = ptr(sys)
	n, ids = list(r)
	want("marker after the first page", n, ids, 4, c, a)
	r = bySize
	r.Offset, r.Limit = ptr(int32(3)), ptr(int32(2))
	n, ids = list(r)
	want("offset=3", n, ids, 4, a)
	n, ids = list(evsmodel.ListVolumesRequest{Name: ptr("fb")})
	want("name=fb", n, ids, 1, b)
	r = bySize
	r.Status = ptr("available")
	n, ids = list(r)
	want("status=available", n, ids, 3, b, c, a)
	n, ids = list(evsmodel.ListVolumesRequest{ServerId: ptr(srv)})
	want("server_id", n, ids, 1, sys)
	n, ids = list(evsmodel.ListVolumesRequest{Id: ptr(c)})
	want("id", n, ids, 1, c)
	r = bySize
	r.Ids = ptr("['" + a + "','" + b + "']")
	n, ids = list(r)
	want("ids", n, ids, 2, b, a)
	n, ids = list(evsmodel.ListVolumesRequest{AvailabilityZone: ptr("az9")})
	want("availability_zone=az9", n, ids, 0)
	r = bySize
	r.EnterpriseProjectId = ptr("0")
	n, ids = list(r)
	want("enterprise_project_id=0", n, ids, 4, b, sys, c, a)
	n, ids = list(evsmodel.ListVolumesRequest{EnterpriseProjectId: ptr("ep-other")})
	want("enterprise_project_id=ep-other", n, ids, 0)
	for _, bad := range []evsmodel.ListVolumesRequest{
		{Limit: ptr(int32(0))}, {Status: ptr("lost")}, {SortKey: ptr("colour")}, {SortDir: ptr("up")},
		{Marker: ptr("00000000-0000-0000-0000-000000000000")}, {ServiceType: ptr("EVS")},
	} {
		_, err := ec.ListVolumes(&bad)
		wantErr(t, err, 400, "Ecs.0005")
	}
}

// TestVolumeDetailFields: ShowVolume's JSON carries every field the EVS
// SDK's VolumeDetail declares without omitempty, typed as it declares
// them (a missing one reads as a silent zero in a client).
func TestVolumeDetailFields(t *testing.T) {
	t.Parallel()
	tn := sharedDaemon(t).main
	srv := tn.newServer(t, serverSpec{})
	sys := systemVolume(t, tn.show(t, srv))
	r := tn.raw(t, rawReq{method: "GET", path: "/v2/{project_id}/cloudvolumes/" + sys})
	var body struct {
		Volume map[string]any `json:"volume"`
	}
	if r.status != 200 || json.Unmarshal(r.body, &body) != nil {
		t.Fatalf("show volume: %d %s", r.status, r.body)
	}
	typ := reflect.TypeOf(evsmodel.VolumeDetail{})
	for i := range typ.NumField() {
		tag := typ.Field(i).Tag.Get("json")
		name, opts, _ := strings.Cut(tag, ",")
		if opts == "omitempty" || name == "-" {
			continue
		}
		if _, ok := body.Volume[name]; !ok {
			t.Errorf("volume has no %q (VolumeDetail.%s)", name, typ.Field(i).Name)
		}
	}
	if md, _ := body.Volume["volume_image_metadata"].(map[string]any); md["image_id"] != tn.show(t, srv).Image.Id {
		t.Errorf("system disk volume_image_metadata = %v, want its image_id", body.Volume["volume_image_metadata"])
	}
}

// TestEVSJobEntities: EVS's ShowJob of a create shows the volume it made
// in entities.volume_id (Terraform's EVS volume reads it there), of a
// batch create one sub-job per volume, and of a delete the volume.
func TestEVSJobEntities(t *testing.T) {
	t.Parallel()
	tn := sharedDaemon(t).main
	ec := tn.evsClient(t)
	show := func(id string) *evsmodel.ShowJobResponse {
		t.Helper()
		j, err := ec.ShowJob(&evsmodel.ShowJobRequest{JobId: id})
		if err != nil {
			t.Fatalf("EVS ShowJob %s: %v", id, err)
		}
		if j.Status == nil || j.Status.Value() != "SUCCESS" || j.Entities == nil {
			t.Fatalf("EVS ShowJob %s = %+v, want SUCCESS with entities", id, j)
		}
		return j
	}
	create := func(count int32) *evsmodel.CreateVolumeResponse {
		t.Helper()
		resp, err := ec.CreateVolume(&evsmodel.CreateVolumeRequest{Body: &evsmodel.CreateVolumeRequestBody{
			Volume: &evsmodel.CreateVolumeOption{Name: ptr("job"), Size: 10, AvailabilityZone: "az1", Count: ptr(count),
				VolumeType: evsmodel.GetCreateVolumeOptionVolumeTypeEnum().SSD}}})
		if err != nil {
			t.Fatalf("CreateVolume: %v", err)
		}
		return resp
	}
	one := create(1)
	vid := (*one.VolumeIds)[0]
	e := show(*one.JobId).Entities
	if str(e.VolumeId) != vid || str(e.Name) != "job" || e.Size == nil || *e.Size != 10 || str(e.VolumeType) != "SSD" {
		t.Errorf("create job entities %+v, want volume_id %s, name job, size 10, type SSD", e, vid)
	}
	two := create(2)
	e = show(*two.JobId).Entities
	if e.SubJobs == nil || len(*e.SubJobs) != 2 {
		t.Fatalf("batch create job entities %+v, want 2 sub_jobs", e)
	}
	for i, sj := range *e.SubJobs {
		if sj.Entities == nil || str(sj.Entities.VolumeId) != (*two.VolumeIds)[i] || sj.JobId == "" || sj.JobId == *two.JobId {
			t.Errorf("sub_jobs[%d] = %+v, want volume_id %s and an id of its own", i, sj, (*two.VolumeIds)[i])
		}
	}
	del, err := ec.DeleteVolume(&evsmodel.DeleteVolumeRequest{VolumeId: vid})
	if err != nil {
		t.Fatalf("DeleteVolume: %v", err)
	}
	if e := show(*del.JobId).Entities; str(e.VolumeId) != vid {
		t.Errorf("delete job entities %+v, want volume_id %s", e, vid)
	}
}

// TestDetachDeleteFailsAfterDetach: a detach with delete_flag=1 whose
// delete fails (the simulator's first delete_disk fails) fails its job
// saying the disk was detached, and leaves the volume available, off the
// server's block devices, rather than shown attached; EVS then deletes it.
func TestDetachDeleteFailsAfterDetach(t *testing.T) {
	t.Parallel()
	d := startDaemon(t, "--faults", "delete_disk=fail:1")
	tn := d.main
	ec := tn.evsClient(t)
	srv := tn.newServer(t, serverSpec{})
	vol := tn.newVolume(t, ec, "dd", 10)
	tn.attach(t, srv, vol, "")
	resp, err := tn.detach(srv, vol, true)
	if err != nil {
		t.Fatalf("DetachServerVolume: %v", err)
	}
	j := tn.waitJob(t, jobID(t, resp.JobId))
	if jobStatus(j) != "FAIL" || !strings.Contains(str(j.FailReason), "detached but could not be deleted") {
		t.Errorf("detach+delete job: %s %s %q, want FAIL saying the disk was detached", jobStatus(j), str(j.ErrorCode),
			str(j.FailReason))
	}
	if v := tn.showVolume(t, ec, vol); v.Status != "available" || len(v.Attachments) != 0 {
		t.Errorf("volume after the failed delete: %s attachments %+v, want available and detached", v.Status, v.Attachments)
	}
	bd, err := tn.ecs.ListServerBlockDevices(&model.ListServerBlockDevicesRequest{ServerId: srv})
	if err != nil {
		t.Fatalf("ListServerBlockDevices: %v", err)
	}
	for _, a := range *bd.VolumeAttachments {
		if str(a.VolumeId) == vol {
			t.Errorf("block_device still lists %s after it was detached", vol)
		}
	}
	tn.wantActive(t, srv)
	del, err := ec.DeleteVolume(&evsmodel.DeleteVolumeRequest{VolumeId: vol})
	if err != nil {
		t.Fatalf("DeleteVolume after the failed delete: %v", err)
	}
	tn.waitJobSuccess(t, jobID(t, del.JobId))
}
