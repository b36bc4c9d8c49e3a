package api

import (
	"bytes"
	"cmp"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"maps"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"

	"github.com/ecsproject/ecsd/internal/cloud"
	"github.com/ecsproject/ecsd/internal/compute"
	"github.com/ecsproject/ecsd/internal/ecs"
)

// Volumes (EVS) and a server's block devices (issue 10).

func (h *Handler) volumeRoutes() []route {
	return []route{
		{"POST", split("/v2/{p}/cloudvolumes"), h.createVolume},
		{"POST", split("/v2.1/{p}/cloudvolumes"), h.createVolume},
		{"GET", split("/v2/{p}/cloudvolumes"), h.listVolumes},
		{"GET", split("/v2/{p}/cloudvolumes/detail"), h.listVolumes},
		{"GET", split("/v2/{p}/cloudvolumes/{}"), h.showVolume},
		{"DELETE", split("/v2/{p}/cloudvolumes/{}"), h.deleteVolume},
		{"POST", split("/v1/{p}/cloudservers/{}/attachvolume"), h.attachVolume},
		{"DELETE", split("/v1/{p}/cloudservers/{}/detachvolume/{}"), h.detachVolume},
		{"GET", split("/v1/{p}/cloudservers/{}/block_device"), h.listBlockDevices},
		{"GET", split("/v1/{p}/cloudservers/{}/block_device/{}"), h.showBlockDevice},
		{"GET", split("/v1/{p}/cloudservers/{}/os-volume_attachments"), h.listVolumeAttachments},
	}
}

type createVolumeBody struct {
	Volume *struct {
		Name             *string `json:"name"`
		Size             *int    `json:"size"`
		VolumeType       *string `json:"volume_type"`
		AvailabilityZone *string `json:"availability_zone"`
		Count            *int    `json:"count"`
		// The documented fields ecsd does not implement: refused by
		// name unless absent or empty (false for multiattach, "0" for
		// enterprise_project_id), never silently dropped.
		Description         json.RawMessage `json:"description"`
		BackupID            json.RawMessage `json:"backup_id"`
		SnapshotID          json.RawMessage `json:"snapshot_id"`
		ImageRef            json.RawMessage `json:"imageRef"`
		Metadata            json.RawMessage `json:"metadata"`
		Multiattach         json.RawMessage `json:"multiattach"`
		Tags                json.RawMessage `json:"tags"`
		IOPS                json.RawMessage `json:"iops"`
		Throughput          json.RawMessage `json:"throughput"`
		EnterpriseProjectID json.RawMessage `json:"enterprise_project_id"`
	} `json:"volume"`
	BssParam       *createVolumeBss `json:"bssParam"`
	ServerID       json.RawMessage  `json:"server_id"`
	SchedulerHints json.RawMessage  `json:"OS-SCH-HNT:scheduler_hints"`
}

// createVolumeBss is the EVS create's bssParam: pay-per-use only, as for
// servers.
type createVolumeBss struct {
	ChargingMode *string `json:"chargingMode"`
}

// unsetJSON reports whether a raw JSON value is absent or empty: null,
// "", false, 0, {} or [] (or one of the JSON texts also lists).
func unsetJSON(raw json.RawMessage, also ...string) bool {
	s := string(bytes.TrimSpace(raw))
	switch s {
	case "", "null", `""`, "false", "0", "{}", "[]":
		return true
	}
	return slices.Contains(also, s)
}

// volumeMetadataDefaults are the EVS create metadata keys ecsd honours
// with the one value that says what its volumes are: not SCSI, not
// encrypted.
var volumeMetadataDefaults = map[string]string{"hw:passthrough": "false", "__system__encrypted": "0"}

