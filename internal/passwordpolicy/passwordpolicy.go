// Package passwordpolicy parses password policies written in Vault's
// password policy language and generates passwords from them. It is pure:
// storing policies is the core's job (sys/policies/password), and it
// imports nothing of Vigil's.
//
//	length = 24
//	rule "charset" {
//	  charset   = "abcdefghijklmnopqrstuvwxyz"
//	  min-chars = 1
//	}
//	rule "charset" {
//	  charset   = "0123456789"
//	  min-chars = 2
//	}
//
// # The language
//
// A policy is HCL or its JSON form ({"length": 24, "rule": [{"charset":
// {"charset": "...", "min-chars": 1}}]}) with two keys:
//
//   - length, required: the password's length in characters, from
//     [MinLength] to [MaxLength];
//   - rule "charset", one or more: a charset (a non-empty string of
//     printable characters) the password is drawn from, and min-chars, the
//     fewest characters of that charset the password holds (0 when not
//     set).
//
// The charsets' union, duplicates removed, is the alphabet; it holds at
// most [MaxCharset] characters. The rules' min-chars together must fit in
// length. Any other key, rule type or value type is refused: [Parse]
// names the problem, where Vault would ignore an unknown key. As in HCL,
// a key set twice in one block keeps its last value.
//
// # Generation
//
// [Policy.Generate] draws each rule's min-chars characters from that
// rule's charset, fills the rest of the length from the whole alphabet,
// and shuffles the positions. Each draw is uniform over its set, from
// crypto/rand bytes: a byte at or above the largest multiple of the set's
// size is skipped rather than reduced, so no character is favoured
// (modulo bias). Generation always succeeds in bounded time, so a policy
// that parses can always be used. Vault instead draws whole candidates
// from the alphabet until one passes every rule, and refuses at write
// time a policy for which that is too slow; the passwords either way
// satisfy the same rules.
package passwordpolicy

import (
	"crypto/rand"
	"errors"
	"fmt"
	"math"
	"slices"
	"sort"
	"unicode"
	"unicode/utf8"

	"github.com/hashicorp/hcl"
)

// Bounds on a policy.
const (
	// MinLength and MaxLength bound a password's length, as Vault's.
	MinLength = 4
	MaxLength = 100
	// MaxCharset bounds the alphabet (the charsets' union), as Vault's.
	MaxCharset = 256
)

// ErrInvalid is wrapped by every error of [Parse]: the text is not a
// usable password policy. The error's text begins with "invalid password
// policy: " and names the problem; it quotes only the policy, which holds
// no secret.
var ErrInvalid = errors.New("invalid password policy")

// Policy is a parsed password policy.
type Policy struct {
	// Length is the length of the passwords, in characters.
	Length int
	// Rules are the charset rules in the order written.
	Rules []Rule
	// alphabet is the rules' charsets united, sorted, without duplicates.
	alphabet []rune
}

// Rule is one `rule "charset"` block.
type Rule struct {
	// Charset is the charset as written.
	Charset string
	// MinChars is the fewest characters of Charset a password holds.
	MinChars int
	// runes is Charset without duplicates, so that a character written
	// twice is not drawn twice as often.
	runes []rune
}

func invalid(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrInvalid, fmt.Sprintf(format, args...))
}

// Parse parses a password policy, HCL or JSON. Every error wraps
// [ErrInvalid].
func Parse(text string) (*Policy, error) {
	top, err := decode(text)
	if err != nil {
		return nil, err
	}
	p := &Policy{}
	haveLength := false
	for _, key := range slices.Sorted(mapKeys(top)) {
		switch key {
		case "length":
			n, err := wholeNumber(top[key])
			if err != nil {
				return nil, invalid("length %v", err)
			}
			p.Length, haveLength = n, true
		case "rule":
			if p.Rules, err = parseRules(top[key]); err != nil {
				return nil, err
			}
		default:
			return nil, invalid("unknown key %q (want length and rule blocks)", key)
		}
	}
	if !haveLength {
		return nil, invalid("length is required")
	}
	if p.Length < MinLength || p.Length > MaxLength {
		return nil, invalid("length must be from %d to %d, not %d", MinLength, MaxLength, p.Length)
	}
	if len(p.Rules) == 0 {
		return nil, invalid(`at least one rule "charset" is required: passwords are drawn from the charsets`)
	}
	need := 0
	var all []rune
	for _, r := range p.Rules {
		need += r.MinChars
		all = append(all, r.runes...)
	}
	if need > p.Length {
		return nil, invalid("the rules require at least %d characters (their min-chars together), but length is %d", need, p.Length)
	}
	p.alphabet = dedupe(all)
	if len(p.alphabet) > MaxCharset {
		return nil, invalid("the charsets together hold %d distinct characters; at most %d are allowed", len(p.alphabet), MaxCharset)
	}
	return p, nil
}

