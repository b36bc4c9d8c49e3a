package api

import (
	"bytes"
	"encoding/json"
	"net/http"
	"reflect"
	"slices"
	"strconv"
	"strings"

	"github.com/ecsproject/ecsd/internal/cloud"
	"github.com/ecsproject/ecsd/internal/ecs"
)

// The create's fields beyond those createServer reads (description, tags,
// security groups), the refusal of every field ecsd does not implement,
// UpdateServer and the tag calls.

// fieldRoutes are the routes of this file. They come first: "tags" and
// "resource_instances" are literal segments where other routes take an id.
func (h *Handler) fieldRoutes() []route {
	return []route{
		{"GET", split("/v1/{p}/cloudservers/tags"), h.listProjectTags},
		{"POST", split("/v1/{p}/cloudservers/resource_instances/action"), h.listServersByTag},
		{"GET", split("/v1/{p}/cloudservers/{}/tags"), h.showServerTags},
		{"POST", split("/v1/{p}/cloudservers/{}/tags/action"), h.serverTagsAction},
		{"PUT", split("/v1/{p}/cloudservers/{}"), h.updateServer},
	}
}

// ---- the create's fields

// createDetailsBody is what this file reads of a create's body.
type createDetailsBody struct {
	Server *struct {
		Description    *string          `json:"description"`
		ServerTags     []tagBody        `json:"server_tags"`
		Tags           []string         `json:"tags"`
		SecurityGroups []securityGroup  `json:"security_groups"`
		UserData       string           `json:"user_data"`
		ExtendParam    *json.RawMessage `json:"extendparam"`
	} `json:"server"`
}

type tagBody struct {
	Key   *string `json:"key"`
	Value *string `json:"value"`
}

type securityGroup struct {
	ID *string `json:"id"`
}

// refusal is a documented field ecsd does not implement: why, and the
// value (JSON) that asks for what ecsd does anyway, accepted; "" for none.
type refusal struct {
	why     string
	neutral string
}

// createRefused are the create's documented fields (CreatePostPaidServers,
// CreateServers: the SDK's PostPaidServer and PrePaidServer) that ecsd
// refuses, by path. A field createServer reads is honoured even if listed
// here.
var createRefused = map[string]refusal{
	"server.auto_terminate_time":      {why: "scheduled deletion is not implemented"},
	"server.batch_create_in_multi_az": {why: "there is one availability zone", neutral: "false"},
	"server.isAutoRename":             {why: "ecsd does not require unique names (a batch is named NAME-0001...)", neutral: "true"},
	"server.os:scheduler_hints":       {why: "placement is ecsd's own: no server groups, tenancy or dedicated hosts"},
	"server.publicip":                 {why: "there are no elastic IPs"},
	"server.cpu_options":              {why: "CPU options are not implemented"},
	"server.security_options":         {why: "security options are not implemented"},
	"server.serial_console_options":   {why: "the serial console is not implemented"},
	"server.metadata_options":         {why: "the metadata service options are not implemented"},
	"server.enclave_options":          {why: "enclaves are not implemented"},

	"server.extendparam.regionID":              {why: "there is one region: leave it out"},
	"server.extendparam.marketType":            {why: "there are no spot instances"},
	"server.extendparam.spotPrice":             {why: "there are no spot instances"},
	"server.extendparam.spot_duration_hours":   {why: "there are no spot instances"},
	"server.extendparam.spot_duration_count":   {why: "there are no spot instances"},
	"server.extendparam.interruption_policy":   {why: "there are no spot instances"},
	"server.extendparam.diskPrior":             {why: "the order of disk and server creation is ecsd's own"},
	"server.extendparam.CB_CSBS_BACKUP":        {why: "there is no backup service"},
	"server.extendparam.periodType":            {why: "there is no yearly/monthly billing"},
	"server.extendparam.periodNum":             {why: "there is no yearly/monthly billing"},
	"server.extendparam.isAutoRenew":           {why: "there is no yearly/monthly billing"},
	"server.extendparam.support_auto_recovery": {why: "automatic recovery is not implemented", neutral: "false"},

	"server.root_volume.iops":           {why: "disk QoS is not implemented"},
	"server.root_volume.throughput":     {why: "disk QoS is not implemented"},
	"server.root_volume.hw:passthrough": {why: "SCSI passthrough is not implemented", neutral: "false"},
	"server.root_volume.cluster_type":   {why: "there is no dedicated storage"},
	"server.root_volume.cluster_id":     {why: "there is no dedicated storage"},
	"server.root_volume.extendparam":    {why: "system disks from snapshots are not implemented"},
	"server.root_volume.metadata":       {why: "disk encryption is not implemented"},

	"server.nics[].port_id":               {why: "there are no separate network interfaces to attach: give subnet_id"},
	"server.nics[].ipv6_enable":           {why: "there is no IPv6", neutral: "false"},
	"server.nics[].ipv6_bandwidth":        {why: "there is no IPv6"},
	"server.nics[].allowed_address_pairs": {why: "allowed address pairs are not implemented"},
	"server.nics[].efi_enable":            {why: "vRoCE is not implemented", neutral: "false"},

	"server.data_volumes[].delete_on_termination": {why: "a deleted server's data disks stay, available (what false asks)", neutral: "false"},
	"server.data_volumes[].multiattach":           {why: "a data disk attaches to one server", neutral: "false"},
	"server.data_volumes[].shareable":             {why: "a data disk attaches to one server", neutral: "false"},
	"server.data_volumes[].hw:passthrough":        {why: "SCSI passthrough is not implemented", neutral: "false"},
	"server.data_volumes[].extendparam":           {why: "data disks from snapshots are not implemented"},
	"server.data_volumes[].cluster_type":          {why: "there is no dedicated storage"},
	"server.data_volumes[].cluster_id":            {why: "there is no dedicated storage"},
	"server.data_volumes[].data_image_id":         {why: "data disk images are not implemented"},
	"server.data_volumes[].metadata":              {why: "disk encryption is not implemented"},
	"server.data_volumes[].iops":                  {why: "provisioned IOPS are not implemented"},
	"server.data_volumes[].throughput":            {why: "provisioned throughput is not implemented"},
}