// checkVolumeMetadata refuses EVS create metadata other than the defaults
// ecsd's volumes have, naming the key.
func checkVolumeMetadata(raw json.RawMessage) error {
	if unsetJSON(raw) {
		return nil
	}
	var md map[string]string
	if err := json.Unmarshal(raw, &md); err != nil {
		return ecs.Errorf(ecs.CodeInvalidParam, "Invalid parameter: volume.metadata must be an object of strings.")
	}
	keys := slices.Sorted(maps.Keys(md))
	for _, k := range keys {
		if want, ok := volumeMetadataDefaults[k]; !ok || md[k] != want {
			return ecs.Errorf(ecs.CodeInvalidParam, "Invalid parameter: volume.metadata %q=%q is not supported: ecsd's volumes are "+
				"virtio (hw:passthrough \"false\") and not encrypted (__system__encrypted \"0\"); leave it out.",
				safeField(k), safeField(md[k]))
		}
	}
	return nil
}

// unsupported refuses, by name, a documented EVS create field
// that ecsd does not implement and that the request sets.
func (b *createVolumeBody) unsupported() error {
	v := b.Volume
	fields := []struct {
		name string
		raw  json.RawMessage
		also []string
	}{
		{"volume.description", v.Description, nil},
		{"volume.backup_id", v.BackupID, nil},
		{"volume.snapshot_id", v.SnapshotID, nil},
		{"volume.imageRef", v.ImageRef, nil},
		{"volume.multiattach", v.Multiattach, nil},
		{"volume.tags", v.Tags, nil},
		{"volume.iops", v.IOPS, nil},
		{"volume.throughput", v.Throughput, nil},
		{"volume.enterprise_project_id", v.EnterpriseProjectID, []string{`"0"`}},
		{"server_id", b.ServerID, nil},
		{"OS-SCH-HNT:scheduler_hints", b.SchedulerHints, nil},
	}
	if err := checkVolumeMetadata(v.Metadata); err != nil {
		return err
	}
	for _, f := range fields {
		if !unsetJSON(f.raw, f.also...) {
			return ecs.Errorf(ecs.CodeInvalidParam, "Invalid parameter: %s is not supported by ecsd's EVS create; leave it out.", f.name)
		}
	}
	if b.BssParam != nil && b.BssParam.ChargingMode != nil && *b.BssParam.ChargingMode != "postPaid" {
		return ecs.Errorf(ecs.CodeInvalidParam, "Invalid parameter: bssParam.chargingMode must be postPaid: ecsd has no "+
			"yearly/monthly billing.")
	}
	return nil
}

type createVolumeResult struct {
	JobID     string   `json:"job_id"`
	VolumeIDs []string `json:"volume_ids"`
}

func (h *Handler) createVolume(w http.ResponseWriter, req *request) error {
	var b createVolumeBody
	if err := decode(req.body, &b); err != nil {
		return err
	}
	if b.Volume == nil {
		return ecs.Errorf(ecs.CodeInvalidParam, "Invalid parameter: volume is required.")
	}
	if b.Volume.Size == nil {
		return ecs.Errorf(ecs.CodeInvalidParam, "Invalid parameter: volume.size is required.")
	}
	if err := b.unsupported(); err != nil {
		return err
	}
	in := cloud.VolumeInput{SizeGB: *b.Volume.Size}
	if b.Volume.Name != nil {
		in.Name = *b.Volume.Name
	}
	if b.Volume.VolumeType != nil {
		in.VolumeType = *b.Volume.VolumeType
	}
	if b.Volume.AvailabilityZone != nil {
		in.AZ = *b.Volume.AvailabilityZone
	}
	if b.Volume.Count != nil {
		in.Count = *b.Volume.Count
		if in.Count == 0 {
			return ecs.Errorf(ecs.CodeInvalidParam, "Invalid parameter: volume.count must be 1 to 100.")
		}
	}
	job, ids, err := h.svc.CreateVolumes(req.r.Context(), req.caller, in)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, createVolumeResult{JobID: job, VolumeIDs: ids})
}

type wireEVSLink struct {
	Href string `json:"href"`
	Rel  string `json:"rel"`
}

type wireEVSAttachment struct {
	ServerID     string `json:"server_id"`
	AttachmentID string `json:"attachment_id"`
	AttachedAt   string `json:"attached_at"`
	HostName     string `json:"host_name"`
	VolumeID     string `json:"volume_id"`
	Device       string `json:"device"`
	ID           string `json:"id"`
}

