package jsonenc

import (
	"encoding/json"
	"errors"
	"strconv"
	"unicode/utf16"
	"unicode/utf8"
)

// MaxDepth is how deeply arrays and objects may nest in what Decode
// accepts, as in encoding/json.
const MaxDepth = 10000

// ErrUnexpectedEnd means the input ended inside a value.
var ErrUnexpectedEnd = errors.New("unexpected end of JSON input")

// SyntaxError is input that is not JSON. It never quotes the input, which
// may hold a secret.
type SyntaxError struct {
	Offset int    // of the offending byte
	Msg    string // what was wrong, without the input
}

func (e *SyntaxError) Error() string {
	return e.Msg + " at offset " + strconv.Itoa(e.Offset)
}

// Decode parses one JSON value, surrounded by nothing but white space,
// into what encoding/json's Decoder with UseNumber gives an any: objects
// as map[string]any (the last of repeated names wins), arrays as []any,
// numbers as json.Number, strings with invalid UTF-8 and lone surrogates
// as U+FFFD. It is for request bodies, where encoding/json's reflection
// and copying cost more than the rest of a KV write's decoding.
func Decode(data []byte) (any, error) {
	d := decoder{data: data}
	d.space()
	v, err := d.value(0)
	if err != nil {
		return nil, err
	}
	d.space()
	if d.i < len(d.data) {
		return nil, d.syntax("trailing data after the JSON value")
	}
	return v, nil
}

type decoder struct {
	data []byte
	i    int
}

func (d *decoder) syntax(msg string) error {
	return &SyntaxError{Offset: d.i, Msg: msg}
}

// unexpected is the error for the byte at d.i, or for the end of input.
func (d *decoder) unexpected(what string) error {
	if d.i >= len(d.data) {
		return ErrUnexpectedEnd
	}
	return d.syntax("invalid character " + what)
}

func (d *decoder) space() {
	for d.i < len(d.data) {
		switch d.data[d.i] {
		case ' ', '\t', '\n', '\r':
			d.i++
		default:
			return
		}
	}
}

func (d *decoder) value(depth int) (any, error) {
	if d.i >= len(d.data) {
		return nil, ErrUnexpectedEnd
	}
	switch c := d.data[d.i]; {
	case c == '{':
		return d.object(depth + 1)
	case c == '[':
		return d.array(depth + 1)
	case c == '"':
		return d.str()
	case c == '-' || '0' <= c && c <= '9':
		return d.number()
	case c == 't':
		return true, d.literal("true")
	case c == 'f':
		return false, d.literal("false")
	case c == 'n':
		return nil, d.literal("null")
	}
	return nil, d.unexpected("looking for beginning of value")
}

func (d *decoder) literal(word string) error {
	for j := 0; j < len(word); j++ {
		if d.i >= len(d.data) {
			return ErrUnexpectedEnd
		}
		if d.data[d.i] != word[j] {
			return d.syntax("invalid character in literal " + word)
		}
		d.i++
	}
	return nil
}

func (d *decoder) object(depth int) (any, error) {
	if depth > MaxDepth {
		return nil, d.syntax("exceeded max depth")
	}
	d.i++ // '{'
	m := map[string]any{}
	d.space()
	if d.i < len(d.data) && d.data[d.i] == '}' {
		d.i++
		return m, nil
	}
	for {
		if d.i >= len(d.data) {
			return nil, ErrUnexpectedEnd
		}
		if d.data[d.i] != '"' {
			return nil, d.syntax("invalid character looking for beginning of object key string")
		}
		k, err := d.str()
		if err != nil {
			return nil, err
		}
		d.space()
		if d.i >= len(d.data) {
			return nil, ErrUnexpectedEnd
		}
		if d.data[d.i] != ':' {
			return nil, d.syntax("invalid character after object key")
		}
		d.i++
		d.space()
		v, err := d.value(depth)
		if err != nil {
			return nil, err
		}
		m[k] = v
		end, err := d.separator('}', "after object key:value pair")
		if err != nil {
			return nil, err
		}
		if end {
			return m, nil
		}
	}
}

func (d *decoder) array(depth int) (any, error) {
	if depth > MaxDepth {
		return nil, d.syntax("exceeded max depth")
	}
	d.i++ // '['
	a := []any{}
	d.space()
	if d.i < len(d.data) && d.data[d.i] == ']' {
		d.i++
		return a, nil
	}
	for {
		v, err := d.value(depth)
		if err != nil {
			return nil, err
		}
		a = append(a, v)
		end, err := d.separator(']', "after array element")
		if err != nil {
			return nil, err
		}
		if end {
			return a, nil
		}
	}
}

// separator reads what follows a member or element: a comma (and the
// space after it) or the closing byte, which ends the object or array.
func (d *decoder) separator(closing byte, after string) (end bool, err error) {
	d.space()
	if d.i >= len(d.data) {
		return false, ErrUnexpectedEnd
	}
	switch d.data[d.i] {
	case ',':
		d.i++
		d.space()
		return false, nil
	case closing:
		d.i++
		return true, nil
	}
	return false, d.syntax("invalid character " + after)
}

// number reads a number in JSON's grammar and keeps its text.
func (d *decoder) number() (any, error) {
	end, ok := scanNumber(d.data, d.i)
	if !ok {
		d.i = end
		return nil, d.unexpected("in numeric literal")
	}
	n := json.Number(d.data[d.i:end])
	d.i = end
	return n, nil
}