// createHonoured are the fields read by this file and by the create's
// own checks (extendparam's chargingMode and enterprise project).
var createHonoured = map[string]bool{
	"dry_run": true, "server": true,
	"server.description": true, "server.server_tags": true, "server.tags": true, "server.security_groups": true,
	"server.server_tags[].key": true, "server.server_tags[].value": true, "server.security_groups[].id": true,
	"server.extendparam.chargingMode": true, "server.extendparam.enterprise_project_id": true,
	"server.extendparam.isAutoPay": true,
	"server.nics[].subnet_id":      true, "server.nics[].ip_address": true,
	"server.root_volume.volumetype": true, "server.root_volume.size": true,
	"server.data_volumes[].volumetype": true, "server.data_volumes[].size": true,
}

// createStructFields are the server fields createServer (handlers.go)
// decodes: each is honoured.
var createStructFields = func() map[string]bool {
	m := map[string]bool{}
	t := reflect.TypeFor[createServer]()
	for i := 0; i < t.NumField(); i++ {
		if name, _, _ := strings.Cut(t.Field(i).Tag.Get("json"), ","); name != "" && name != "-" {
			m["server."+name] = true
		}
	}
	return m
}()

// checkCreateFields refuses, naming it, a field of a create's body that
// ecsd does not implement (createRefused, unless given its neutral value)
// or that the call does not document, at any depth ecsd reads.
func checkCreateFields(body []byte) error {
	var top map[string]json.RawMessage
	if json.Unmarshal(body, &top) != nil {
		return nil // decode has answered for a body that is not an object
	}
	return checkObject("", top)
}

func checkObject(prefix string, obj map[string]json.RawMessage) error {
	keys := make([]string, 0, len(obj))
	for k := range obj {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		v := obj[k]
		path := k
		if prefix != "" {
			path = prefix + "." + k
		}
		if r, ok := createRefused[path]; ok && !createStructFields[path] {
			if isNull(v) || (r.neutral != "" && string(bytes.TrimSpace(v)) == r.neutral) {
				continue
			}
			return ecs.Errorf(ecs.CodeInvalidParam, "Invalid parameter: %s is not supported: %s.", path, r.why)
		}
		if !createHonoured[path] && !createStructFields[path] {
			return ecs.Errorf(ecs.CodeInvalidParam, "Invalid parameter: %s is not a parameter of this call.", safeField(path))
		}
		if err := checkNested(path, v); err != nil {
			return err
		}
	}
	return nil
}

