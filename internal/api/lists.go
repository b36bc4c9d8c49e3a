package api

import (
	"errors"
	"net/http"
	"net/url"
	"slices"
	"sort"
	"strconv"
	"strings"

	"github.com/ecsproject/ecsd/internal/cloud"
	"github.com/ecsproject/ecsd/internal/ecs"
	"github.com/ecsproject/ecsd/internal/store"
)

// The list and show calls: servers (ListServersDetails), flavors
// (ListFlavors), images (IMS ListImages, Glance's show) and a server's
// interfaces (ListServerInterfaces). Every documented query parameter is
// honoured or refused with a 400 naming it; a parameter no call documents is
// refused the same way.

// checkQuery refuses the first parameter of q (in name order) that is not
// in known.
func checkQuery(q url.Values, known ...string) error {
	var unknown []string
	for k := range q {
		if !slices.Contains(known, k) {
			unknown = append(unknown, k)
		}
	}
	if len(unknown) == 0 {
		return nil
	}
	slices.Sort(unknown)
	return ecs.Errorf(ecs.CodeInvalidParam, "Invalid parameter: the query parameter %q is not supported by this API.",
		safeField(unknown[0]))
}

// serverListParams are ListServersDetails' documented query parameters.
var serverListParams = []string{"offset", "limit", "name", "status", "flavor", "ip", "ip_eq", "tags", "not-tags",
	"reservation_id", "enterprise_project_id", "server_id", "marker"}

// serverStatuses are the statuses the status filter takes (the SDK's list
// and REBUILD, which servers show during a reinstall).
var serverStatuses = []string{"ACTIVE", "BUILD", "DELETED", "ERROR", "HARD_REBOOT", "MIGRATING", "REBOOT", "REBUILD", "RESIZE",
	"REVERT_RESIZE", "SHELVED", "SHELVED_OFFLOADED", "SHUTOFF", "UNKNOWN", "VERIFY_RESIZE"}

// maxServerIDs bounds server_id's list.
const maxServerIDs = 1000

type listServersBody struct {
	Count   int   `json:"count"`
	Servers []any `json:"servers"`
}

// missingServer is what the list shows for a server_id of no server of the
// project: its id and a fault, every other field null (as documented).
type missingServer struct {
	ID    string    `json:"id"`
	Fault wireFault `json:"fault"`
}

// commaList splits a comma-separated parameter; an empty item is refused.
func commaList(v, name string) ([]string, error) {
	items := strings.Split(v, ",")
	for _, it := range items {
		if it == "" {
			return nil, ecs.Errorf(ecs.CodeInvalidParam, "Invalid parameter: %s has an empty item.", name)
		}
	}
	return items, nil
}

