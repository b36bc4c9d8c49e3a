package api

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/ecsproject/ecsd/internal/cloud"
	"github.com/ecsproject/ecsd/internal/cluster"
	"github.com/ecsproject/ecsd/internal/ecs"
)

// decode parses a JSON body strictly enough to refuse garbage: exactly one
// JSON value, types matching v. Unknown fields are ignored, as Huawei does.
func decode(body []byte, v any) error {
	if len(bytes.TrimSpace(body)) == 0 {
		return ecs.Errorf(ecs.CodeEmptyBody, "The request body cannot be left blank.")
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	if err := dec.Decode(v); err != nil {
		var te *json.UnmarshalTypeError
		if errors.As(err, &te) && te.Field != "" {
			return ecs.Errorf(ecs.CodeInvalidParam, "Invalid parameter: %s has the wrong type.", safeField(te.Field))
		}
		if errors.As(err, &te) {
			return ecs.Errorf(ecs.CodeInvalidParam, "Invalid parameter: the request body must be a JSON object (it is a JSON %s).",
				safeField(te.Value))
		}
		return ecs.Errorf(ecs.CodeInvalidParam, "Invalid parameter: the request body is not valid JSON.")
	}
	if _, err := dec.Token(); err != io.EOF {
		return ecs.Errorf(ecs.CodeInvalidParam, "Invalid parameter: unexpected data after the JSON body.")
	}
	return nil
}

func safeField(f string) string {
	if len(f) > 64 {
		f = f[:64]
	}
	return strings.Map(func(r rune) rune {
		if r < 0x20 || r > 0x7e || r == '"' {
			return '?'
		}
		return r
	}, f)
}

type jobIDBody struct {
	JobID string `json:"job_id"`
}

// ---- reinstall and change of OS

type reinstallBody struct {
	OsReinstall *reinstallOption `json:"os-reinstall"`
}

type reinstallOption struct {
	AdminPass *string           `json:"adminpass"`
	KeyName   *string           `json:"keyname"`
	UserID    *string           `json:"userid"`
	Mode      *string           `json:"mode"`
	Metadata  map[string]string `json:"metadata"`
}

func (o *reinstallOption) input(cloudInit bool) cloud.ReinstallInput {
	return cloud.ReinstallInput{AdminPass: o.AdminPass, KeyName: o.KeyName, UserID: o.UserID, Mode: o.Mode, Metadata: o.Metadata,
		CloudInit: cloudInit}
}

func (h *Handler) reinstall(w http.ResponseWriter, req *request) error {
	return h.reinstallVersion(w, req, false)
}

func (h *Handler) reinstallCloudInit(w http.ResponseWriter, req *request) error {
	return h.reinstallVersion(w, req, true)
}

func (h *Handler) reinstallVersion(w http.ResponseWriter, req *request, cloudInit bool) error {
	var b reinstallBody
	if err := decode(req.body, &b); err != nil {
		return err
	}
	if b.OsReinstall == nil {
		return ecs.Errorf(ecs.CodeInvalidParam, "Invalid parameter: os-reinstall is required.")
	}
	id, err := h.svc.Reinstall(req.r.Context(), req.caller, req.params[0], b.OsReinstall.input(cloudInit))
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, jobIDBody{JobID: id})
}

type changeOSBody struct {
	OsChange *changeOSOption `json:"os-change"`
}

type changeOSOption struct {
	reinstallOption
	ImageID *string `json:"imageid"`
	// IsAutoPay is accepted and ignored: there is nothing to pay.
	IsAutoPay *string `json:"isAutoPay"`
}

func (h *Handler) changeOS(w http.ResponseWriter, req *request) error {
	return h.changeOSVersion(w, req, false)
}

func (h *Handler) changeOSCloudInit(w http.ResponseWriter, req *request) error {
	return h.changeOSVersion(w, req, true)
}

func (h *Handler) changeOSVersion(w http.ResponseWriter, req *request, cloudInit bool) error {
	var b changeOSBody
	if err := decode(req.body, &b); err != nil {
		return err
	}
	if b.OsChange == nil {
		return ecs.Errorf(ecs.CodeInvalidParam, "Invalid parameter: os-change is required.")
	}
	o := b.OsChange
	if o.IsAutoPay != nil && *o.IsAutoPay != "true" && *o.IsAutoPay != "false" {
		return ecs.Errorf(ecs.CodeInvalidParam, "Invalid parameter: os-change.isAutoPay must be \"true\" or \"false\".")
	}
	in := o.input(cloudInit)
	in.ImageID = o.ImageID
	id, err := h.svc.ChangeOS(req.r.Context(), req.caller, req.params[0], in)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, jobIDBody{JobID: id})
}