// nestedObjects are the fields whose own fields are checked: objects, and
// lists of objects ("[]").
var nestedObjects = map[string]string{
	"server": "", "server.extendparam": "", "server.root_volume": "",
	"server.nics": "[]", "server.server_tags": "[]", "server.security_groups": "[]",
	"server.data_volumes": "[]",
}

func checkNested(path string, v json.RawMessage) error {
	kind, ok := nestedObjects[path]
	if !ok || isNull(v) {
		return nil
	}
	if kind == "" {
		var obj map[string]json.RawMessage
		if json.Unmarshal(v, &obj) != nil {
			return ecs.Errorf(ecs.CodeInvalidParam, "Invalid parameter: %s must be an object.", path)
		}
		return checkObject(path, obj)
	}
	var list []map[string]json.RawMessage
	if json.Unmarshal(v, &list) != nil {
		return ecs.Errorf(ecs.CodeInvalidParam, "Invalid parameter: %s must be a list of objects.", path)
	}
	for _, obj := range list {
		if err := checkObject(path+"[]", obj); err != nil {
			return err
		}
	}
	return nil
}

func isNull(v json.RawMessage) bool { return string(bytes.TrimSpace(v)) == "null" }

// createFields checks a create's fields and sets in's details from its
// body (description, tags, security groups, user data as given).
func createFields(body []byte, in *cloud.CreateInput) error {
	if err := checkCreateFields(body); err != nil {
		return err
	}
	var b createDetailsBody
	if err := decode(body, &b); err != nil {
		return err
	}
	if b.Server == nil {
		return nil
	}
	s := b.Server
	if s.Description != nil {
		in.Description = *s.Description
	}
	for i, tg := range s.ServerTags {
		if tg.Key == nil {
			return ecs.Errorf(ecs.CodeInvalidParam, "Invalid parameter: server.server_tags[%d].key is required.", i)
		}
		in.ServerTags = append(in.ServerTags, cloud.TagInput{Key: *tg.Key, Value: tg.Value})
	}
	in.Tags = s.Tags
	for i, sg := range s.SecurityGroups {
		if sg.ID == nil {
			return ecs.Errorf(ecs.CodeInvalidParam, "Invalid parameter: server.security_groups[%d].id is required.", i)
		}
		in.SecurityGroups = append(in.SecurityGroups, *sg.ID)
	}
	in.UserDataBase64 = s.UserData
	if s.ExtendParam != nil && !isNull(*s.ExtendParam) {
		var ep struct {
			EnterpriseProjectID *string `json:"enterprise_project_id"`
			IsAutoPay           *string `json:"isAutoPay"`
		}
		if json.Unmarshal(*s.ExtendParam, &ep) != nil {
			return ecs.Errorf(ecs.CodeInvalidParam, "Invalid parameter: server.extendparam has a field of the wrong type.")
		}
		if ep.EnterpriseProjectID != nil && *ep.EnterpriseProjectID != "0" && *ep.EnterpriseProjectID != "" {
			return ecs.Errorf(ecs.CodeInvalidParam, "Invalid parameter: server.extendparam.enterprise_project_id must be \"0\": "+
				"ecsd has only the default enterprise project.")
		}
		if ep.IsAutoPay != nil && *ep.IsAutoPay != "true" && *ep.IsAutoPay != "false" {
			return ecs.Errorf(ecs.CodeInvalidParam, "Invalid parameter: server.extendparam.isAutoPay must be \"true\" or \"false\".")
		}
	}
	return nil
}

// ---- the server detail's fields

// withDetails sets the detail fields of w from s: description, security
// groups (the default group when the create named none), tags
// ("key=value", or "key" for an empty value) and the create's user data.
func withDetails(w *wireServer, s *ecs.Server) {
	w.Description = s.Description
	w.SecurityGroups = []wireSecurityGroup{{ID: "default", Name: "default"}}
	if len(s.SecurityGroups) > 0 {
		w.SecurityGroups = make([]wireSecurityGroup, 0, len(s.SecurityGroups))
		for _, id := range s.SecurityGroups {
			// ecsd knows a group by its id only: the id is its name too.
			w.SecurityGroups = append(w.SecurityGroups, wireSecurityGroup{ID: id, Name: id})
		}
	}
	w.Tags = wireTags(s.Tags)
	w.UserData = nil
	if s.UserData != "" {
		ud := s.UserData
		w.UserData = &ud
	}
}

