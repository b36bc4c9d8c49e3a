package password

import (
	"errors"
	"regexp"
	"strings"
	"testing"

	"github.com/ecsproject/ecsd/internal/ecs"
)

// ruleOf returns the message of err, "" for nil, failing on any other kind.
func ruleOf(t testing.TB, pw string, err error) string {
	t.Helper()
	if err == nil {
		return ""
	}
	var e *ecs.Error
	if !errors.As(err, &e) || e.Code != ecs.CodePasswordComplexity || e.Cause != nil {
		t.Fatalf("Validate(%q) error = %#v, want *ecs.Error with code %s and no cause", pw, err, ecs.CodePasswordComplexity)
	}
	if !knownMessage(e.Message) {
		t.Fatalf("Validate(%q) message %q is not one of the fixed rule messages", pw, e.Message)
	}
	return e.Message
}

// knownMessage reports whether m is one of the fixed rule messages, which
// proves that nothing from the password flowed into it.
func knownMessage(m string) bool {
	switch m {
	case msgLength, msgCharset, msgClasses, msgWinUser, msgWinReverse, msgWinRun:
		return true
	}
	return false
}

func TestValidate(t *testing.T) {
	t.Parallel()
	type tc struct {
		name    string
		pw      string
		windows bool
		want    string // expected message, "" for accepted
	}
	tests := []tc{
		{"length 7", "Abcde1!", false, msgLength},
		{"length 8", "Abcdef1!", false, ""},
		{"length 26", "Abcdef1!" + strings.Repeat("x", 18), false, ""},
		{"length 27", "Abcdef1!" + strings.Repeat("x", 19), false, msgLength},
		{"empty", "", false, msgLength},
		{"length 100", strings.Repeat("Ab1!", 25), true, msgLength},
		{"4 two-byte runes are 4 characters", "éééé", false, msgLength},
		{"26 characters, 27 bytes", "Abcdef1!" + strings.Repeat("x", 17) + "é", false, msgCharset},
		{"8 characters, 9 bytes", "Abcdef1é", false, msgCharset},
		{"invalid UTF-8 byte", "Abcdef1\xff", false, msgCharset},

		{"all four classes", "Abcd12!@", false, ""},
		{"upper lower digit", "Abcdefg1", false, ""},
		{"upper lower special", "Abcdefg-", false, ""},
		{"upper digit special", "ABCDEF1-", false, ""},
		{"lower digit special", "abcdef1-", false, ""},
		{"upper lower", "Abcdefgh", false, msgClasses},
		{"upper digit", "ABCDEF12", false, msgClasses},
		{"upper special", "ABCDEF!@", false, msgClasses},
		{"lower digit", "abcdef12", false, msgClasses},
		{"lower special", "abcdef!@", false, msgClasses},
		{"digit special", "123456!@", false, msgClasses},
		{"upper only", "ABCDEFGH", false, msgClasses},
		{"lower only", "abcdefgh", false, msgClasses},
		{"digits only", "12345678", false, msgClasses},
		{"specials only", "!@$%^-_=", false, msgClasses},
		{"all specials with upper and lower", Specials + "Aa", false, ""},
		{"specials and a digit", "1" + Specials[:10] + "a", false, ""},

		{"Linux allows Administrator", "Administrator1!", false, ""},
		{"Linux allows the reverse", "Rotartsinimda1!", false, ""},
		{"Linux allows runs", "Q9-adm-x", false, ""},
		{"Windows forbids Administrator", "Administrator1!", true, msgWinUser},
		{"Windows forbids ADMINISTRATOR", "x1-ADMINISTRATOR", true, msgWinUser},
		{"Windows forbids mixed-case Administrator", "9!aDmInIsTrAtOr", true, msgWinUser},
		{"Windows forbids the reverse", "Rotartsinimda1!", true, msgWinReverse},
		{"Windows forbids the reverse, upper case", "1!ROTARTSINIMDA", true, msgWinReverse},
		{"Windows forbids Adm", "xAdm-1234Z", true, msgWinRun},
		{"Windows forbids ADM", "Q9-ADM-x", true, msgWinRun},
		{"Windows forbids tor at the end", "Zz9-8765tor", true, msgWinRun},
		{"Windows forbids a run of 5", "Q9-nistr-x", true, msgWinRun},
		{"Windows allows runs of 2", "Ad-Mi-Ni-5", true, ""},
		{"Windows allows the reversed run ROT", "Zz9-ROT-5", true, ""},
		{"Windows allows the reversed run mda", "Zz9-mda-5", true, ""},
		{"Windows allows a valid password", "Xy7-Qw8!Zk", true, ""},
		{"Windows still checks length", "Adm1!", true, msgLength},
	}
	for _, c := range []string{" ", "(", ")", "'", "\"", "\\", "<", ">", "&", ";", "|", "`", "\t", "\n", "\x00", "\x7f", "é", "中", "😀", "€"} {
		tests = append(tests, tc{"forbidden " + c, "Abcdef1" + c, false, msgCharset}, tc{"forbidden on Windows " + c, "Abc" + c + "def1", true, msgCharset})
	}
	for _, c := range Specials {
		// Lower, digit and this special: valid only if it counts as a special.
		tests = append(tests, tc{"special " + string(c), "abcdef1" + string(c), false, ""})
	}
	for i := 0; i+3 <= len(windowsUser); i++ {
		run := windowsUser[i : i+3]
		tests = append(tests,
			tc{"Windows run " + run, "Q9-" + run + "-x", true, msgWinRun},
			tc{"Windows run upper " + run, "q9-" + strings.ToUpper(run) + "-x", true, msgWinRun},
			tc{"Linux run " + run, "Q9-" + run + "-x", false, ""})
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got := ruleOf(t, tt.pw, Validate(tt.pw, tt.windows))
			if got != tt.want {
				t.Fatalf("Validate(%q, windows=%v) = %q, want %q", tt.pw, tt.windows, got, tt.want)
			}
			if ref := refValidate(tt.pw, tt.windows); ref != got {
				t.Fatalf("reference says %q", ref)
			}
		})
	}
}