type wireVolume struct {
	ID               string              `json:"id"`
	Links            []wireEVSLink       `json:"links"`
	Name             string              `json:"name"`
	Status           string              `json:"status"`
	Attachments      []wireEVSAttachment `json:"attachments"`
	AvailabilityZone string              `json:"availability_zone"`
	Host             string              `json:"os-vol-host-attr:host"`
	TenantID         string              `json:"os-vol-tenant-attr:tenant_id"`
	VolumeType       string              `json:"volume_type"`
	Size             int                 `json:"size"`
	Bootable         string              `json:"bootable"`
	Shareable        string              `json:"shareable"`
	Multiattach      bool                `json:"multiattach"`
	CreatedAt        string              `json:"created_at"`
	UpdatedAt        string              `json:"updated_at"`
	Metadata         map[string]any      `json:"metadata"`
	Tags             map[string]string   `json:"tags"`
	// The rest of EVS's VolumeDetail, which the SDK's model declares:
	// what ecsd's volumes are (no snapshot, replication, migration or
	// encryption; the EVS service; the default enterprise project).
	SnapshotID          string         `json:"snapshot_id"`
	Description         string         `json:"description"`
	ImageMetadata       map[string]any `json:"volume_image_metadata"`
	ReplicationStatus   string         `json:"replication_status"`
	ReplicationExtended string         `json:"os-volume-replication:extended_status"`
	MigrationStatus     string         `json:"os-vol-mig-status-attr:migstat"`
	MigrationNameID     string         `json:"os-vol-mig-status-attr:name_id"`
	UserID              string         `json:"user_id"`
	ServiceType         string         `json:"service_type"`
	Encrypted           bool           `json:"encrypted"`
	EnterpriseProjectID string         `json:"enterprise_project_id"`
}

const evsTime = "2006-01-02T15:04:05.000000"

func toWireVolume(v *ecs.Volume) wireVolume {
	w := wireVolume{ID: v.ID, Links: []wireEVSLink{}, Name: v.Name, Status: v.Status, Attachments: []wireEVSAttachment{},
		AvailabilityZone: volumeAZ, Host: v.Host, TenantID: v.ProjectID, VolumeType: v.VolumeType, Size: v.SizeGB,
		Bootable: strconv.FormatBool(v.ImageID != ""), Shareable: "false", CreatedAt: fmtTime(v.Created, evsTime),
		UpdatedAt: fmtTime(v.Created, evsTime), Metadata: map[string]any{}, Tags: map[string]string{},
		ImageMetadata: map[string]any{}, ReplicationStatus: "disabled", ServiceType: "EVS", EnterpriseProjectID: "0"}
	if v.ImageID != "" {
		w.ImageMetadata["image_id"] = v.ImageID
	}
	if v.ServerID != "" {
		w.Attachments = append(w.Attachments, wireEVSAttachment{ServerID: v.ServerID, AttachmentID: v.ID, HostName: v.Host,
			VolumeID: v.ID, Device: v.Device, ID: v.ID, AttachedAt: fmtTime(v.Created, evsTime)})
	}
	return w
}

// volumeListParams are the EVS ListVolumes query parameters ecsd honours;
// the other documented ones (metadata, not_metadata, service_type,
// volume_type_id, dedicated storage) are refused by name.
var volumeListParams = []string{"limit", "offset", "marker", "name", "status", "availability_zone", "multiattach", "id",
	"ids", "server_id", "sort_key", "sort_dir", "enterprise_project_id"}

// volumeStatuses are the statuses a volume shows.
var volumeStatuses = []string{ecs.VolumeAvailable, ecs.VolumeInUse, ecs.VolumeAttaching, ecs.VolumeDetaching,
	ecs.VolumeDeleting, "creating"}

// volumeFilter is a checked EVS ListVolumes query.
type volumeFilter struct {
	limit, offset          int
	marker                 string
	name, status, serverID string
	az                     string
	multiattach            *bool
	// noEnterpriseProject: an enterprise project other than 0 was asked
	// for: no volume matches.
	noEnterpriseProject bool
	ids                 []string // nil: any
	sortKey             string
	desc                bool
}