func wireTags(tags []ecs.Tag) []string {
	out := make([]string, 0, len(tags))
	for _, t := range tags {
		if t.Value == "" {
			out = append(out, t.Key)
		} else {
			out = append(out, t.Key+"="+t.Value)
		}
	}
	return out
}

// ---- UpdateServer

type updateBody struct {
	Server *json.RawMessage `json:"server"`
}

type updateOption struct {
	Name        *string `json:"name"`
	Description *string `json:"description"`
}

// updateRefused are UpdateServer's documented fields ecsd refuses.
var updateRefused = map[string]string{
	"hostname":         "an ECS's hostname here is its name: change the name",
	"user_data":        "user data is given at create, reinstall or change of OS",
	"security_options": "security options are not implemented",
}

// wireUpdated is UpdateServer's answer (the SDK's UpdateServerResult).
type wireUpdated struct {
	TenantID    string                     `json:"tenant_id"`
	Image       string                     `json:"image"`
	AccessIPv4  string                     `json:"accessIPv4"`
	AccessIPv6  string                     `json:"accessIPv6"`
	Metadata    map[string]string          `json:"metadata"`
	Addresses   map[string][]wireAddrShort `json:"addresses"`
	Created     string                     `json:"created"`
	HostID      string                     `json:"hostId"`
	Flavor      wireFlavorRef              `json:"flavor"`
	DiskConfig  string                     `json:"OS-DCF:diskConfig"`
	UserID      string                     `json:"user_id"`
	Name        string                     `json:"name"`
	Progress    int                        `json:"progress"`
	Links       []wireLink                 `json:"links"`
	ID          string                     `json:"id"`
	Updated     string                     `json:"updated"`
	Locked      bool                       `json:"locked"`
	Description string                     `json:"description"`
	Tags        []string                   `json:"tags"`
	Status      string                     `json:"status"`
	UserData    *string                    `json:"OS-EXT-SRV-ATTR:user_data"`
	Hostname    string                     `json:"OS-EXT-SRV-ATTR:hostname"`
}

type wireAddrShort struct {
	Version int    `json:"version"` // a number here (UpdateServerAddress)
	Addr    string `json:"addr"`
}

type wireFlavorRef struct {
	ID    string     `json:"id"`
	Links []wireLink `json:"links"`
}

// updateServer is UpdateServer (PUT /v1/{p}/cloudservers/{id}): name and
// description; hostname, user_data and security_options are refused.
func (h *Handler) updateServer(w http.ResponseWriter, req *request) error {
	var b updateBody
	if err := decode(req.body, &b); err != nil {
		return err
	}
	if b.Server == nil || isNull(*b.Server) {
		return ecs.Errorf(ecs.CodeInvalidParam, "Invalid parameter: server is required.")
	}
	var fields map[string]json.RawMessage
	if json.Unmarshal(*b.Server, &fields) != nil {
		return ecs.Errorf(ecs.CodeInvalidParam, "Invalid parameter: server must be an object.")
	}
	keys := make([]string, 0, len(fields))
	for k := range fields {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		if why, ok := updateRefused[k]; ok && !isNull(fields[k]) {
			return ecs.Errorf(ecs.CodeInvalidParam, "Invalid parameter: server.%s is not supported: %s.", k, why)
		}
		if k != "name" && k != "description" && updateRefused[k] == "" {
			return ecs.Errorf(ecs.CodeInvalidParam, "Invalid parameter: server.%s is not a parameter of this call.", safeField(k))
		}
	}
	var o updateOption
	if err := decode(*b.Server, &o); err != nil {
		return err
	}
	if o.Name == nil && o.Description == nil {
		return ecs.Errorf(ecs.CodeInvalidParam, "Invalid parameter: give server.name or server.description.")
	}
	s, err := h.svc.UpdateServer(req.r.Context(), req.caller, req.params[0], cloud.UpdateInput{Name: o.Name, Description: o.Description})
	if err != nil {
		return err
	}
	ws := toWireServer(&s)
	out := wireUpdated{TenantID: ws.TenantID, Image: ws.Image.ID, Metadata: ws.Metadata, Addresses: map[string][]wireAddrShort{},
		Created: ws.Created, HostID: ws.HostID, Flavor: wireFlavorRef{ID: ws.Flavor.ID, Links: []wireLink{}},
		DiskConfig: ws.DiskConfig, UserID: ws.UserID, Name: ws.Name, Progress: ws.Progress, Links: []wireLink{}, ID: ws.ID,
		Updated: ws.Updated, Locked: ws.Locked, Description: ws.Description, Tags: ws.Tags, Status: ws.Status, UserData: ws.UserData,
		Hostname: ws.Hostname}
	for vpc, addrs := range ws.Addresses {
		for _, a := range addrs {
			out.Addresses[vpc] = append(out.Addresses[vpc], wireAddrShort{Version: 4, Addr: a.Addr})
		}
	}
	return writeJSON(w, http.StatusOK, map[string]wireUpdated{"server": out})
}

