package cloud

import (
	"context"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/ecsproject/ecsd/internal/ecs"
	"github.com/ecsproject/ecsd/internal/store"
)

// A create's fields that no filter or job reads, a server's update, and
// its tags. The rules are the ones the API reference and the official
// SDK's models document; a value outside them is refused with 400 naming
// the field.

// MaxTags is the most tags a server has (as documented: 10).
const MaxTags = 10

// MaxDescription is the longest description, in characters.
const MaxDescription = 85

// CreateDetails are the create's description, tags, security groups and
// user data as given (CreateInput.UserData is the decoded form).
type CreateDetails struct {
	Description string
	// ServerTags is server.server_tags.
	ServerTags []TagInput
	// Tags is server.tags, each "key.value" (the older form).
	Tags []string
	// SecurityGroups are the ids of server.security_groups[].id.
	SecurityGroups []string
	// UserDataBase64 is server.user_data as given (base64).
	UserDataBase64 string
}

// TagInput is a tag of a request; Value nil is an absent value.
type TagInput struct {
	Key   string
	Value *string
}

// createDetails is what a create stores from its CreateDetails.
type createDetails struct {
	description    string
	tags           []ecs.Tag
	securityGroups []string
	sealedUserData []byte
}

func (d *createDetails) apply(srv *ecs.Server) {
	srv.Description, srv.Tags, srv.SecurityGroups, srv.SealedUserData = d.description, d.tags, d.securityGroups, d.sealedUserData
}

// checkCreateDetails validates a create's details and seals its user data.
func (s *Service) checkCreateDetails(in CreateDetails) (createDetails, error) {
	var d createDetails
	if err := checkDescription(in.Description, "server.description"); err != nil {
		return d, err
	}
	d.description = in.Description
	if len(in.ServerTags) > 0 && len(in.Tags) > 0 {
		return d, ecs.Errorf(ecs.CodeInvalidParam, "Invalid parameter: give server.server_tags or server.tags, not both.")
	}
	for i, tg := range in.ServerTags {
		t, err := checkTag(tg, createTagRule, "server.server_tags", i)
		if err != nil {
			return d, err
		}
		d.tags = append(d.tags, t)
	}
	for i, kv := range in.Tags {
		k, v, ok := strings.Cut(kv, ".")
		if !ok {
			return d, ecs.Errorf(ecs.CodeInvalidParam, "Invalid parameter: server.tags[%d] must be \"key.value\".", i)
		}
		t, err := checkTag(TagInput{Key: k, Value: &v}, legacyTagRule, "server.tags", i)
		if err != nil {
			return d, err
		}
		d.tags = append(d.tags, t)
	}
	if err := checkTagSet(d.tags, "server.server_tags"); err != nil {
		return d, err
	}
	for i, id := range in.SecurityGroups {
		if !isUUID(id) {
			return d, ecs.Errorf(ecs.CodeInvalidParam, "Invalid parameter: server.security_groups[%d].id must be a UUID.", i)
		}
		if slices.Contains(in.SecurityGroups[:i], id) {
			return d, ecs.Errorf(ecs.CodeInvalidParam, "Invalid parameter: server.security_groups names %s twice.", id)
		}
	}
	d.securityGroups = in.SecurityGroups
	if in.UserDataBase64 != "" {
		sealed, err := s.seal([]byte(in.UserDataBase64))
		if err != nil {
			return d, err
		}
		d.sealedUserData = sealed
	}
	return d, nil
}

// withUserData sets the server's UserData (base64, as the create gave it)
// from its sealed form; a server whose user data cannot be opened shows
// none (and the cause is not the caller's to see).
func (s *Service) withUserData(srv *ecs.Server) {
	if srv.SealedUserData == nil {
		return
	}
	if b, err := s.unseal(srv.SealedUserData); err == nil {
		srv.UserData = string(b)
	}
}

func checkDescription(d, field string) error {
	switch {
	case utf8.RuneCountInString(d) > MaxDescription:
		return ecs.Errorf(ecs.CodeInvalidParam, "Invalid parameter: %s is longer than %d characters.", field, MaxDescription)
	case strings.ContainsAny(d, "<>"), !utf8.ValidString(d), strings.ContainsRune(d, 0):
		return ecs.Errorf(ecs.CodeInvalidParam, "Invalid parameter: %s cannot contain < or >.", field)
	}
	return nil
}