// decode reads the text's top-level object with the HCL library, which
// reads JSON too. The library panics on a few malformed literals: those
// are reported as invalid policies rather than crash the server.
func decode(text string) (top map[string]any, err error) {
	defer func() {
		if r := recover(); r != nil {
			top, err = nil, invalid("the text does not parse: %v", r)
		}
	}()
	if err := hcl.Decode(&top, text); err != nil {
		return nil, invalid("the text does not parse: %v", err)
	}
	return top, nil
}

func mapKeys(m map[string]any) func(func(string) bool) {
	return func(yield func(string) bool) {
		for k := range m {
			if !yield(k) {
				return
			}
		}
	}
}

// objects returns the blocks a key holds: the decoder gives a list of
// objects for HCL blocks, and an object or a list of them for JSON.
func objects(v any) ([]map[string]any, bool) {
	switch x := v.(type) {
	case map[string]any:
		return []map[string]any{x}, true
	case []map[string]any:
		return x, true
	case []any:
		out := make([]map[string]any, 0, len(x))
		for _, e := range x {
			m, ok := e.(map[string]any)
			if !ok {
				return nil, false
			}
			out = append(out, m)
		}
		return out, true
	}
	return nil, false
}

// parseRules parses the value of the "rule" key: blocks labelled with the
// rule's type, whose bodies are the rules.
func parseRules(v any) ([]Rule, error) {
	blocks, ok := objects(v)
	if !ok {
		return nil, invalid(`"rule" must be a block, as in rule "charset" { charset = "abc" }`)
	}
	var rules []Rule
	for _, b := range blocks {
		for _, typ := range slices.Sorted(mapKeys(b)) {
			if typ != "charset" {
				return nil, invalid("unknown rule type %q (the one type is \"charset\")", typ)
			}
			bodies, ok := objects(b[typ])
			if !ok {
				return nil, invalid(`rule "charset" must be a block, as in rule "charset" { charset = "abc" }`)
			}
			for _, body := range bodies {
				r, err := parseCharsetRule(body, len(rules)+1)
				if err != nil {
					return nil, err
				}
				rules = append(rules, r)
			}
		}
	}
	return rules, nil
}

// parseCharsetRule parses the body of the n-th rule.
func parseCharsetRule(body map[string]any, n int) (Rule, error) {
	var r Rule
	haveCharset := false
	for _, key := range slices.Sorted(mapKeys(body)) {
		switch key {
		case "charset":
			s, ok := body[key].(string)
			if !ok {
				return r, invalid("rule %d: charset must be a string", n)
			}
			if !utf8.ValidString(s) {
				return r, invalid("rule %d: charset is not valid UTF-8", n)
			}
			for _, c := range s {
				if !unicode.IsPrint(c) {
					return r, invalid("rule %d: charset holds the non-printable character %U", n, c)
				}
			}
			r.Charset, haveCharset = s, true
		case "min-chars":
			m, err := wholeNumber(body[key])
			if err != nil {
				return r, invalid("rule %d: min-chars %v", n, err)
			}
			if m < 0 || m > MaxLength {
				return r, invalid("rule %d: min-chars must be from 0 to %d, not %d", n, MaxLength, m)
			}
			r.MinChars = m
		default:
			return r, invalid("rule %d: unknown key %q (want charset and min-chars)", n, key)
		}
	}
	if !haveCharset || r.Charset == "" {
		return r, invalid("rule %d: charset is empty", n)
	}
	r.runes = dedupe([]rune(r.Charset))
	return r, nil
}