func (h *Handler) listServers(w http.ResponseWriter, req *request) error {
	q := req.r.URL.Query()
	if err := checkQuery(q, serverListParams...); err != nil {
		return err
	}
	// offset is a page number from 1; 0 also means the first page.
	page, err := queryInt(q.Get("offset"), "offset", 1, 0, 1<<30)
	if err != nil {
		return err
	}
	page = max(page, 1)
	limit, err := queryInt(q.Get("limit"), "limit", 25, 1, 1000)
	if err != nil {
		return err
	}
	p := store.ServerListParams{Name: q.Get("name"), FlavorID: q.Get("flavor"), IP: q.Get("ip"), IPEq: q.Get("ip_eq"),
		ReservationID: q.Get("reservation_id"), Marker: q.Get("marker"), Limit: limit}
	if st := q.Get("status"); st != "" {
		p.Status = strings.ToUpper(st)
		if !slices.Contains(serverStatuses, p.Status) {
			return ecs.Errorf(ecs.CodeInvalidParam, "Invalid parameter: status must be one of %s.", strings.Join(serverStatuses, ", "))
		}
	}
	if p.Marker != "" && page > 1 {
		return ecs.Errorf(ecs.CodeInvalidParam, "Invalid parameter: offset cannot be combined with marker (the marker says where the page starts).")
	}
	p.Offset = (page - 1) * limit
	for _, f := range []struct {
		name string
		dst  *[]string
	}{{"tags", &p.Tags}, {"not-tags", &p.NotTags}} {
		if v := q.Get(f.name); v != "" {
			if *f.dst, err = commaList(v, f.name); err != nil {
				return err
			}
		}
	}
	// ecsd has one enterprise project, "0" (the default one): every server
	// is in it, and in no other.
	if ep := q.Get("enterprise_project_id"); ep != "" && ep != "0" && ep != "all_granted_eps" {
		return writeJSON(w, http.StatusOK, listServersBody{Count: 0, Servers: []any{}})
	}
	var ids []string
	if v := q.Get("server_id"); v != "" {
		// Documented: server_id is used alone; ecsd refuses another filter
		// with it rather than ignore that filter.
		for _, other := range []string{"name", "status", "flavor", "ip", "ip_eq", "tags", "not-tags", "reservation_id"} {
			if q.Get(other) != "" {
				return ecs.Errorf(ecs.CodeInvalidParam, "Invalid parameter: %s cannot be combined with server_id.", other)
			}
		}
		if ids, err = commaList(v, "server_id"); err != nil {
			return err
		}
		if len(ids) > maxServerIDs {
			return ecs.Errorf(ecs.CodeInvalidParam, "Invalid parameter: server_id names at most %d ECSs.", maxServerIDs)
		}
		p.ServerIDs = ids
	}
	servers, total, err := h.svc.ListServers(req.r.Context(), req.caller, p)
	if errors.Is(err, ecs.ErrNotFound) && p.Marker != "" {
		return ecs.Errorf(ecs.CodeInvalidParam, "Invalid parameter: marker %s is not an ECS of this project.", safeField(p.Marker))
	}
	if err != nil {
		return err
	}
	attached, err := h.svc.ProjectAttachments(req.r.Context(), req.caller)
	if err != nil {
		return err
	}
	states, err := h.svc.HostStates(req.r.Context())
	if err != nil {
		return err
	}
	out := listServersBody{Count: total, Servers: make([]any, 0, len(servers))}
	for i := range servers {
		ws := toWireServer(&servers[i])
		ws.HostStatus = hostStatus(states(servers[i].Host))
		withVolumes(&ws, &servers[i], attached[servers[i].ID])
		out.Servers = append(out.Servers, ws)
	}
	if len(ids) > 0 {
		// An id of no server of the project shows as documented: the id
		// and a fault. They follow the servers found, in request order.
		found := map[string]bool{}
		for _, s := range servers {
			found[s.ID] = true
		}
		if p.Marker == "" && p.Offset == 0 && total <= limit {
			seen := map[string]bool{}
			for _, id := range ids {
				if !found[id] && !seen[id] && len(out.Servers) < limit {
					seen[id] = true
					out.Servers = append(out.Servers, missingServer{ID: safeField(id),
						Fault: wireFault{Code: 404, Message: "The ECS does not exist."}})
					out.Count++
				}
			}
		}
	}
	return writeJSON(w, http.StatusOK, out)
}

// ---- a server's interfaces

type wireInterface struct {
	PortState           string        `json:"port_state"`
	FixedIPs            []wireFixedIP `json:"fixed_ips"`
	NetID               string        `json:"net_id"`
	PortID              string        `json:"port_id"`
	MacAddr             string        `json:"mac_addr"`
	DeleteOnTermination bool          `json:"delete_on_termination"`
}

type wireFixedIP struct {
	SubnetID  string `json:"subnet_id"`
	IPAddress string `json:"ip_address"`
}

// listInterfaces answers ListServerInterfaces from the server's NICs: one
// attachment per NIC, the primary first.
func (h *Handler) listInterfaces(w http.ResponseWriter, req *request) error {
	s, err := h.svc.GetServer(req.r.Context(), req.caller, req.params[0])
	if err != nil {
		return err
	}
	out := []wireInterface{}
	for _, n := range serverNICs(&s) {
		out = append(out, wireInterface{PortState: "ACTIVE", FixedIPs: []wireFixedIP{{SubnetID: n.SubnetID, IPAddress: n.IP}},
			NetID: n.SubnetID, PortID: n.PortID, MacAddr: macFor(n.PortID), DeleteOnTermination: true})
	}
	return writeJSON(w, http.StatusOK, map[string]any{"interfaceAttachments": out})
}