// checkName is the create's rule for a server name.
func checkName(name, field string) error {
	switch {
	case name == "":
		return ecs.Errorf(ecs.CodeInvalidParam, "Invalid parameter: %s cannot be empty.", field)
	case utf8.RuneCountInString(name) > 64:
		return ecs.Errorf(ecs.CodeNameTooLong, "The length of the ECS name exceeds the maximum allowed limit.")
	case strings.ContainsAny(name, "<>&'\"\\/\x00\n\r\t"), !utf8.ValidString(name):
		return ecs.Errorf(ecs.CodeNameInvalid, "The ECS name contains invalid characters.")
	}
	return nil
}

// tagRule is one documented rule for tag keys and values.
type tagRule struct {
	key, value func(r rune) bool // the characters allowed
	// what says which characters, for the message.
	keyChars, valueChars string
}

func isLetterDigit(r rune) bool {
	return 'a' <= r && r <= 'z' || 'A' <= r && r <= 'Z' || '0' <= r && r <= '9' || r == '_' || r == '-' ||
		0x4E00 <= r && r <= 0x9FFF
}

var (
	// createTagRule is server_tags' (PostPaidServerTag): no control
	// characters and none of = * < > \ , | (nor / in a key).
	createTagRule = tagRule{
		key:        func(r rune) bool { return r >= 0x20 && !strings.ContainsRune("=*<>\\,|/", r) },
		value:      func(r rune) bool { return r >= 0x20 && !strings.ContainsRune("=*<>\\,|", r) },
		keyChars:   "no control characters and none of = * < > \\ , | /",
		valueChars: "no control characters and none of = * < > \\ , |",
	}
	// batchTagRule is BatchCreateServerTags' and the older tags'
	// (BatchAddServerTag): letters, digits, _ and - (and . in a value),
	// CJK characters.
	batchTagRule = tagRule{
		key:        isLetterDigit,
		value:      func(r rune) bool { return isLetterDigit(r) || r == '.' },
		keyChars:   "letters, digits, _ and -",
		valueChars: "letters, digits, _, - and .",
	}
	legacyTagRule = batchTagRule
)

// checkTag checks tag i of a list named field: a key of 1 to 36
// characters, a value of at most 43, each of the rule's characters.
func checkTag(tg TagInput, rule tagRule, field string, i int) (ecs.Tag, error) {
	t := ecs.Tag{Key: tg.Key}
	if tg.Value != nil {
		t.Value = *tg.Value
	}
	switch {
	case t.Key == "":
		return t, ecs.Errorf(ecs.CodeInvalidParam, "Invalid parameter: %s[%d].key cannot be empty.", field, i)
	case !utf8.ValidString(t.Key) || utf8.RuneCountInString(t.Key) > 36:
		return t, ecs.Errorf(ecs.CodeInvalidParam, "Invalid parameter: %s[%d].key is longer than 36 characters.", field, i)
	case strings.IndexFunc(t.Key, func(r rune) bool { return !rule.key(r) }) >= 0:
		return t, ecs.Errorf(ecs.CodeInvalidParam, "Invalid parameter: %s[%d].key may hold %s.", field, i, rule.keyChars)
	case !utf8.ValidString(t.Value) || utf8.RuneCountInString(t.Value) > 43:
		return t, ecs.Errorf(ecs.CodeInvalidParam, "Invalid parameter: %s[%d].value is longer than 43 characters.", field, i)
	case strings.IndexFunc(t.Value, func(r rune) bool { return !rule.value(r) }) >= 0:
		return t, ecs.Errorf(ecs.CodeInvalidParam, "Invalid parameter: %s[%d].value may hold %s.", field, i, rule.valueChars)
	}
	return t, nil
}

// checkTagSet refuses a repeated key and more than MaxTags tags.
func checkTagSet(tags []ecs.Tag, field string) error {
	if len(tags) > MaxTags {
		return ecs.Errorf(ecs.CodeInvalidParam, "Invalid parameter: an ECS has at most %d tags; %s would give it %d.", MaxTags, field,
			len(tags))
	}
	for i, t := range tags {
		for _, u := range tags[:i] {
			if u.Key == t.Key {
				return ecs.Errorf(ecs.CodeInvalidParam, "Invalid parameter: %s has the key %s twice.", field, t.Key)
			}
		}
	}
	return nil
}

// isUUID reports whether s is a UUID in its 8-4-4-4-12 hex form.
func isUUID(s string) bool {
	if len(s) != 36 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch i {
		case 8, 13, 18, 23:
			if c != '-' {
				return false
			}
		default:
			if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F') {
				return false
			}
		}
	}
	return true
}