// ---- password reset

type resetPasswordBody struct {
	ResetPassword *resetPasswordOption `json:"reset-password"`
}

type resetPasswordOption struct {
	NewPassword     *string `json:"new_password"`
	IsCheckPassword *bool   `json:"is_check_password"`
}

func (h *Handler) resetPassword(w http.ResponseWriter, req *request) error {
	var b resetPasswordBody
	if err := decode(req.body, &b); err != nil {
		return err
	}
	if b.ResetPassword == nil {
		return ecs.Errorf(ecs.CodeInvalidParam, "Invalid parameter: reset-password is required.")
	}
	if b.ResetPassword.NewPassword == nil || *b.ResetPassword.NewPassword == "" {
		return ecs.Errorf(ecs.CodeInvalidParam, "Invalid parameter: reset-password.new_password is required.")
	}
	err := h.svc.ResetPassword(req.r.Context(), req.caller, req.params[0], cloud.ResetPasswordInput{
		NewPassword: *b.ResetPassword.NewPassword, CheckPassword: b.ResetPassword.IsCheckPassword})
	if err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

type resetPasswordFlagBody struct {
	ResetpwdFlag string `json:"resetpwd_flag"`
}

// resetPasswordFlag answers os-resetpwd-flag. For a running server on
// another host whose image has a guest agent, only that host can ask the
// agent: the call is forwarded to its node, whose answer is relayed. When
// that node cannot be reached or does not answer the flag (not 200 or
// 404), the answer is "False", as for an agent that does not answer: the
// password cannot be reset online now.
func (h *Handler) resetPasswordFlag(w http.ResponseWriter, req *request) error {
	ok, host, err := h.svc.ResetPasswordFlag(req.r.Context(), req.caller, req.params[0])
	if err != nil {
		return err
	}
	if h.elsewhere(req, host) {
		ok = false
		ctx, cancel := context.WithTimeout(req.r.Context(), flagForwardTimeout)
		defer cancel()
		resp, err := h.send(ctx, req, host)
		if err == nil && (resp.StatusCode == http.StatusOK || resp.StatusCode == http.StatusNotFound) {
			return cluster.Relay(w, resp)
		}
		if err == nil {
			resp.Body.Close()
			err = fmt.Errorf("the node of host %s answered %s", host, resp.Status)
		}
		h.log.LogAttrs(req.r.Context(), slog.LevelWarn, "reset password flag: the server's host did not answer; answering False",
			slog.String("request_id", req.caller.RequestID), slog.String("server_id", req.params[0]),
			slog.String("host", host), slog.String("cause", err.Error()))
	}
	flag := "False"
	if ok {
		flag = "True"
	}
	return writeJSON(w, http.StatusOK, resetPasswordFlagBody{ResetpwdFlag: flag})
}

// flagForwardTimeout bounds a forwarded os-resetpwd-flag call: the owning
// node gives the guest agent 3 s.
const flagForwardTimeout = 10 * time.Second

// ---- jobs

func (h *Handler) showJob(w http.ResponseWriter, req *request) error {
	j, err := h.svc.GetJob(req.r.Context(), req.caller, req.params[0])
	if err != nil {
		return err
	}
	if e, ok := cloud.EVSJobOf(&j); ok {
		return writeJSON(w, http.StatusOK, toWireEVSJob(&j, e))
	}
	return writeJSON(w, http.StatusOK, toWireJob(&j))
}

// ---- servers

type createBody struct {
	DryRun *bool         `json:"dry_run"`
	Server *createServer `json:"server"`
}

type createServer struct {
	Name        string             `json:"name"`
	ImageRef    string             `json:"imageRef"`
	FlavorRef   string             `json:"flavorRef"`
	VPCID       string             `json:"vpcid"`
	Nics        []createNic        `json:"nics"`
	RootVolume  *createRootVolume  `json:"root_volume"`
	DataVolumes []createRootVolume `json:"data_volumes"`
	KeyName     string             `json:"key_name"`
	AdminPass   string             `json:"adminPass"`
	Count       *int               `json:"count"`
	AZ          string             `json:"availability_zone"`
	Metadata    map[string]string  `json:"metadata"`
	UserData    string             `json:"user_data"`
	ExtendParam *createExtendParam `json:"extendparam"`
}

// createExtendParam is server.extendparam; only the charging mode
// matters: ecsd has no billing, so servers are pay-per-use (postPaid).
type createExtendParam struct {
	ChargingMode json.RawMessage `json:"chargingMode"`
}

// postPaid reports whether a chargingMode value (absent, "postPaid", or
// Huawei's older numeric 0 / "0") means pay-per-use; prePaid (1, "1") and
// anything else are refused.
func (e *createExtendParam) check() error {
	if e == nil || len(e.ChargingMode) == 0 || string(e.ChargingMode) == "null" {
		return nil
	}
	var mode string
	var n json.Number
	if json.Unmarshal(e.ChargingMode, &mode) != nil {
		if json.Unmarshal(e.ChargingMode, &n) != nil {
			return ecs.Errorf(ecs.CodeInvalidParam, "Invalid parameter: server.extendparam.chargingMode must be postPaid or prePaid.")
		}
		mode = n.String()
	}
	switch mode {
	case "postPaid", "0":
		return nil
	case "prePaid", "1":
		return ecs.Errorf(ecs.CodeInvalidParam, "Invalid parameter: server.extendparam.chargingMode prePaid (yearly/monthly) is not "+
			"supported: ecsd has no billing; create pay-per-use servers (postPaid).")
	}
	return ecs.Errorf(ecs.CodeInvalidParam, "Invalid parameter: server.extendparam.chargingMode must be postPaid or prePaid.")
}

type createNic struct {
	SubnetID  string `json:"subnet_id"`
	IPAddress string `json:"ip_address"`
}

type createRootVolume struct {
	VolumeType string `json:"volumetype"`
	Size       *int   `json:"size"`
}

type createResponse struct {
	JobID     string   `json:"job_id"`
	ServerIDs []string `json:"serverIds"`
}

// createServers is POST /v1/{p}/cloudservers (CreatePostPaidServers) and
// POST /v1.1/{p}/cloudservers (CreateServers): one body, pay-per-use
// (postPaid) only, answered with job_id and serverIds (no order_id:
// nothing is prepaid).
func (h *Handler) createServers(w http.ResponseWriter, req *request) error {
	var b createBody
	if err := decode(req.body, &b); err != nil {
		return err
	}
	if b.Server == nil {
		return ecs.Errorf(ecs.CodeInvalidParam, "Invalid parameter: server is required.")
	}
	s := b.Server
	in := cloud.CreateInput{Name: s.Name, ImageRef: s.ImageRef, FlavorRef: s.FlavorRef, VPCID: s.VPCID, KeyName: s.KeyName,
		AdminPass: s.AdminPass, AZ: s.AZ, Metadata: s.Metadata}
	if err := createFields(req.body, &in); err != nil {
		return err
	}
	if err := checkCreateMetadata(in.Metadata); err != nil {
		return err
	}
	if in.AZ != "" && !slices.Contains(flavorAZs, in.AZ) {
		// A zone that does not exist would be stored and shown as given.
		return ecs.Errorf(ecs.CodeInvalidParam, "Invalid parameter: server.availability_zone must be one of %s (ListFlavors shows them).",
			strings.Join(flavorAZs, ", "))
	}
	for _, n := range s.Nics {
		in.SubnetIDs = append(in.SubnetIDs, n.SubnetID)
		in.IPAddresses = append(in.IPAddresses, n.IPAddress)
	}
	if s.RootVolume != nil {
		in.VolumeType = s.RootVolume.VolumeType
		if s.RootVolume.Size != nil {
			in.SizeGB = *s.RootVolume.Size
			if in.SizeGB == 0 {
				in.SizeGB = -1 // explicitly zero: invalid
			}
		}
	}
	for _, dv := range s.DataVolumes {
		in.DataVolumes = append(in.DataVolumes, cloud.DataVolumeInput{VolumeType: dv.VolumeType, SizeGB: derefInt(dv.Size)})
	}
	if s.Count != nil {
		in.Count = *s.Count
		if in.Count == 0 {
			in.Count = -1
		}
	}
	if err := s.ExtendParam.check(); err != nil {
		return err
	}
	ud, err := cloud.DecodeUserData(s.UserData, "server.user_data")
	if err != nil {
		return err
	}
	in.UserData = ud
	if b.DryRun != nil && *b.DryRun {
		return ecs.Errorf(ecs.CodeInvalidParam, "Invalid parameter: dry_run is not supported.")
	}
	in.ClientToken, in.RequestHash = clientToken(req)
	job, ids, err := h.svc.CreateServers(req.r.Context(), req.caller, in)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, createResponse{JobID: job, ServerIDs: ids})
}