// ---- flavors

// flavorAZs are the availability zones the flavors are offered in (the
// create's default zone; ecsd has one).
var flavorAZs = []string{"az1"}

func toWireFlavor(f ecs.Flavor) wireFlavor {
	self := "/v1/flavors/" + f.ID
	return wireFlavor{ID: f.ID, Name: f.Name, VCPUs: strconv.Itoa(f.VCPUs), RAM: f.RAMMB, Disk: strconv.Itoa(f.DiskGB),
		RxtxFactor: 1, IsPublic: true,
		Links: []wireLink{{Href: self, Rel: "self", Type: ""}, {Href: self, Rel: "bookmark", Type: ""}},
		ExtraSpecs: map[string]string{
			"ecs:performancetype":          "normal",
			"ecs:generation":               strings.SplitN(f.ID, ".", 2)[0],
			"ecs:virtualization_env_types": "CloudCompute",
			"ecs:instance_architecture":    "x86",
			"resource_type":                "IOoptimizedS6",
			"cond:operation:status":        "normal",
			"cond:operation:az":            "az1(normal)",
			"quota:vif_max_num":            "12",
			"instance_vnic:max_count":      "12",
			"hw:numa_nodes":                "1",
		}}
}

// listFlavors is ListFlavors: availability_zone and flavor_id filter,
// marker (a flavor id) and limit page, in id order.
func (h *Handler) listFlavors(w http.ResponseWriter, req *request) error {
	q := req.r.URL.Query()
	if err := checkQuery(q, "availability_zone", "flavor_id", "limit", "marker"); err != nil {
		return err
	}
	limit, err := queryInt(q.Get("limit"), "limit", 0, 1, 1<<30)
	if err != nil {
		return err
	}
	flavors := slices.Clone(cloud.Flavors)
	sort.Slice(flavors, func(i, j int) bool { return flavors[i].ID < flavors[j].ID })
	marker := q.Get("marker")
	if marker != "" && !slices.ContainsFunc(flavors, func(f ecs.Flavor) bool { return f.ID == marker }) {
		return ecs.Errorf(ecs.CodeInvalidParam, "Invalid parameter: marker %s is not a flavor.", safeField(marker))
	}
	out := make([]wireFlavor, 0, len(flavors))
	az, id := q.Get("availability_zone"), q.Get("flavor_id")
	for _, f := range flavors {
		switch {
		case az != "" && !slices.Contains(flavorAZs, az), id != "" && f.ID != id, marker != "" && f.ID <= marker:
			continue
		}
		if limit > 0 && len(out) == limit {
			break
		}
		out = append(out, toWireFlavor(f))
	}
	return writeJSON(w, http.StatusOK, map[string]any{"flavors": out})
}

// ---- images

// imageFilters maps each ListImages filter ecsd honours to the image's
// wire value it is compared with (exactly).
var imageFilters = map[string]func(w *wireImage) string{
	"__imagetype":      func(w *wireImage) string { return w.ImageType },
	"__isregistered":   func(w *wireImage) string { return w.IsRegistered },
	"__os_bit":         func(w *wireImage) string { return w.OSBit },
	"__os_type":        func(w *wireImage) string { return w.OSType },
	"__platform":       func(w *wireImage) string { return w.Platform },
	"__support_kvm":    func(w *wireImage) string { return w.SupportKVM },
	"container_format": func(w *wireImage) string { return w.ContainerFormat },
	"disk_format":      func(w *wireImage) string { return w.DiskFormat },
	"id":               func(w *wireImage) string { return w.ID },
	"name":             func(w *wireImage) string { return w.Name },
	"owner":            func(w *wireImage) string { return w.Owner },
	"protected":        func(w *wireImage) string { return strconv.FormatBool(w.Protected) },
	"status":           func(w *wireImage) string { return w.Status },
	"visibility":       func(w *wireImage) string { return w.Visibility },
	"virtual_env_type": func(w *wireImage) string { return w.VirtualEnvType },
	"architecture":     func(w *wireImage) string { return "x86" },
}