// UpdateInput is UpdateServer's body: what is nil stays.
type UpdateInput struct {
	Name        *string
	Description *string
}

// UpdateServer changes a server's name and description (at any status: no
// job runs for it) and returns the server as changed.
func (s *Service) UpdateServer(ctx context.Context, c Caller, id string, in UpdateInput) (ecs.Server, error) {
	if in.Name != nil {
		if err := checkName(*in.Name, "server.name"); err != nil {
			return ecs.Server{}, err
		}
	}
	if in.Description != nil {
		if err := checkDescription(*in.Description, "server.description"); err != nil {
			return ecs.Server{}, err
		}
	}
	var srv ecs.Server
	err := s.store.Write(ctx, func(tx store.Tx) error {
		var err error
		if srv, err = lookupServer(ctx, tx.ServerGet, c.ProjectID, id); err != nil {
			return err
		}
		if in.Name == nil && in.Description == nil {
			return nil
		}
		if in.Name != nil {
			srv.Name = *in.Name
		}
		if in.Description != nil {
			srv.Description = *in.Description
		}
		srv.Updated = time.Now().UTC()
		return tx.ServerUpdate(ctx, &srv)
	})
	if err != nil {
		return srv, submitError(err)
	}
	s.withUserData(&srv)
	return srv, nil
}

// ServerTags returns a server's tags, by key.
func (s *Service) ServerTags(ctx context.Context, c Caller, id string) ([]ecs.Tag, error) {
	srv, err := s.GetServer(ctx, c, id)
	if err != nil {
		return nil, err
	}
	tags := slices.Clone(srv.Tags)
	slices.SortFunc(tags, func(a, b ecs.Tag) int { return strings.Compare(a.Key, b.Key) })
	return tags, nil
}

// AddServerTags is BatchCreateServerTags: each tag is added, or replaces
// the value of the server's tag of its key; the server then has at most
// MaxTags tags.
func (s *Service) AddServerTags(ctx context.Context, c Caller, id string, in []TagInput) error {
	if len(in) == 0 {
		return ecs.Errorf(ecs.CodeInvalidParam, "Invalid parameter: tags must name at least one tag.")
	}
	var add []ecs.Tag
	for i, tg := range in {
		t, err := checkTag(tg, batchTagRule, "tags", i)
		if err != nil {
			return err
		}
		add = append(add, t)
	}
	if len(add) > MaxTags {
		return ecs.Errorf(ecs.CodeInvalidParam, "Invalid parameter: an ECS has at most %d tags; tags names %d.", MaxTags, len(add))
	}
	if err := checkTagSet(add, "tags"); err != nil {
		return err
	}
	return s.changeTags(ctx, c, id, func(tags []ecs.Tag) ([]ecs.Tag, error) {
		for _, t := range add {
			if at := slices.IndexFunc(tags, func(u ecs.Tag) bool { return u.Key == t.Key }); at >= 0 {
				tags[at].Value = t.Value
			} else {
				tags = append(tags, t)
			}
		}
		if len(tags) > MaxTags {
			return nil, ecs.Errorf(ecs.CodeInvalidParam, "Invalid parameter: an ECS has at most %d tags; these would give it %d.",
				MaxTags, len(tags))
		}
		return tags, nil
	})
}

// DeleteServerTags is BatchDeleteServerTags: each tag named is removed,
// when its value is given only if the server's tag has that value; a tag
// the server does not have is no error.
func (s *Service) DeleteServerTags(ctx context.Context, c Caller, id string, in []TagInput) error {
	if len(in) == 0 {
		return ecs.Errorf(ecs.CodeInvalidParam, "Invalid parameter: tags must name at least one tag.")
	}
	for i, tg := range in {
		// The create's rule, the broadest: every tag a server can have
		// can be deleted.
		if _, err := checkTag(tg, createTagRule, "tags", i); err != nil {
			return err
		}
	}
	return s.changeTags(ctx, c, id, func(tags []ecs.Tag) ([]ecs.Tag, error) {
		return slices.DeleteFunc(tags, func(t ecs.Tag) bool {
			return slices.ContainsFunc(in, func(d TagInput) bool { return d.Key == t.Key && (d.Value == nil || *d.Value == t.Value) })
		}), nil
	})
}