func (h *Handler) showServer(w http.ResponseWriter, req *request) error {
	s, vols, err := h.svc.ServerVolumes(req.r.Context(), req.caller, req.params[0])
	if err != nil {
		return err
	}
	states, err := h.svc.HostStates(req.r.Context())
	if err != nil {
		return err
	}
	ws := toWireServer(&s)
	ws.HostStatus = hostStatus(states(s.Host))
	withVolumes(&ws, &s, vols)
	return writeJSON(w, http.StatusOK, serverBody{Server: ws})
}

func queryInt(v, name string, def, lo, hi int) (int, error) {
	if v == "" {
		return def, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < lo || n > hi {
		return 0, ecs.Errorf(ecs.CodeInvalidParam, "Invalid parameter: %s must be an integer from %d to %d.", name, lo, hi)
	}
	return n, nil
}

type actionBody struct {
	Start  *actionOption `json:"os-start"`
	Stop   *actionOption `json:"os-stop"`
	Reboot *actionOption `json:"reboot"`
}

type actionOption struct {
	Servers []serverRef `json:"servers"`
	Type    *string     `json:"type"`
}

type serverRef struct {
	ID string `json:"id"`
}

func (h *Handler) serverAction(w http.ResponseWriter, req *request) error {
	var b actionBody
	if err := decode(req.body, &b); err != nil {
		return err
	}
	if err := bodyFields(req.body, actionShape); err != nil {
		return err
	}
	var action cloud.Action
	var opt *actionOption
	n := 0
	if b.Start != nil {
		action, opt, n = cloud.ActionStart, b.Start, n+1
	}
	if b.Stop != nil {
		action, opt, n = cloud.ActionStop, b.Stop, n+1
	}
	if b.Reboot != nil {
		action, opt, n = cloud.ActionReboot, b.Reboot, n+1
	}
	if n != 1 {
		return ecs.Errorf(ecs.CodeInvalidParam, "Invalid parameter: give exactly one of os-start, os-stop and reboot.")
	}
	hard := false
	switch {
	case opt.Type == nil && action == cloud.ActionReboot:
		return ecs.Errorf(ecs.CodeInvalidParam, "Invalid parameter: reboot.type is required (SOFT or HARD).")
	case opt.Type == nil:
	case *opt.Type == "HARD" && action != cloud.ActionStart:
		hard = true
	case *opt.Type == "SOFT" && action != cloud.ActionStart:
	default:
		return ecs.Errorf(ecs.CodeInvalidParam, "Invalid parameter: type must be SOFT or HARD.")
	}
	job, err := h.svc.ServerAction(req.r.Context(), req.caller, action, refIDs(opt.Servers), hard)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, jobIDBody{JobID: job})
}