// imageFilterValues are the values the SDK's ListImages request model
// enumerates for a filter: another value is refused by name rather than
// answered with an empty list.
var imageFilterValues = map[string][]string{
	"__imagetype":      {"gold", "private", "shared", "market"},
	"__isregistered":   {"true", "false"},
	"__os_bit":         {"32", "64"},
	"__os_type":        {"Linux", "Windows", "Other"},
	"__platform":       {"Windows", "Ubuntu", "RedHat", "SUSE", "CentOS", "Debian", "OpenSUSE", "Oracle Linux", "Fedora", "Other", "CoreOS", "EulerOS", "Huawei Cloud EulerOS"},
	"__support_kvm":    {"true", "false"},
	"architecture":     {"x86", "arm"},
	"disk_format":      {"vhd", "zvhd", "raw", "qcow2", "zvhd2"},
	"protected":        {"true", "false"},
	"status":           {"queued", "saving", "deleted", "killed", "active"},
	"virtual_env_type": {"FusionCompute", "Ironic", "DataImage", "IsoImage"},
	"visibility":       {"public", "private", "shared", "community"},
}

// imageRefused are ListImages' documented parameters ecsd does not
// implement, each with why.
var imageRefused = map[string]string{
	"__support_diskintensive":   "no image here is for disk-intensive flavors",
	"__support_highperformance": "no image here is for high-performance flavors",
	"__support_largememory":     "no image here is for large-memory flavors",
	"__support_xen":             "images here run on KVM only",
	"__support_xen_gpu_type":    "images here run on KVM only",
	"__support_xen_hana":        "images here run on KVM only",
	"__support_kvm_gpu_type":    "no image here supports GPUs",
	"__support_kvm_infiniband":  "no image here supports InfiniBand",
	"member_status":             "there are no shared images",
	"min_disk":                  "filtering by minimum disk is not implemented",
	"min_ram":                   "filtering by minimum memory is not implemented",
	"created_at":                "filtering by time is not implemented",
	"updated_at":                "filtering by time is not implemented",
}

// imageSortKeys are the sort keys ListImages takes.
var imageSortKeys = map[string]func(w *wireImage) string{
	"created_at":       func(w *wireImage) string { return w.CreatedAt },
	"name":             func(w *wireImage) string { return w.Name },
	"container_format": func(w *wireImage) string { return w.ContainerFormat },
	"disk_format":      func(w *wireImage) string { return w.DiskFormat },
	"status":           func(w *wireImage) string { return w.Status },
	"id":               func(w *wireImage) string { return w.ID },
	"size":             func(w *wireImage) string { return w.ImageSize },
}

