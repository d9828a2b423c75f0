package passwordpolicy

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"unicode/utf8"
)

const (
	lower   = "abcdefghijklmnopqrstuvwxyz"
	upper   = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
	digits  = "0123456789"
	symbols = "!@#"
)

// strong is a policy with four disjoint charsets, each required.
var strong = `
length = 20
rule "charset" {
  charset = "` + lower + `"
  min-chars = 2
}
rule "charset" {
  charset = "` + upper + `"
  min-chars = 2
}
rule "charset" {
  charset = "` + digits + `"
  min-chars = 2
}
rule "charset" {
  charset = "` + symbols + `"
  min-chars = 1
}
`

func TestParse(t *testing.T) {
	for _, tc := range []struct {
		name, text string
		length     int
		rules      []Rule
		alphabet   string
	}{
		{"hcl", strong, 20,
			[]Rule{{Charset: lower, MinChars: 2}, {Charset: upper, MinChars: 2}, {Charset: digits, MinChars: 2}, {Charset: symbols, MinChars: 1}},
			"!#0123456789@" + upper + lower},
		{"min-chars defaults to 0", "length = 4\nrule \"charset\" { charset = \"ab\" }", 4,
			[]Rule{{Charset: "ab"}}, "ab"},
		{"one-line blocks and overlapping charsets", `length = 8
rule "charset" { charset = "abcde" min-chars = 1 }
rule "charset" { charset = "cdefg" min-chars = 1 }`, 8,
			[]Rule{{Charset: "abcde", MinChars: 1}, {Charset: "cdefg", MinChars: 1}}, "abcdefg"},
		{"json list", `{"length": 10, "rule": [{"charset": {"charset": "xyz", "min-chars": 1}}, {"charset": {"charset": "123"}}]}`, 10,
			[]Rule{{Charset: "xyz", MinChars: 1}, {Charset: "123"}}, "123xyz"},
		{"json object", `{"length": 100, "rule": {"charset": {"charset": "zyx", "min-chars": 100}}}`, 100,
			[]Rule{{Charset: "zyx", MinChars: 100}}, "xyz"},
		{"json rules under one type", `{"length": 5, "rule": {"charset": [{"charset": "a"}, {"charset": "b", "min-chars": 5}]}}`, 5,
			[]Rule{{Charset: "a"}, {Charset: "b", MinChars: 5}}, "ab"},
		{"utf-8, space and duplicates", "length = 6\nrule \"charset\" { charset = \"ééa a\" }", 6,
			[]Rule{{Charset: "ééa a"}}, " aé"},
		{"length written as a whole float (JSON)", `{"length": 12.0, "rule": [{"charset": {"charset": "ab"}}]}`, 12,
			[]Rule{{Charset: "ab"}}, "ab"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p, err := Parse(tc.text)
			if err != nil {
				t.Fatal(err)
			}
			if p.Length != tc.length || p.Alphabet() != tc.alphabet || len(p.Rules) != len(tc.rules) {
				t.Fatalf("length %d, alphabet %q, %d rules", p.Length, p.Alphabet(), len(p.Rules))
			}
			for i, r := range p.Rules {
				if r.Charset != tc.rules[i].Charset || r.MinChars != tc.rules[i].MinChars {
					t.Errorf("rule %d = %q min %d, want %q min %d", i+1, r.Charset, r.MinChars, tc.rules[i].Charset, tc.rules[i].MinChars)
				}
			}
		})
	}
}