func refIDs(refs []serverRef) []string {
	ids := make([]string, len(refs))
	for i, r := range refs {
		ids[i] = r.ID
	}
	return ids
}

type deleteBody struct {
	Servers        []serverRef `json:"servers"`
	DeletePublicIP *bool       `json:"delete_publicip"`
	DeleteVolume   *bool       `json:"delete_volume"`
}

func (h *Handler) deleteServers(w http.ResponseWriter, req *request) error {
	var b deleteBody
	if err := decode(req.body, &b); err != nil {
		return err
	}
	if err := bodyFields(req.body, deleteShape); err != nil {
		return err
	}
	if b.DeleteVolume != nil && *b.DeleteVolume {
		return ecs.Errorf(ecs.CodeInvalidParam, "Invalid parameter: delete_volume true is not supported: a deleted server's data volumes "+
			"are detached and kept (available); delete them with DeleteVolume.")
	}
	job, err := h.svc.DeleteServers(req.r.Context(), req.caller, refIDs(b.Servers))
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, jobIDBody{JobID: job})
}

// ---- key pairs

type keypairBody struct {
	Keypair *keypairOption `json:"keypair"`
}

type keypairOption struct {
	Name      string `json:"name"`
	PublicKey string `json:"public_key"`
	Type      string `json:"type"`
	UserID    string `json:"user_id"`
}