// scanNumber reads the number in JSON's grammar that begins at s[i] and
// returns where it ends. When s holds no number there, ok is false and end
// is the offset of the byte that broke the grammar (or len(s)).
func scanNumber[T string | []byte](s T, i int) (end int, ok bool) {
	digits := func() bool {
		start := i
		for i < len(s) && '0' <= s[i] && s[i] <= '9' {
			i++
		}
		return i > start
	}
	if i < len(s) && s[i] == '-' {
		i++
	}
	switch {
	case i < len(s) && s[i] == '0':
		i++
	case i < len(s) && '1' <= s[i] && s[i] <= '9':
		digits()
	default:
		return i, false
	}
	if i < len(s) && s[i] == '.' {
		i++
		if !digits() {
			return i, false
		}
	}
	if i < len(s) && (s[i] == 'e' || s[i] == 'E') {
		i++
		if i < len(s) && (s[i] == '+' || s[i] == '-') {
			i++
		}
		if !digits() {
			return i, false
		}
	}
	return i, true
}

// str reads a string. Most have no escape and are valid UTF-8: those are
// one copy.
func (d *decoder) str() (string, error) {
	d.i++ // '"'
	start := d.i
	ascii := true
	for d.i < len(d.data) {
		c := d.data[d.i]
		switch {
		case c == '"':
			s := d.data[start:d.i]
			d.i++
			if ascii || utf8.Valid(s) {
				return string(s), nil
			}
			return string(appendUnquoted(make([]byte, 0, len(s)+8), s)), nil
		case c == '\\':
			return d.escaped(start)
		case c < 0x20:
			return "", d.syntax("invalid control character in string literal")
		case c >= utf8.RuneSelf:
			ascii = false
		}
		d.i++
	}
	return "", ErrUnexpectedEnd
}

// escaped reads the rest of a string that began at start and has an
// escape at d.i.
func (d *decoder) escaped(start int) (string, error) {
	buf := make([]byte, 0, d.i-start+16)
	buf = appendUnquoted(buf, d.data[start:d.i])
	for d.i < len(d.data) {
		c := d.data[d.i]
		switch {
		case c == '"':
			d.i++
			return string(buf), nil
		case c < 0x20:
			return "", d.syntax("invalid control character in string literal")
		case c != '\\':
			run := d.i
			for d.i < len(d.data) && d.data[d.i] != '"' && d.data[d.i] != '\\' && d.data[d.i] >= 0x20 {
				d.i++
			}
			buf = appendUnquoted(buf, d.data[run:d.i])
			continue
		}
		d.i++ // '\\'
		if d.i >= len(d.data) {
			return "", ErrUnexpectedEnd
		}
		switch e := d.data[d.i]; e {
		case '"', '\\', '/':
			buf = append(buf, e)
		case 'b':
			buf = append(buf, '\b')
		case 'f':
			buf = append(buf, '\f')
		case 'n':
			buf = append(buf, '\n')
		case 'r':
			buf = append(buf, '\r')
		case 't':
			buf = append(buf, '\t')
		case 'u':
			r, bad := d.hex4(d.i + 1)
			if bad >= 0 {
				d.i = bad
				return "", d.unexpected("in \\u hexadecimal character escape")
			}
			d.i += 4
			if utf16.IsSurrogate(r) {
				// A high surrogate followed by an escaped low one is one
				// character; any other surrogate is U+FFFD, as in
				// encoding/json.
				r2 := utf8.RuneError
				if d.i+2 < len(d.data) && d.data[d.i+1] == '\\' && d.data[d.i+2] == 'u' {
					if x, bad := d.hex4(d.i + 3); bad < 0 {
						if dec := utf16.DecodeRune(r, x); dec != utf8.RuneError {
							r2 = dec
							d.i += 6
						}
					}
				}
				r = r2
			}
			buf = utf8.AppendRune(buf, r)
		default:
			return "", d.syntax("invalid character in string escape code")
		}
		d.i++
	}
	return "", ErrUnexpectedEnd
}

// hex4 reads the four hex digits of a \u escape at data[at:]. When they
// are not four hex digits, bad is the offset of the first that is not (or
// the end of the input).
func (d *decoder) hex4(at int) (r rune, bad int) {
	for j := at; j < at+4; j++ {
		if j >= len(d.data) {
			return 0, j
		}
		h := unhex(d.data[j])
		if h < 0 {
			return 0, j
		}
		r = r<<4 | h
	}
	return r, -1
}

func unhex(c byte) rune {
	switch {
	case '0' <= c && c <= '9':
		return rune(c - '0')
	case 'a' <= c && c <= 'f':
		return rune(c - 'a' + 10)
	case 'A' <= c && c <= 'F':
		return rune(c - 'A' + 10)
	}
	return -1
}

// appendUnquoted appends s, a run of a string without escapes, with each
// byte that is not part of valid UTF-8 as U+FFFD.
func appendUnquoted(buf, s []byte) []byte {
	for len(s) > 0 {
		if s[0] < utf8.RuneSelf {
			buf = append(buf, s[0])
			s = s[1:]
			continue
		}
		r, n := utf8.DecodeRune(s)
		if r == utf8.RuneError && n == 1 {
			buf = utf8.AppendRune(buf, utf8.RuneError)
		} else {
			buf = append(buf, s[:n]...)
		}
		s = s[n:]
	}
	return buf
}