func TestMessagesNeverContainThePassword(t *testing.T) {
	t.Parallel()
	for _, pw := range []string{
		"short1!", "waytoolongpassword-1234567890", "Password 1", "Pa(ss)word1", "Passwörd1", "lowercaseonly",
		"Administrator1!", "Rotartsinimda1!", "MyAdmPass-1", "Hunter2tor", "S3cret pass", "🔑Secret1!",
	} {
		// Every one of these breaks a rule on Windows; some are fine on Linux.
		for _, windows := range []bool{false, true} {
			err := Validate(pw, windows)
			if err == nil {
				if windows {
					t.Fatalf("Validate(%q, windows) accepted a password this test expects to be rejected", pw)
				}
				continue
			}
			if strings.Contains(err.Error(), pw) {
				t.Errorf("Validate(%q, %v) error %q contains the password", pw, windows, err)
			}
			ruleOf(t, pw, err)
		}
	}
}

// Known answers from glibc/OpenSSL: openssl passwd -6 -salt SALT PASSWORD.
var knownHashes = []struct{ pw, salt, hash string }{
	{"S3cret-pass", "saltsalt", "$6$saltsalt$u.bK8EH15XPbqc77Ej2MDtF948zvGrktxCzruTZJ36jS8DuU06Y0ulM0vAdkKSA7YVPPbRT.w4AJ88Um5UqMw."},
	{"Hello world!", "saltstring", "$6$saltstring$svn8UoSVapNtMuq1ukKS4tPQd8iKwSMHWjl/O817G3uBnIFNjnQJuesI68u4OTLiBFdcbYEdFCoEOfaS35inz1"},
	{"Adm1n-pass", "abcdefghijklmnop", "$6$abcdefghijklmnop$cWQXVaFzIS0rm2q6jj9THeTGuC.ueUXszmkqLEyHoEikZ1wSbfyNoANH9lMYQAnhR9YZIwDeJk0E3UtZiXQdk/"},
}