func (h *Handler) createKeypair(w http.ResponseWriter, req *request) error {
	var b keypairBody
	if err := decode(req.body, &b); err != nil {
		return err
	}
	if err := bodyFields(req.body, keypairShape); err != nil {
		return err
	}
	if b.Keypair == nil {
		return ecs.Errorf(ecs.CodeInvalidParam, "Invalid parameter: keypair is required.")
	}
	k := b.Keypair
	if k.Name == "." || k.Name == ".." {
		// A path segment "." or ".." is removed by URL normalization
		// (curl, proxies): ShowKeypair and DeleteKeypair could not name it.
		return ecs.Errorf(ecs.CodeInvalidParam, "Invalid parameter: keypair.name cannot be \".\" or \"..\" (it could not be named in a URL).")
	}
	if k.Type == "x509" {
		// Nova's x509 pair is a certificate; ecsd makes and takes SSH keys
		// only, and would label an SSH key "x509".
		return ecs.Errorf(ecs.CodeInvalidParam, "Invalid parameter: keypair.type x509 is not supported: ecsd makes and imports SSH key pairs only (type ssh).")
	}
	kp, private, err := h.svc.CreateKeypair(req.r.Context(), req.caller,
		cloud.KeypairInput{Name: k.Name, PublicKey: k.PublicKey, Type: k.Type, UserID: k.UserID})
	if err != nil {
		return err
	}
	w.Header().Set("Cache-Control", "no-store")
	return writeJSON(w, http.StatusOK, map[string]wireKeypair{"keypair": {Fingerprint: kp.Fingerprint, Name: kp.Name,
		PublicKey: kp.PublicKey, PrivateKey: private, UserID: kp.UserID, Type: kp.Type}})
}

type keypairListEntry struct {
	Keypair wireKeypair `json:"keypair"`
}

func (h *Handler) listKeypairs(w http.ResponseWriter, req *request) error {
	kps, err := h.svc.ListKeypairs(req.r.Context(), req.caller)
	if err != nil {
		return err
	}
	q := req.r.URL.Query()
	if err := checkQuery(q, "limit", "marker"); err != nil {
		return err
	}
	limit, err := queryInt(q.Get("limit"), "limit", 0, 1, 1<<30)
	if err != nil {
		return err
	}
	// Pages follow the names' byte order, whatever the store's collation.
	slices.SortFunc(kps, func(a, b ecs.Keypair) int { return strings.Compare(a.Name, b.Name) })
	marker := q.Get("marker")
	if marker != "" && !slices.ContainsFunc(kps, func(kp ecs.Keypair) bool { return kp.Name == marker }) {
		return ecs.Errorf(ecs.CodeInvalidParam, "Invalid parameter: marker %s is not a key pair of the caller.", safeField(marker))
	}
	out := make([]keypairListEntry, 0, len(kps))
	for _, kp := range kps {
		if marker != "" && kp.Name <= marker {
			continue
		}
		if limit > 0 && len(out) == limit {
			break
		}
		out = append(out, keypairListEntry{Keypair: wireKeypair{Fingerprint: kp.Fingerprint, Name: kp.Name, PublicKey: kp.PublicKey, Type: kp.Type}})
	}
	return writeJSON(w, http.StatusOK, map[string]any{"keypairs": out})
}

func (h *Handler) showKeypair(w http.ResponseWriter, req *request) error {
	kp, err := h.svc.GetKeypair(req.r.Context(), req.caller, req.params[0])
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, map[string]wireKeypairDetail{"keypair": {PublicKey: kp.PublicKey, Name: kp.Name,
		Fingerprint: kp.Fingerprint, CreatedAt: fmtTime(kp.Created, "2006-01-02T15:04:05.000000"), ID: kp.ID, UserID: kp.UserID,
		Type: kp.Type}})
}

func (h *Handler) deleteKeypair(w http.ResponseWriter, req *request) error {
	if err := h.svc.DeleteKeypair(req.r.Context(), req.caller, req.params[0]); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}