func TestParseErrors(t *testing.T) {
	rule := "\nrule \"charset\" { charset = \"abc\" }"
	for _, tc := range []struct{ name, text, want string }{
		{"empty", "", "length is required"},
		{"no length", `rule "charset" { charset = "abc" }`, "length is required"},
		{"no rule", "length = 20", `at least one rule "charset" is required`},
		{"too short", "length = 3" + rule, "length must be from 4 to 100, not 3"},
		{"too long", "length = 101" + rule, "length must be from 4 to 100, not 101"},
		{"negative length", "length = -20" + rule, "length must be from 4 to 100, not -20"},
		{"huge length", "length = 9999999999999" + rule, "length is out of range"},
		{"length as a string", `length = "20"` + rule, "length must be a number, not a string"},
		{"fractional length", "length = 20.5" + rule, "length must be a whole number"},
		{"min-chars over length", `length = 4
rule "charset" { charset = "abc" min-chars = 3 }
rule "charset" { charset = "123" min-chars = 2 }`, "the rules require at least 5 characters (their min-chars together), but length is 4"},
		{"min-chars too large", `length = 20` + "\n" + `rule "charset" { charset = "a" min-chars = 9223372036854775807 }`, "rule 1: min-chars is out of range"},
		{"min-chars over any length", `length = 20` + "\n" + `rule "charset" { charset = "a" min-chars = 101 }`, "rule 1: min-chars must be from 0 to 100, not 101"},
		{"negative min-chars", `length = 20` + "\n" + `rule "charset" { charset = "a" min-chars = -1 }`, "rule 1: min-chars must be from 0 to 100, not -1"},
		{"min-chars as a string", `length = 20` + "\n" + `rule "charset" { charset = "a" min-chars = "1" }`, "rule 1: min-chars must be a number, not a string"},
		{"empty charset", "length = 20" + rule + "\nrule \"charset\" { charset = \"\" }", "rule 2: charset is empty"},
		{"no charset", "length = 20\nrule \"charset\" { min-chars = 1 }", "rule 1: charset is empty"},
		{"charset as a list", "length = 20\nrule \"charset\" { charset = [\"a\"] }", "rule 1: charset must be a string"},
		{"non-printable", "length = 20\nrule \"charset\" { charset = \"ab\\tc\" }", "rule 1: charset holds the non-printable character U+0009"},
		{"unknown top-level key", "length = 20\nsymbols = 2" + rule, `unknown key "symbols"`},
		{"unknown rule key", "length = 20\nrule \"charset\" { charset = \"a\" max-chars = 2 }", `rule 1: unknown key "max-chars"`},
		{"unknown rule type", "length = 20\nrule \"regex\" { pattern = \"a\" }", `unknown rule type "regex"`},
		{"rule without a type", "length = 20\nrule { charset = \"abc\" }", `rule "charset" must be a block`},
		{"rule as a value", "length = 20\nrule = 5", `"rule" must be a block`},
		{"syntax error", "length = 20\nrule \"charset\" {", "the text does not parse"},
		{"bad json", `{"length": 20, "rule": [`, "the text does not parse"},
		{"too many characters", "length = 20\nrule \"charset\" { charset = \"" + manyChars(257) + "\" }",
			"the charsets together hold 257 distinct characters; at most 256 are allowed"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p, err := Parse(tc.text)
			if err == nil {
				t.Fatalf("parsed: %+v", p)
			}
			if !errors.Is(err, ErrInvalid) || !strings.HasPrefix(err.Error(), "invalid password policy: ") || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %q, want one containing %q", err, tc.want)
			}
		})
	}
	// Exactly MaxCharset distinct characters are fine.
	if _, err := Parse("length = 20\nrule \"charset\" { charset = \"" + manyChars(256) + "\" }"); err != nil {
		t.Fatal(err)
	}
}

// manyChars returns n distinct printable characters that need no escape
// in an HCL string.
func manyChars(n int) string {
	var b strings.Builder
	for r := rune(0x100); b.Len() == 0 || utf8.RuneCountInString(b.String()) < n; r++ {
		b.WriteRune(r)
	}
	return b.String()
}