func TestHashKnownAnswers(t *testing.T) {
	t.Parallel()
	for _, k := range knownHashes {
		got, err := hashWithSalt(k.pw, k.salt)
		if err != nil {
			t.Fatal(err)
		}
		if got != k.hash {
			t.Errorf("hash(%q, %q)\n got %s\nwant %s", k.pw, k.salt, got, k.hash)
		}
		if !Verify(k.hash, k.pw) {
			t.Errorf("Verify(%s, %q) = false", k.hash, k.pw)
		}
		if Verify(k.hash, k.pw+" ") || Verify(k.hash, strings.ToLower(k.pw)) || Verify(k.hash, "") {
			t.Errorf("Verify(%s) accepted a wrong password", k.hash)
		}
	}
}

var cryptSHA512 = regexp.MustCompile(`^\$6\$[./0-9A-Za-z]{16}\$[./0-9A-Za-z]{86}$`)

func TestHash(t *testing.T) {
	t.Parallel()
	const pw = "Xy7-Qw8!Zk"
	h1, err := Hash(pw)
	if err != nil {
		t.Fatal(err)
	}
	h2, err := Hash(pw)
	if err != nil {
		t.Fatal(err)
	}
	for _, h := range []string{h1, h2} {
		if !cryptSHA512.MatchString(h) {
			t.Errorf("Hash = %q, want $6$<16-char salt>$<86-char hash> without rounds=", h)
		}
		if strings.Contains(h, pw) {
			t.Errorf("hash %q contains the password", h)
		}
		if !Verify(h, pw) {
			t.Errorf("Verify(Hash(pw), pw) = false")
		}
		if Verify(h, pw[:len(pw)-1]) || Verify(h, pw+"x") {
			t.Errorf("Verify(%s) accepted a wrong password", h)
		}
	}
	if h1[:19] == h2[:19] {
		t.Errorf("two hashes share the salt %q: salt is not random", h1[3:19])
	}
}

func TestVerifyMalformed(t *testing.T) {
	t.Parallel()
	good := knownHashes[0]
	tests := map[string]bool{
		good.hash: true,
		// glibc treats an explicit default round count like the omitted one.
		"$6$rounds=5000$saltsalt$u.bK8EH15XPbqc77Ej2MDtF948zvGrktxCzruTZJ36jS8DuU06Y0ulM0vAdkKSA7YVPPbRT.w4AJ88Um5UqMw.": true,
		"$6$rounds=5001$saltsalt$u.bK8EH15XPbqc77Ej2MDtF948zvGrktxCzruTZJ36jS8DuU06Y0ulM0vAdkKSA7YVPPbRT.w4AJ88Um5UqMw.": false,
		strings.Replace(good.hash, "u.bK8", "u.bK9", 1):                                                                  false,
		strings.Replace(good.hash, "saltsalt", "saltsalu", 1):                                                            false,
		strings.Replace(good.hash, "$6$", "$5$", 1):                                                                      false,
		strings.TrimSuffix(good.hash, "."):                                                                               false,
		"":                                                                                                               false,
		"S3cret-pass":                                                                                                    false,
		"$6$":                                                                                                            false,
		"$6$saltsalt$":                                                                                                   false,
		"$6$saltsalt":                                                                                                    false,
		"$1$saltsalt$abc":                                                                                                false,
		"$6$rounds=x$saltsalt$u.bK8EH15X":                                                                                false,
	}
	for h, want := range tests {
		if got := Verify(h, good.pw); got != want {
			t.Errorf("Verify(%q) = %v, want %v", h, got, want)
		}
	}
}

// refValidate is a deliberately plain restatement of the rules, used to
// cross-check Validate.
func refValidate(pw string, windows bool) string {
	runes := []rune(pw)
	if len(runes) < 8 || len(runes) > 26 {
		return msgLength
	}
	classes := map[string]bool{}
	for _, r := range runes {
		switch {
		case r >= 'A' && r <= 'Z':
			classes["upper"] = true
		case r >= 'a' && r <= 'z':
			classes["lower"] = true
		case r >= '0' && r <= '9':
			classes["digit"] = true
		case strings.ContainsRune("!@$%^-_=+[{}]:,./?~#*", r):
			classes["special"] = true
		default:
			return msgCharset
		}
	}
	if len(classes) < 3 {
		return msgClasses
	}
	if windows {
		l := strings.ToLower(pw)
		const name = "administrator"
		if strings.Contains(l, name) {
			return msgWinUser
		}
		if strings.Contains(l, "rotartsinimda") {
			return msgWinReverse
		}
		for i := 0; i < len(name); i++ {
			for j := i + 3; j <= len(name); j++ {
				if strings.Contains(l, name[i:j]) {
					return msgWinRun
				}
			}
		}
	}
	return ""
}