// ---- tags

type wireServerTag struct {
	Key   string `json:"key"`
	Value string `json:"value"`
}

func (h *Handler) showServerTags(w http.ResponseWriter, req *request) error {
	tags, err := h.svc.ServerTags(req.r.Context(), req.caller, req.params[0])
	if err != nil {
		return err
	}
	out := make([]wireServerTag, 0, len(tags))
	for _, t := range tags {
		out = append(out, wireServerTag(t))
	}
	return writeJSON(w, http.StatusOK, map[string]any{"tags": out})
}

type tagsActionBody struct {
	Action *string   `json:"action"`
	Tags   []tagBody `json:"tags"`
}

// serverTagsAction is BatchCreateServerTags ("create") and
// BatchDeleteServerTags ("delete"): 204 and no body.
func (h *Handler) serverTagsAction(w http.ResponseWriter, req *request) error {
	var b tagsActionBody
	if err := decode(req.body, &b); err != nil {
		return err
	}
	if err := onlyFields(req.body, "", "action", "tags"); err != nil {
		return err
	}
	if err := onlyItemFields(req.body, "tags", "key", "value"); err != nil {
		return err
	}
	if b.Tags == nil {
		return ecs.Errorf(ecs.CodeInvalidParam, "Invalid parameter: tags is required.")
	}
	in := make([]cloud.TagInput, 0, len(b.Tags))
	for i, t := range b.Tags {
		if t.Key == nil {
			return ecs.Errorf(ecs.CodeInvalidParam, "Invalid parameter: tags[%d].key is required.", i)
		}
		in = append(in, cloud.TagInput{Key: *t.Key, Value: t.Value})
	}
	var err error
	switch {
	case b.Action == nil:
		return ecs.Errorf(ecs.CodeInvalidParam, "Invalid parameter: action is required (create or delete).")
	case *b.Action == "create":
		err = h.svc.AddServerTags(req.r.Context(), req.caller, req.params[0], in)
	case *b.Action == "delete":
		err = h.svc.DeleteServerTags(req.r.Context(), req.caller, req.params[0], in)
	default:
		return ecs.Errorf(ecs.CodeInvalidParam, "Invalid parameter: action must be create or delete (lower case).")
	}
	if err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// onlyFields refuses a field of the object at path ("" for the body) that
// is not one of names; the body is known to decode.
func onlyFields(body []byte, path string, names ...string) error {
	var obj map[string]json.RawMessage
	if json.Unmarshal(body, &obj) != nil {
		return nil
	}
	for k := range obj {
		if !slices.Contains(names, k) {
			if path != "" {
				k = path + "." + k
			}
			return ecs.Errorf(ecs.CodeInvalidParam, "Invalid parameter: %s is not a parameter of this call.", safeField(k))
		}
	}
	return nil
}

// onlyItemFields refuses a field of an item of the body's list field that
// is not one of names; the body is known to decode.
func onlyItemFields(body []byte, field string, names ...string) error {
	var obj map[string]json.RawMessage
	if json.Unmarshal(body, &obj) != nil {
		return nil
	}
	var items []json.RawMessage
	if json.Unmarshal(obj[field], &items) != nil {
		return nil
	}
	for _, it := range items {
		if err := onlyFields(it, field+"[]", names...); err != nil {
			return err
		}
	}
	return nil
}

type wireProjectTag struct {
	Key    string   `json:"key"`
	Values []string `json:"values"`
}

// listProjectTags is ListServerTags: the project's tag keys with their
// values.
func (h *Handler) listProjectTags(w http.ResponseWriter, req *request) error {
	tags, err := h.svc.ProjectTags(req.r.Context(), req.caller)
	if err != nil {
		return err
	}
	out := make([]wireProjectTag, 0, len(tags))
	for _, t := range tags {
		out = append(out, wireProjectTag{Key: t.Key, Values: t.Values})
	}
	return writeJSON(w, http.StatusOK, map[string]any{"tags": out})
}

type byTagBody struct {
	Action  *string          `json:"action"`
	Limit   *string          `json:"limit"`
	Offset  *string          `json:"offset"`
	Tags    []wireProjectTag `json:"tags"`
	NotTags []wireProjectTag `json:"not_tags"`
	Matches []wireServerTag  `json:"matches"`
}

type wireResource struct {
	ResourceID     string          `json:"resource_id"`
	ResourceDetail string          `json:"resource_detail"`
	Tags           []wireServerTag `json:"tags"`
	ResourceName   string          `json:"resource_name"`
}

// listServersByTag is ListServersByTag (POST
// /v1/{p}/cloudservers/resource_instances/action): action "filter" (a
// page of servers, limit 0-1000 default 1000, offset default 0) or
// "count" (total_count only); tags, not_tags and matches (resource_name:
// the name contains it) as documented.
func (h *Handler) listServersByTag(w http.ResponseWriter, req *request) error {
	var b byTagBody
	if err := decode(req.body, &b); err != nil {
		return err
	}
	if err := onlyFields(req.body, "", "action", "limit", "offset", "tags", "not_tags", "matches"); err != nil {
		return err
	}
	for _, l := range [][]string{{"tags", "key", "values"}, {"not_tags", "key", "values"}, {"matches", "key", "value"}} {
		if err := onlyItemFields(req.body, l[0], l[1:]...); err != nil {
			return err
		}
	}
	var q cloud.TagQuery
	var err error
	if b.Action == nil || (*b.Action != "filter" && *b.Action != "count") {
		return ecs.Errorf(ecs.CodeInvalidParam, "Invalid parameter: action must be filter or count.")
	}
	count := *b.Action == "count"
	if q.Limit, err = bodyInt(b.Limit, "limit", 1000, 0, 1000); err != nil {
		return err
	}
	if q.Offset, err = bodyInt(b.Offset, "offset", 0, 0, 1<<30); err != nil {
		return err
	}
	for _, l := range []struct {
		field string
		in    []wireProjectTag
		out   *[]cloud.ProjectTag
	}{{"tags", b.Tags, &q.Tags}, {"not_tags", b.NotTags, &q.NotTags}} {
		for _, t := range l.in {
			*l.out = append(*l.out, cloud.ProjectTag{Key: t.Key, Values: t.Values})
		}
		if err := cloud.CheckTagQuery(*l.out, l.field); err != nil {
			return err
		}
	}
	for i, m := range b.Matches {
		switch {
		case m.Key != "resource_name":
			return ecs.Errorf(ecs.CodeInvalidParam, "Invalid parameter: matches[%d].key must be resource_name.", i)
		case m.Value == "" || len([]rune(m.Value)) > 255:
			return ecs.Errorf(ecs.CodeInvalidParam, "Invalid parameter: matches[%d].value must be 1 to 255 characters.", i)
		case i > 0:
			return ecs.Errorf(ecs.CodeInvalidParam, "Invalid parameter: matches has the key resource_name twice.")
		}
		q.Name = m.Value
	}
	servers, total, err := h.svc.ServersByTag(req.r.Context(), req.caller, q)
	if err != nil {
		return err
	}
	if count {
		return writeJSON(w, http.StatusOK, map[string]int{"total_count": total})
	}
	out := make([]wireResource, 0, len(servers))
	for _, s := range servers {
		r := wireResource{ResourceID: s.ID, Tags: make([]wireServerTag, 0, len(s.Tags)), ResourceName: s.Name}
		for _, t := range s.Tags {
			r.Tags = append(r.Tags, wireServerTag(t))
		}
		out = append(out, r)
	}
	return writeJSON(w, http.StatusOK, map[string]any{"resources": out, "total_count": total})
}

// bodyInt reads a number given as a string in a body (ListServersByTag's
// limit and offset).
func bodyInt(v *string, name string, def, lo, hi int) (int, error) {
	if v == nil {
		return def, nil
	}
	n, err := strconv.Atoi(*v)
	if err != nil || n < lo || n > hi {
		return 0, ecs.Errorf(ecs.CodeInvalidParam, "Invalid parameter: %s must be a number from %d to %d.", name, lo, hi)
	}
	return n, nil
}

// bodyFields refuses, naming it, a field of body that its call does not
// take. shape maps a path ("" for the body, "a" or "a.b" for an object,
// "a[]" for the items of a list) to the fields the object there takes;
// the fields of a field whose path is in shape are checked in turn. The
// body is known to decode (types are decode's business).
func bodyFields(body []byte, shape map[string][]string) error {
	return walkFields("", body, shape)
}

func walkFields(path string, v json.RawMessage, shape map[string][]string) error {
	var obj map[string]json.RawMessage
	if json.Unmarshal(v, &obj) != nil {
		return nil
	}
	keys := make([]string, 0, len(obj))
	for k := range obj {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		child := k
		if path != "" {
			child = path + "." + k
		}
		if !slices.Contains(shape[path], k) {
			return ecs.Errorf(ecs.CodeInvalidParam, "Invalid parameter: %s is not a parameter of this call.", safeField(child))
		}
		if _, ok := shape[child]; ok {
			if err := walkFields(child, obj[k], shape); err != nil {
				return err
			}
		}
		if _, ok := shape[child+"[]"]; ok {
			var items []json.RawMessage
			if json.Unmarshal(obj[k], &items) == nil {
				for _, it := range items {
					if err := walkFields(child+"[]", it, shape); err != nil {
						return err
					}
				}
			}
		}
	}
	return nil
}

// The bodies of the key pair create, server delete and start/stop/reboot
// calls (the SDK's NovaCreateKeypairRequestBody, DeleteServersRequestBody
// and Batch{Start,Stop,Reboot}ServersRequestBody).
var (
	keypairShape = map[string][]string{"": {"keypair"}, "keypair": {"name", "public_key", "type", "user_id"}}
	deleteShape  = map[string][]string{"": {"servers", "delete_publicip", "delete_volume"}, "servers[]": {"id"}}
	actionShape  = map[string][]string{
		"":         {"os-start", "os-stop", "reboot"},
		"os-start": {"servers"}, "os-stop": {"servers", "type"}, "reboot": {"servers", "type"},
		"os-start.servers[]": {"id"}, "os-stop.servers[]": {"id"}, "reboot.servers[]": {"id"},
	}
)

// systemMetadata are the metadata keys ecsd sets on every server itself
// (cloud.serverMetadata): a create that gives one would see it replaced.
var systemMetadata = []string{"os_type", "image_name", "metering.image_id", "metering.imagetype", "charging_mode", "vpc_id"}

// reservedMetadata are the create's documented system keys, each asking
// for a service ecsd does not have.
var reservedMetadata = map[string]string{
	"op_svc_userid":        "there are no operation-service users",
	"agency_name":          "there are no IAM agencies",
	"__support_agent_list": "there are no host security or monitoring agents",
}

// checkCreateMetadata applies the create's documented metadata rules: at
// most 10 pairs, keys of 1-255 letters, digits, '-', '_', ':' and '.', and
// refuses a key ecsd sets itself or a reserved one it cannot honour.
// (Values, at most 255 characters, are checked by cloud.)
func checkCreateMetadata(md map[string]string) error {
	if len(md) > 10 {
		return ecs.Errorf(ecs.CodeInvalidParam, "Invalid parameter: server.metadata has %d pairs, at most 10.", len(md))
	}
	keys := make([]string, 0, len(md))
	for k := range md {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		if why, ok := reservedMetadata[k]; ok {
			return ecs.Errorf(ecs.CodeInvalidParam, "Invalid parameter: server.metadata.%s is not supported: %s.", k, why)
		}
		if slices.Contains(systemMetadata, k) {
			return ecs.Errorf(ecs.CodeInvalidParam, "Invalid parameter: server.metadata.%s is set by ecsd (from the image, the VPC and the billing mode); leave it out.", k)
		}
		if len(k) == 0 || len(k) > 255 || strings.IndexFunc(k, func(r rune) bool { return !isMetadataKeyRune(r) }) >= 0 {
			return ecs.Errorf(ecs.CodeInvalidParam, "Invalid parameter: server.metadata key %q must be 1-255 letters, digits, '-', '_', ':' and '.'.", safeField(k))
		}
	}
	return nil
}

func isMetadataKeyRune(r rune) bool {
	return 'a' <= r && r <= 'z' || 'A' <= r && r <= 'Z' || '0' <= r && r <= '9' || r == '-' || r == '_' || r == ':' || r == '.'
}