func TestCheck(t *testing.T) {
	p, err := Parse("length = 6\nrule \"charset\" { charset = \"abc\" min-chars = 2 }\nrule \"charset\" { charset = \"cde\" min-chars = 3 }")
	if err != nil {
		t.Fatal(err)
	}
	for pw, want := range map[string]string{
		"abcdee":         "",
		"aacccc":         "", // c counts for both rules
		"abcde":          "the password has 5 characters, not 6",
		"abcdeee":        "the password has 7 characters, not 6",
		"abcdex":         "character 6 of the password is in no charset",
		"abddee":         "",
		"addeee":         "rule 1: the password has 1 characters of its charset, not at least 2",
		"aabbde":         "rule 2: the password has 2 characters of its charset, not at least 3",
		"ab\xffdee":      "the password is not UTF-8",
		"abcdé\u0301":    "character 5 of the password is in no charset",
		"ééééé" + "\x00": "character 1 of the password is in no charset",
	} {
		err := p.Check(pw)
		if got := fmt.Sprint(err); want == "" && err != nil || want != "" && got != want {
			t.Errorf("Check(%q) = %v, want %q", pw, err, want)
		}
	}
}

// TestGenerateMeetsEveryRule generates many passwords from policies whose
// rules a password drawn from the alphabet alone would rarely meet: each
// has its length and every rule's min-chars.
func TestGenerateMeetsEveryRule(t *testing.T) {
	for _, tc := range []struct {
		text string
		// distinct is how many of the passwords must differ.
		distinct int
	}{
		{strong, 2000},
		// The rules fill the whole length: "aabb" in any of its 6 orders.
		{"length = 4\nrule \"charset\" { charset = \"a\" min-chars = 2 }\nrule \"charset\" { charset = \"b\" min-chars = 2 }", 6},
		// A rare charset required many times over.
		{"length = 30\nrule \"charset\" { charset = \"" + lower + upper + digits + "\" }\nrule \"charset\" { charset = \"!\" min-chars = 10 }", 2000},
		// Overlapping charsets.
		{"length = 5\nrule \"charset\" { charset = \"abcde\" min-chars = 2 }\nrule \"charset\" { charset = \"cdefg\" min-chars = 3 }", 500},
		// The longest password and the widest alphabet.
		{"length = 100\nrule \"charset\" { charset = \"" + manyChars(256) + "\" min-chars = 1 }", 2000},
	} {
		text := tc.text
		p, err := Parse(text)
		if err != nil {
			t.Fatal(err)
		}
		seen := map[string]bool{}
		for range 2000 {
			pw := p.Generate()
			if err := p.Check(pw); err != nil {
				t.Fatalf("%q from\n%s\n%v", pw, text, err)
			}
			seen[pw] = true
		}
		if len(seen) < tc.distinct {
			t.Errorf("%d distinct passwords out of 2000, want %d, from\n%s", len(seen), tc.distinct, text)
		}
	}
}

// TestGenerateIsUniform counts the characters of many passwords: within
// each charset every character comes up about as often as the others.
// The counts have a standard deviation under 1.5% of their mean, so the
// 10% bound cannot fail by chance, while a modulo bias (the first
// 256 mod 65 characters of the alphabet drawn a third more often) or a
// mistake in the shuffle or the draws fails it.
func TestGenerateIsUniform(t *testing.T) {
	p, err := Parse(strong)
	if err != nil {
		t.Fatal(err)
	}
	const passwords = 20000
	counts := map[rune]int{}
	positions := map[string][]int{} // charset → count by position
	for range passwords {
		for i, c := range p.Generate() {
			counts[c]++
			for _, cs := range []string{lower, upper, digits, symbols} {
				if strings.ContainsRune(cs, c) {
					if positions[cs] == nil {
						positions[cs] = make([]int, p.Length)
					}
					positions[cs][i]++
				}
			}
		}
	}
	for _, cs := range []string{lower, upper, digits, symbols} {
		total := 0
		for _, c := range cs {
			total += counts[c]
		}
		mean := float64(total) / float64(len(cs))
		for _, c := range cs {
			if d := float64(counts[c]) - mean; d > 0.1*mean || d < -0.1*mean {
				t.Errorf("%q came %d times; the mean of its charset %q is %.0f", c, counts[c], cs, mean)
			}
		}
		// Required characters are not kept at fixed positions.
		pmean := float64(total) / float64(p.Length)
		for i, n := range positions[cs] {
			if d := float64(n) - pmean; d > 0.1*pmean || d < -0.1*pmean {
				t.Errorf("charset %q: position %d holds %d of its characters; the mean is %.0f", cs, i, n, pmean)
			}
		}
	}
}