func parseVolumeFilter(q url.Values) (volumeFilter, error) {
	f := volumeFilter{sortKey: "created_at"}
	if err := checkQuery(q, volumeListParams...); err != nil {
		return f, err
	}
	var err error
	if f.limit, err = queryInt(q.Get("limit"), "limit", 1000, 1, 1000); err != nil {
		return f, err
	}
	if f.offset, err = queryInt(q.Get("offset"), "offset", 0, 0, 1<<30); err != nil {
		return f, err
	}
	if q.Has("offset") && q.Has("marker") {
		return f, ecs.Errorf(ecs.CodeInvalidParam, "Invalid parameter: give offset or marker, not both.")
	}
	f.marker, f.name, f.serverID, f.az = q.Get("marker"), q.Get("name"), q.Get("server_id"), q.Get("availability_zone")
	// One enterprise project, 0, as for servers: 0 and all_granted_eps
	// match every volume, another one none.
	if ep := q.Get("enterprise_project_id"); ep != "" && ep != "0" && ep != "all_granted_eps" {
		f.noEnterpriseProject = true
	}
	if f.status = q.Get("status"); f.status != "" && !slices.Contains(volumeStatuses, f.status) {
		return f, ecs.Errorf(ecs.CodeInvalidParam, "Invalid parameter: status must be one of %s.", strings.Join(volumeStatuses, ", "))
	}
	if v := q.Get("multiattach"); v != "" {
		b, err := strconv.ParseBool(v)
		if err != nil {
			return f, ecs.Errorf(ecs.CodeInvalidParam, "Invalid parameter: multiattach must be true or false.")
		}
		f.multiattach = &b
	}
	if q.Has("id") {
		f.ids = []string{q.Get("id")}
	}
	if v := q.Get("ids"); v != "" {
		// EVS writes the list as ['id1','id2']; a plain comma list is
		// taken too.
		v = strings.TrimSuffix(strings.TrimPrefix(v, "["), "]")
		items, err := commaList(v, "ids")
		if err != nil {
			return f, err
		}
		if len(items) > 60 {
			return f, ecs.Errorf(ecs.CodeInvalidParam, "Invalid parameter: ids takes at most 60 ids.")
		}
		var ids []string
		for _, it := range items {
			it = strings.Trim(strings.TrimSpace(it), `'"`)
			if f.ids == nil || slices.Contains(f.ids, it) {
				ids = append(ids, it)
			}
		}
		f.ids = append([]string{}, ids...)
	}
	switch k := q.Get("sort_key"); k {
	case "", "created_at", "id", "status", "size", "name":
		if k != "" {
			f.sortKey = k
		}
	default:
		return f, ecs.Errorf(ecs.CodeInvalidParam, "Invalid parameter: sort_key must be one of id, status, size, name and created_at.")
	}
	switch d := q.Get("sort_dir"); d {
	case "", "desc":
		f.desc = true
	case "asc":
	default:
		return f, ecs.Errorf(ecs.CodeInvalidParam, "Invalid parameter: sort_dir must be asc or desc.")
	}
	return f, nil
}

func (f *volumeFilter) match(v *ecs.Volume) bool {
	switch {
	case f.name != "" && v.Name != f.name,
		f.status != "" && v.Status != f.status,
		f.serverID != "" && v.ServerID != f.serverID,
		f.az != "" && f.az != volumeAZ,
		f.multiattach != nil && *f.multiattach,
		f.noEnterpriseProject,
		f.ids != nil && !slices.Contains(f.ids, v.ID):
		return false
	}
	return true
}

// sort orders vols as the query asks (default: the newest first, as EVS
// does), ties broken by id.
func (f *volumeFilter) sort(vols []ecs.Volume) {
	slices.SortStableFunc(vols, func(a, b ecs.Volume) int {
		var c int
		switch f.sortKey {
		case "id":
		case "status":
			c = strings.Compare(a.Status, b.Status)
		case "size":
			c = cmp.Compare(a.SizeGB, b.SizeGB)
		case "name":
			c = strings.Compare(a.Name, b.Name)
		default:
			c = a.Created.Compare(b.Created)
		}
		if c == 0 {
			c = strings.Compare(a.ID, b.ID)
		}
		if f.desc {
			c = -c
		}
		return c
	})
}