// FuzzValidate: no panic, messages are fixed (so no input leaks into them),
// and Validate agrees with refValidate.
func FuzzValidate(f *testing.F) {
	for _, s := range []string{"", "Abcdef1!", "Administrator1!", "Rotartsinimda1!", "Q9-adm-x", "Zz9-ROT-5", "Abcdef1é", "Abcdef1\xff", "the password", "letters, digits"} {
		f.Add(s, true)
		f.Add(s, false)
	}
	f.Fuzz(func(t *testing.T, pw string, windows bool) {
		err := Validate(pw, windows)
		got := ruleOf(t, pw, err) // also asserts the message is a fixed one
		if want := refValidate(pw, windows); got != want {
			t.Fatalf("Validate(%q, %v) = %q, reference says %q", pw, windows, got, want)
		}
		// The literal "the message never contains the input" cannot hold for
		// inputs that are pieces of the fixed text itself ("the password"
		// fails the length rule and appears in its message). ruleOf is the
		// real guarantee: the message is one of six constants, so no input
		// flows into it. Inputs that are not such pieces must never appear.
		if err != nil && len(pw) >= 3 && strings.Contains(err.Error(), pw) && !pieceOfFixedText(pw) {
			t.Fatalf("error %q contains the password %q", err, pw)
		}
	})
}

func pieceOfFixedText(s string) bool {
	for _, m := range []string{msgLength, msgCharset, msgClasses, msgWinUser, msgWinReverse, msgWinRun} {
		if strings.Contains(ecs.CodePasswordComplexity.Wire+": "+m, s) {
			return true
		}
	}
	return false
}

// FuzzHashVerify: a hash verifies its own password and rejects neighbours.
// Each input costs a few milliseconds (5000 SHA-512 rounds).
func FuzzHashVerify(f *testing.F) {
	f.Add("S3cret-pass")
	f.Add("")
	f.Add("ü\x00x")
	f.Fuzz(func(t *testing.T, pw string) {
		h, err := hashWithSalt(pw, "fuzzsalt")
		if err != nil {
			t.Fatal(err)
		}
		if !cryptSHA512Salt8.MatchString(h) {
			t.Fatalf("hash %q is malformed", h)
		}
		if !Verify(h, pw) {
			t.Fatalf("Verify(hash(%q), %q) = false", pw, pw)
		}
		if Verify(h, pw+"x") {
			t.Fatalf("Verify accepted %q+\"x\"", pw)
		}
		if pw != "" && Verify(h, pw[1:]) {
			t.Fatalf("Verify accepted %q[1:]", pw)
		}
	})
}

var cryptSHA512Salt8 = regexp.MustCompile(`^\$6\$fuzzsalt\$[./0-9A-Za-z]{86}$`)

// TestValidateLimits: the limits alone (is_check_password false) take a
// password of one class and the Windows user name, and still refuse the
// lengths and characters Validate refuses.
func TestValidateLimits(t *testing.T) {
	t.Parallel()
	for _, c := range []struct{ pw, want string }{
		{"lowercaseonly", ""},
		{"12345678", ""},
		{"Administrator", ""},
		{"!@$%^-_=", ""},
		{"", msgLength},
		{"short", msgLength},
		{strings.Repeat("a", 27), msgLength},
		{"has space", msgCharset},
		{"back\\slash", msgCharset},
		{"dollar$(id)", msgCharset},
		{"éééééééé", msgCharset},
		{"new\nline1", msgCharset},
	} {
		if got := ruleOf(t, c.pw, ValidateLimits(c.pw)); got != c.want {
			t.Errorf("ValidateLimits(%q) = %q, want %q", c.pw, got, c.want)
		}
	}
}