func TestIntn(t *testing.T) {
	var s source
	for _, n := range []int{1, 2, 3, 65, 255, 256} {
		for range 1000 {
			if v := s.intn(n); v < 0 || v >= n {
				t.Fatalf("intn(%d) = %d", n, v)
			}
		}
	}
	for _, n := range []int{0, 257} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("intn(%d) did not panic", n)
				}
			}()
			s.intn(n)
		}()
	}
}

// render writes p back in the language, canonically: the fuzzer checks
// that it parses to the same policy.
func render(p *Policy) string {
	var b strings.Builder
	fmt.Fprintf(&b, "length = %d\n", p.Length)
	for _, r := range p.Rules {
		fmt.Fprintf(&b, "rule \"charset\" {\n  charset = %s\n  min-chars = %d\n}\n", quoteHCL(r.Charset), r.MinChars)
	}
	return b.String()
}

// quoteHCL quotes s as an HCL string, escaping every character but
// letters and digits, so that nothing ("${", quotes) is read specially.
func quoteHCL(s string) string {
	var b strings.Builder
	b.WriteByte('"')
	for _, c := range s {
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
			b.WriteRune(c)
		case c <= 0xffff:
			fmt.Fprintf(&b, `\u%04x`, c)
		default:
			fmt.Fprintf(&b, `\U%08x`, c)
		}
	}
	b.WriteByte('"')
	return b.String()
}

// FuzzParse parses arbitrary text. A policy that parses is within the
// bounds, renders back to the same policy, and every password it
// generates has its length, comes from its alphabet and meets every
// rule.
func FuzzParse(f *testing.F) {
	for _, s := range []string{
		strong,
		"length = 4\nrule \"charset\" { charset = \"a\" min-chars = 4 }",
		`{"length": 10, "rule": [{"charset": {"charset": "xyz", "min-chars": 1}}, {"charset": {"charset": "123"}}]}`,
		`{"length": 5, "rule": {"charset": [{"charset": "a"}, {"charset": "b", "min-chars": 5}]}}`,
		"length = 8\nrule \"charset\" { charset = \"${x}\\\"\\\\é\" min-chars = 1 }",
		"length = 20\nrule \"charset\" {",
		"length = 20\nrule \"charset\" { charset = \"\" }",
		"length = 1e3",
		"length = 0x10\nrule \"charset\" { charset = \"ab\" }",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, text string) {
		p, err := Parse(text)
		if err != nil {
			if !errors.Is(err, ErrInvalid) {
				t.Fatalf("error %v does not wrap ErrInvalid", err)
			}
			return
		}
		if p.Length < MinLength || p.Length > MaxLength || len(p.Rules) == 0 || len(p.alphabet) == 0 || len(p.alphabet) > MaxCharset {
			t.Fatalf("out of bounds: %+v", p)
		}
		again, err := Parse(render(p))
		if err != nil {
			t.Fatalf("the rendered policy does not parse: %v\n%s", err, render(p))
		}
		if render(again) != render(p) || again.Alphabet() != p.Alphabet() {
			t.Fatalf("rendering changed the policy:\n%s\n%s", render(p), render(again))
		}
		for range 3 {
			if pw := p.Generate(); p.Check(pw) != nil {
				t.Fatalf("%q: %v", pw, p.Check(pw))
			}
		}
	})
}