// listImages is IMS ListImages (GET /v2/cloudimages): every filter exact,
// then sort_key/sort_dir (default created_at desc; ties by id, in the same
// direction), then the
// page after marker (an image id) of limit images (default 25, at most
// 1000). The response is {"images": [...]}.
func (h *Handler) listImages(w http.ResponseWriter, req *request) error {
	q := req.r.URL.Query()
	for k := range q {
		if why, ok := imageRefused[k]; ok {
			return ecs.Errorf(ecs.CodeInvalidParam, "Invalid parameter: the query parameter %q is not supported: %s.", k, why)
		}
	}
	known := []string{"limit", "marker", "sort_key", "sort_dir", "enterprise_project_id", "flavor_id", "tag"}
	for k := range imageFilters {
		known = append(known, k)
	}
	if err := checkQuery(q, known...); err != nil {
		return err
	}
	for k, vs := range q {
		if allowed, ok := imageFilterValues[k]; ok && !slices.Contains(allowed, vs[0]) {
			return ecs.Errorf(ecs.CodeInvalidParam, "Invalid parameter: %s must be one of %s.", k, strings.Join(allowed, ", "))
		}
	}
	limit, err := queryInt(q.Get("limit"), "limit", 25, 1, 1000)
	if err != nil {
		return err
	}
	sortKey := q.Get("sort_key")
	if sortKey == "" {
		sortKey = "created_at"
	}
	key, ok := imageSortKeys[sortKey]
	if !ok {
		return ecs.Errorf(ecs.CodeInvalidParam, "Invalid parameter: sort_key must be one of created_at, name, container_format, disk_format, status, id, size.")
	}
	desc := true
	switch q.Get("sort_dir") {
	case "", "desc":
	case "asc":
		desc = false
	default:
		return ecs.Errorf(ecs.CodeInvalidParam, "Invalid parameter: sort_dir must be asc or desc.")
	}
	var flavor *ecs.Flavor
	if id := q.Get("flavor_id"); id != "" {
		f, ok := cloud.Flavor(id)
		if !ok {
			return ecs.Errorf(ecs.CodeInvalidParam, "Invalid parameter: flavor_id %s is not a flavor.", safeField(id))
		}
		flavor = &f
	}
	imgs, err := h.svc.ListImages(req.r.Context())
	if err != nil {
		return err
	}
	all := make([]wireImage, 0, len(imgs))
	for i := range imgs {
		wi := toWireImage(&imgs[i])
		keep := true
		for k, vs := range q {
			if f, ok := imageFilters[k]; ok && f(&wi) != vs[0] {
				keep = false
			}
		}
		// enterprise_project_id: the images are public, of the default
		// enterprise project "0"; tag: images here have no tags;
		// flavor_id: the images whose minimum memory the flavor has.
		if ep := q.Get("enterprise_project_id"); ep != "" && ep != "0" && ep != "all_granted_eps" {
			keep = false
		}
		if q.Get("tag") != "" || (flavor != nil && imgs[i].MinRAMMB > flavor.RAMMB) {
			keep = false
		}
		if keep {
			all = append(all, wi)
		}
	}
	sort.SliceStable(all, func(i, j int) bool {
		a, b := key(&all[i]), key(&all[j])
		if sortKey == "size" {
			x, _ := strconv.ParseInt(a, 10, 64)
			y, _ := strconv.ParseInt(b, 10, 64)
			if x != y {
				return (x < y) != desc
			}
		} else if a != b {
			return (a < b) != desc
		}
		return (all[i].ID < all[j].ID) != desc
	})
	if m := q.Get("marker"); m != "" {
		at := slices.IndexFunc(all, func(wi wireImage) bool { return wi.ID == m })
		if at < 0 {
			return ecs.Errorf(ecs.CodeInvalidParam, "Invalid parameter: marker %s is not an image of this list.", safeField(m))
		}
		all = all[at+1:]
	}
	if len(all) > limit {
		all = all[:limit]
	}
	return writeJSON(w, http.StatusOK, map[string]any{"images": all})
}

func (h *Handler) showImage(w http.ResponseWriter, req *request) error {
	img, err := h.svc.GetImage(req.r.Context(), req.params[0])
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, toWireImage(&img))
}

// glanceImage is an image as Glance's GET /v2/images/{id} shows it (the
// SDK's GlanceShowImage): the IMS fields and the size in bytes.
type glanceImage struct {
	wireImage
	Size int64 `json:"size"`
}

// glanceShowImage is GlanceShowImage. An unknown image is a 404 (Glance's
// answer) with IMS's code.
func (h *Handler) glanceShowImage(w http.ResponseWriter, req *request) error {
	img, err := h.svc.GetImage(req.r.Context(), req.params[0])
	if errors.Is(err, ecs.ErrInvalid) && ecs.CodeOf(err) == ecs.CodeImageNotFound {
		return ecs.Errorf(ecs.CodeGlanceImageNotFound, "The image %s does not exist.", safeField(req.params[0]))
	}
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, glanceImage{wireImage: toWireImage(&img), Size: img.SizeBytes})
}