// wholeNumber reads an integer value; its error completes a sentence
// that begins with the key's name.
func wholeNumber(v any) (int, error) {
	switch x := v.(type) {
	case int:
		if x < math.MinInt32 || x > math.MaxInt32 {
			return 0, errors.New("is out of range")
		}
		return x, nil
	case float64:
		if x == math.Trunc(x) && math.Abs(x) <= math.MaxInt32 {
			return int(x), nil
		}
		return 0, errors.New("must be a whole number")
	}
	return 0, fmt.Errorf("must be a number, not %s", kind(v))
}

func kind(v any) string {
	switch v.(type) {
	case string:
		return "a string"
	case bool:
		return "a boolean"
	case []any, []map[string]any:
		return "a list or block"
	case map[string]any:
		return "an object"
	}
	return fmt.Sprintf("%T", v)
}

// dedupe returns the runes sorted, without duplicates.
func dedupe(rs []rune) []rune {
	out := slices.Clone(rs)
	sort.Slice(out, func(i, j int) bool { return out[i] < out[j] })
	return slices.Compact(out)
}

// Alphabet returns the characters passwords are drawn from: the charsets
// united, sorted, without duplicates.
func (p *Policy) Alphabet() string { return string(p.alphabet) }

// Generate returns a new password: Length characters, each rule's
// min-chars of them from its charset, the others from the alphabet, in a
// random order (see the package doc).
func (p *Policy) Generate() string {
	var src source
	defer src.clear()
	out := make([]rune, 0, p.Length)
	for _, r := range p.Rules {
		for range r.MinChars {
			out = append(out, r.runes[src.intn(len(r.runes))])
		}
	}
	for len(out) < p.Length {
		out = append(out, p.alphabet[src.intn(len(p.alphabet))])
	}
	// Fisher-Yates: every order of the drawn characters is equally
	// likely, so the required ones are not at known positions.
	for i := len(out) - 1; i > 0; i-- {
		j := src.intn(i + 1)
		out[i], out[j] = out[j], out[i]
	}
	pw := string(out)
	clear(out)
	return pw
}

// Check reports why pw cannot be a password of p, nil if it can: its
// length is not Length, a character is in no charset, or a rule's
// min-chars is not met. The error does not quote the password.
func (p *Policy) Check(pw string) error {
	if !utf8.ValidString(pw) {
		return errors.New("the password is not UTF-8")
	}
	rs := []rune(pw)
	if len(rs) != p.Length {
		return fmt.Errorf("the password has %d characters, not %d", len(rs), p.Length)
	}
	for i, c := range rs {
		if _, found := slices.BinarySearch(p.alphabet, c); !found {
			return fmt.Errorf("character %d of the password is in no charset", i+1)
		}
	}
	for i, r := range p.Rules {
		n := 0
		for _, c := range rs {
			if _, found := slices.BinarySearch(r.runes, c); found {
				n++
			}
		}
		if n < r.MinChars {
			return fmt.Errorf("rule %d: the password has %d characters of its charset, not at least %d", i+1, n, r.MinChars)
		}
	}
	return nil
}

// source hands out uniform choices from crypto/rand bytes, read in blocks.
type source struct {
	buf  [64]byte
	left int // unused bytes at the start of buf
}

// intn returns a uniform integer in [0, n), for 1 <= n <= 256. Bytes at
// or above the largest multiple of n that fits in a byte are skipped, so
// that each result has the same number of bytes mapping to it.
func (s *source) intn(n int) int {
	if n < 1 || n > MaxCharset {
		panic(fmt.Sprintf("passwordpolicy: intn(%d)", n))
	}
	limit := 256 - 256%n
	for {
		if s.left == 0 {
			_, _ = rand.Read(s.buf[:]) // never fails (crypto/rand)
			s.left = len(s.buf)
		}
		s.left--
		if b := int(s.buf[s.left]); b < limit {
			return b % n
		}
	}
}

// clear wipes the random bytes, which chose a password.
func (s *source) clear() { clear(s.buf[:]) }