// volumeAZ is the one availability zone volumes show.
const volumeAZ = "az1"

// listVolumes serves EVS ListVolumes (/cloudvolumes and /cloudvolumes/detail):
// the project's volumes that match the filters, sorted, then one page
// (offset, or the volumes after marker; limit); count is the number of
// volumes that match.
func (h *Handler) listVolumes(w http.ResponseWriter, req *request) error {
	f, err := parseVolumeFilter(req.r.URL.Query())
	if err != nil {
		return err
	}
	vols, err := h.svc.ListVolumes(req.r.Context(), req.caller)
	if err != nil {
		return err
	}
	matched := vols[:0]
	for _, v := range vols {
		if f.match(&v) {
			matched = append(matched, v)
		}
	}
	f.sort(matched)
	page := matched
	if f.marker != "" {
		i := slices.IndexFunc(page, func(v ecs.Volume) bool { return v.ID == f.marker })
		if i < 0 {
			return ecs.Errorf(ecs.CodeInvalidParam, "Invalid parameter: marker %s is not a volume of the list.", safeField(f.marker))
		}
		page = page[i+1:]
	}
	page = page[min(f.offset, len(page)):]
	page = page[:min(f.limit, len(page))]
	out := struct {
		Count   int          `json:"count"`
		Volumes []wireVolume `json:"volumes"`
	}{Count: len(matched), Volumes: make([]wireVolume, 0, len(page))}
	for i := range page {
		out.Volumes = append(out.Volumes, toWireVolume(&page[i]))
	}
	return writeJSON(w, http.StatusOK, out)
}

func (h *Handler) showVolume(w http.ResponseWriter, req *request) error {
	v, err := h.svc.GetVolume(req.r.Context(), req.caller, req.params[0])
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, struct {
		Volume wireVolume `json:"volume"`
	}{toWireVolume(&v)})
}

func (h *Handler) deleteVolume(w http.ResponseWriter, req *request) error {
	job, err := h.svc.DeleteVolume(req.r.Context(), req.caller, req.params[0])
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, jobIDBody{JobID: job})
}

type attachVolumeBody struct {
	VolumeAttachment *struct {
		VolumeID *string `json:"volumeId"`
		Device   *string `json:"device"`
		// Dedicated-storage and SCSI attach fields: refused unless absent
		// or empty ("false" for hw:passthrough), never dropped.
		VolumeType  json.RawMessage `json:"volume_type"`
		Count       json.RawMessage `json:"count"`
		Passthrough json.RawMessage `json:"hw:passthrough"`
	} `json:"volumeAttachment"`
	DryRun *bool `json:"dry_run"`
}

// unsupported refuses, by name, the documented attach fields ecsd does not
// implement: a dedicated storage's volume_type and count, and SCSI
// passthrough (ecsd attaches virtio disks).
func (b *attachVolumeBody) unsupported() error {
	a := b.VolumeAttachment
	for _, f := range []struct {
		name string
		raw  json.RawMessage
	}{{"volume_type", a.VolumeType}, {"count", a.Count}, {"hw:passthrough", a.Passthrough}} {
		if !unsetJSON(f.raw, `"false"`) {
			return ecs.Errorf(ecs.CodeInvalidParam, "Invalid parameter: volumeAttachment.%s is not supported: ecsd attaches "+
				"EVS volumes as virtio disks, without dedicated storage or SCSI passthrough.", f.name)
		}
	}
	return nil
}

func (h *Handler) attachVolume(w http.ResponseWriter, req *request) error {
	var b attachVolumeBody
	if err := decode(req.body, &b); err != nil {
		return err
	}
	if b.VolumeAttachment == nil {
		return ecs.Errorf(ecs.CodeInvalidParam, "Invalid parameter: volumeAttachment is required.")
	}
	if b.VolumeAttachment.VolumeID == nil || *b.VolumeAttachment.VolumeID == "" {
		return ecs.Errorf(ecs.CodeInvalidParam, "Invalid parameter: volumeAttachment.volumeId is required.")
	}
	if b.DryRun != nil && *b.DryRun {
		return ecs.Errorf(ecs.CodeInvalidParam, "Invalid parameter: dry_run is not supported by this API.")
	}
	if err := b.unsupported(); err != nil {
		return err
	}
	device := ""
	if b.VolumeAttachment.Device != nil {
		device = *b.VolumeAttachment.Device
	}
	job, err := h.svc.AttachVolume(req.r.Context(), req.caller, req.params[0], *b.VolumeAttachment.VolumeID, device)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, jobIDBody{JobID: job})
}