func (s *Service) changeTags(ctx context.Context, c Caller, id string, change func([]ecs.Tag) ([]ecs.Tag, error)) error {
	err := s.store.Write(ctx, func(tx store.Tx) error {
		srv, err := lookupServer(ctx, tx.ServerGet, c.ProjectID, id)
		if err != nil {
			return err
		}
		tags, err := change(slices.Clone(srv.Tags))
		if err != nil {
			return err
		}
		return tx.ServerTagsSet(ctx, c.ProjectID, srv.ID, tags)
	})
	if err != nil {
		return submitError(err)
	}
	return nil
}

// ProjectTag is a tag key of a project's servers with its values.
type ProjectTag struct {
	Key    string
	Values []string
}

// ProjectTags is ListServerTags: the tags of the project's servers, by
// key, each with its values.
func (s *Service) ProjectTags(ctx context.Context, c Caller) ([]ProjectTag, error) {
	tags, err := s.store.ServerTagList(ctx, c.ProjectID)
	if err != nil {
		return nil, ecs.Wrap(ecs.CodeSystem, err, "Failed to query the tags.")
	}
	var out []ProjectTag
	for _, t := range tags {
		if n := len(out); n > 0 && out[n-1].Key == t.Key {
			out[n-1].Values = append(out[n-1].Values, t.Value)
			continue
		}
		out = append(out, ProjectTag{Key: t.Key, Values: []string{t.Value}})
	}
	return out, nil
}

// TagQuery is ListServersByTag's filter.
type TagQuery struct {
	// Tags: the server has every key, each with one of its values (any
	// value when none is given).
	Tags []ProjectTag
	// NotTags: the server does not match all of these (as Tags).
	NotTags []ProjectTag
	// Name, when not "", keeps the servers whose name contains it.
	Name   string
	Offset int
	// Limit is the page's size; 0 is an empty page (the count stays).
	Limit int
}

// CheckTagQuery checks a list of ListServersByTag's tags or not_tags:
// at most 10 keys, not empty nor repeated, each with at most 10 distinct
// values (a key up to 127 characters, a value up to 255).
func CheckTagQuery(tags []ProjectTag, field string) error {
	if len(tags) > 10 {
		return ecs.Errorf(ecs.CodeInvalidParam, "Invalid parameter: %s has more than 10 keys.", field)
	}
	for i, t := range tags {
		switch {
		case t.Key == "":
			return ecs.Errorf(ecs.CodeInvalidParam, "Invalid parameter: %s[%d].key cannot be empty.", field, i)
		case !utf8.ValidString(t.Key) || utf8.RuneCountInString(t.Key) > 127:
			return ecs.Errorf(ecs.CodeInvalidParam, "Invalid parameter: %s[%d].key is longer than 127 characters.", field, i)
		case slices.ContainsFunc(tags[:i], func(u ProjectTag) bool { return u.Key == t.Key }):
			return ecs.Errorf(ecs.CodeInvalidParam, "Invalid parameter: %s has the key %s twice.", field, t.Key)
		case len(t.Values) > 10:
			return ecs.Errorf(ecs.CodeInvalidParam, "Invalid parameter: %s[%d].values has more than 10 values.", field, i)
		}
		for j, v := range t.Values {
			if !utf8.ValidString(v) || utf8.RuneCountInString(v) > 255 {
				return ecs.Errorf(ecs.CodeInvalidParam, "Invalid parameter: %s[%d].values[%d] is longer than 255 characters.", field, i, j)
			}
			if slices.Contains(t.Values[:j], v) {
				return ecs.Errorf(ecs.CodeInvalidParam, "Invalid parameter: %s[%d].values has %s twice.", field, i, v)
			}
		}
	}
	return nil
}

// ServersByTag is ListServersByTag: the project's servers that match q
// (newest first), the page of q.Offset and q.Limit, and how many match.
// The store filters and pages.
func (s *Service) ServersByTag(ctx context.Context, c Caller, q TagQuery) ([]ecs.Server, int, error) {
	p := store.ServerListParams{ProjectID: c.ProjectID, NameContains: q.Name, Offset: q.Offset, Limit: max(q.Limit, 1)}
	for _, t := range q.Tags {
		p.TagMatches = append(p.TagMatches, store.TagMatch{Key: t.Key, Values: t.Values})
	}
	for _, t := range q.NotTags {
		p.NotTagMatches = append(p.NotTagMatches, store.TagMatch{Key: t.Key, Values: t.Values})
	}
	page, total, err := s.store.ServerList(ctx, p)
	if err != nil {
		return nil, 0, ecs.Wrap(ecs.CodeSystem, err, "Failed to query ECSs.")
	}
	if q.Limit == 0 {
		page = nil // an empty page; the count stays
	}
	return page, total, nil
}
