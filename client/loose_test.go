package client

import (
	"encoding/json"
	"strconv"
	"testing"
	"unicode/utf8"
)

func TestLooseInt(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in      string
		want    LooseInt
		wantErr bool
	}{
		{`1`, 1, false},
		{`"1"`, 1, false},
		{`" 16384 "`, 16384, false},
		{`1024`, 1024, false},
		{`null`, 0, false},
		{`""`, 0, false},
		{`-3`, -3, false},
		{`1.5`, 0, true},
		{`"x"`, 0, true},
		{`true`, 0, true},
		{`{}`, 0, true},
		{`"99999999999999999999"`, 0, true},
	}
	for _, tt := range tests {
		var got LooseInt
		err := json.Unmarshal([]byte(tt.in), &got)
		if (err != nil) != tt.wantErr || got != tt.want {
			t.Errorf("unmarshal %s = %d, %v; want %d, error %v", tt.in, got, err, tt.want, tt.wantErr)
		}
	}
	if b, _ := json.Marshal(LooseInt(1024)); string(b) != "1024" {
		t.Errorf("marshal = %s, want a number", b)
	}
}

func TestLooseString(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in      string
		want    LooseString
		wantErr bool
	}{
		{`"1024"`, "1024", false},
		{`1024`, "1024", false},
		{`2.5`, "2.5", false},
		{`null`, "", false},
		{`"false"`, "false", false},
		{`false`, "", true},
		{`[]`, "", true},
	}
	for _, tt := range tests {
		var got LooseString
		err := json.Unmarshal([]byte(tt.in), &got)
		if (err != nil) != tt.wantErr || got != tt.want {
			t.Errorf("unmarshal %s = %q, %v; want %q, error %v", tt.in, got, err, tt.want, tt.wantErr)
		}
	}
	if b, _ := json.Marshal(LooseString("1")); string(b) != `"1"` {
		t.Errorf("marshal = %s, want a string", b)
	}
}

// FuzzLoose checks that the tolerant decoders never panic and that what
// they accept round-trips.
func FuzzLoose(f *testing.F) {
	for _, s := range []string{`1`, `"1"`, `null`, `""`, `" 2 "`, `1e3`, `"-0"`, `{}`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		var n LooseInt
		if json.Unmarshal([]byte(in), &n) == nil {
			b, err := json.Marshal(n)
			if err != nil || string(b) != strconv.FormatInt(int64(n), 10) {
				t.Fatalf("LooseInt %q -> %d -> %s, %v", in, n, b, err)
			}
		}
		var s LooseString
		if json.Unmarshal([]byte(in), &s) == nil && utf8.ValidString(string(s)) {
			b, err := json.Marshal(s)
			var back string
			if err != nil || json.Unmarshal(b, &back) != nil || back != string(s) {
				t.Fatalf("LooseString %q -> %q -> %s, %v", in, s, b, err)
			}
		}
	})
}

// FuzzParseAPIError checks that any error body yields an error with its
// status, and a code only together with a message.
func FuzzParseAPIError(f *testing.F) {
	for _, s := range []string{
		`{"error":{"code":"Ecs.0005","message":"m"}}`,
		`{"error_code":"APIGW.0301","error_msg":"m","request_id":"r"}`,
		`{"a":{"b":{"c":{"code":"X","message":"y"}}}}`,
		`{"itemNotFound":{"code":404}}`,
		`boom`, ``, `null`, `[1,2]`,
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, body string) {
		e := parseAPIError(418, "", []byte(body))
		if e.Status != 418 {
			t.Fatalf("status = %d", e.Status)
		}
		if e.Code != "" && e.Message == "" {
			t.Fatalf("code %q without a message for %q", e.Code, body)
		}
		if e.Error() == "" {
			t.Fatal("empty Error()")
		}
	})
}