func (h *Handler) detachVolume(w http.ResponseWriter, req *request) error {
	q := req.r.URL.Query()
	if err := checkQuery(q, "delete_flag"); err != nil {
		return err
	}
	del := false
	switch q.Get("delete_flag") {
	case "", "0":
	case "1":
		del = true
	default:
		return ecs.Errorf(ecs.CodeInvalidParam, "Invalid parameter: delete_flag must be 0 or 1.")
	}
	job, err := h.svc.DetachVolume(req.r.Context(), req.caller, req.params[0], req.params[1], del)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, jobIDBody{JobID: job})
}

type wireBlockDevice struct {
	ID         string `json:"id"`
	ServerID   string `json:"serverId"`
	VolumeID   string `json:"volumeId"`
	Device     string `json:"device"`
	BootIndex  int    `json:"bootIndex"`
	Size       int    `json:"size"`
	Bus        string `json:"bus"`
	PCIAddress string `json:"pciAddress"`
}

// bootIndex is 0 for the system disk, -1 for a data disk (our choice).
func bootIndex(srv *ecs.Server, v *ecs.Volume) int {
	if v.ID == srv.SystemVolumeID {
		return 0
	}
	return -1
}

func toWireBlockDevice(srv *ecs.Server, v *ecs.Volume, slot int) wireBlockDevice {
	return wireBlockDevice{ID: v.ID, ServerID: srv.ID, VolumeID: v.ID, Device: v.Device, BootIndex: bootIndex(srv, v),
		Size: v.SizeGB, Bus: "virtio", PCIAddress: "0000:00:" + strconv.FormatInt(int64(5+slot), 16) + ".0"}
}

// attachedNow keeps the volumes that are attached (in-use or detaching):
// one being attached is not yet a block device.
func attachedNow(vols []ecs.Volume) []ecs.Volume {
	var out []ecs.Volume
	for _, v := range vols {
		if v.Status == ecs.VolumeInUse || v.Status == ecs.VolumeDetaching {
			out = append(out, v)
		}
	}
	return out
}

func (h *Handler) listBlockDevices(w http.ResponseWriter, req *request) error {
	srv, vols, err := h.svc.ServerVolumes(req.r.Context(), req.caller, req.params[0])
	if err != nil {
		return err
	}
	vols = attachedNow(vols)
	data := 0
	out := struct {
		AttachableQuantity struct {
			FreeSCSI int `json:"free_scsi"`
			FreeBlk  int `json:"free_blk"`
			FreeDisk int `json:"free_disk"`
		} `json:"attachableQuantity"`
		VolumeAttachments []wireBlockDevice `json:"volumeAttachments"`
	}{VolumeAttachments: []wireBlockDevice{}}
	for i := range vols {
		if vols[i].ID != srv.SystemVolumeID {
			data++
		}
		out.VolumeAttachments = append(out.VolumeAttachments, toWireBlockDevice(&srv, &vols[i], i))
	}
	free := max(compute.MaxDataDisks-data, 0)
	out.AttachableQuantity.FreeBlk, out.AttachableQuantity.FreeDisk = free, free
	return writeJSON(w, http.StatusOK, out)
}

func (h *Handler) showBlockDevice(w http.ResponseWriter, req *request) error {
	srv, vols, err := h.svc.ServerVolumes(req.r.Context(), req.caller, req.params[0])
	if err != nil {
		return err
	}
	vols = attachedNow(vols)
	for i := range vols {
		if vols[i].ID == req.params[1] {
			return writeJSON(w, http.StatusOK, struct {
				VolumeAttachment wireBlockDevice `json:"volumeAttachment"`
			}{toWireBlockDevice(&srv, &vols[i], i)})
		}
	}
	return ecs.Errorf(ecs.CodeVolumeNotAttached, "The disk %s is not attached to ECS %s.", safeField(req.params[1]), srv.ID)
}

type wireNovaAttachment struct {
	Device   string `json:"device"`
	ID       string `json:"id"`
	ServerID string `json:"serverId"`
	VolumeID string `json:"volumeId"`
}

func (h *Handler) listVolumeAttachments(w http.ResponseWriter, req *request) error {
	srv, vols, err := h.svc.ServerVolumes(req.r.Context(), req.caller, req.params[0])
	if err != nil {
		return err
	}
	vols = attachedNow(vols)
	out := struct {
		VolumeAttachments []wireNovaAttachment `json:"volumeAttachments"`
	}{VolumeAttachments: []wireNovaAttachment{}}
	for _, v := range vols {
		out.VolumeAttachments = append(out.VolumeAttachments, wireNovaAttachment{Device: v.Device, ID: v.ID, ServerID: srv.ID, VolumeID: v.ID})
	}
	return writeJSON(w, http.StatusOK, out)
}

// withVolumes sets a wire server's os-extended-volumes:volumes_attached
// from its attached volumes (system disk first; toWireServer shows the
// system disk alone).
func withVolumes(w *wireServer, srv *ecs.Server, vols []ecs.Volume) {
	vols = attachedNow(vols)
	if len(vols) == 0 {
		return
	}
	w.Volumes = []wireVolumeAttachment{}
	for i := range vols {
		v := &vols[i]
		a := wireVolumeAttachment{ID: v.ID, DeleteOnTermination: "false", BootIndex: strconv.Itoa(bootIndex(srv, v)), Device: v.Device}
		if v.ID == srv.SystemVolumeID {
			a.DeleteOnTermination = "true"
		}
		w.Volumes = append(w.Volumes, a)
	}
}

func derefInt(p *int) int {
	if p == nil {
		return 0
	}
	return *p
}

// EVS jobs (createVolume, deleteVolume) on the wire: EVS's ShowJob shape,
// entities.volume_id (with the name, size and type of a create) for one
// volume, entities.sub_jobs (one per volume, each with its volume_id) for
// a batch create.

type wireEVSEntities struct {
	VolumeID   string `json:"volume_id,omitempty"`
	VolumeType string `json:"volume_type,omitempty"`
	Size       int    `json:"size,omitempty"`
	Name       string `json:"name,omitempty"`
}

type wireEVSSubJob struct {
	wireJobHead
	Entities wireEVSEntities `json:"entities"`
}

type wireEVSJob struct {
	wireJobHead
	Entities struct {
		wireEVSEntities
		SubJobs []wireEVSSubJob `json:"sub_jobs,omitempty"`
	} `json:"entities"`
}

func toWireEVSJob(j *ecs.Job, e cloud.EVSJob) wireEVSJob {
	w := wireEVSJob{wireJobHead: jobHead(j)}
	entities := func(i int) wireEVSEntities {
		en := wireEVSEntities{VolumeID: e.VolumeIDs[i], VolumeType: e.VolumeType, Size: e.SizeGB}
		if i < len(e.Names) {
			en.Name = e.Names[i]
		}
		return en
	}
	if len(e.VolumeIDs) == 1 {
		w.Entities.wireEVSEntities = entities(0)
		return w
	}
	w.Entities.wireEVSEntities = wireEVSEntities{VolumeType: e.VolumeType, Size: e.SizeGB}
	for i, id := range e.VolumeIDs {
		sub := wireEVSSubJob{wireJobHead: jobHead(j), Entities: entities(i)}
		sub.JobID = evsSubJobID(j.ID, id)
		w.Entities.SubJobs = append(w.Entities.SubJobs, sub)
	}
	return w
}

// evsSubJobID is the stable id of a batch create's sub-job for one volume
// (the sub-jobs are not stored: the create is finished when it answers).
func evsSubJobID(jobID, volumeID string) string {
	sum := sha256.Sum256([]byte(jobID + "/" + volumeID))
	return hex.EncodeToString(sum[:16])
}
