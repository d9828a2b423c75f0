package auditlog

import (
	"bytes"
	"fmt"
	"strings"
	"testing"
	"time"
)

var testKey = bytes.Repeat([]byte{7}, KeySize)

// makeLog writes n entries and returns its lines (with newlines) and the
// final checkpoint.
func makeLog(t *testing.T, n int, prefix string) ([]string, Checkpoint) {
	t.Helper()
	c, err := NewChain(testKey, Checkpoint{})
	if err != nil {
		t.Fatal(err)
	}
	var lines []string
	for i := range n {
		obj := fmt.Sprintf(`{"time":"2026-11-23T10:00:%02dZ","type":"request","request":{"path":"secret/data/k%d"}}`, i%60, i)
		lines = append(lines, string(c.Append(nil, prefix, []byte(obj))))
	}
	return lines, c.Checkpoint(time.Unix(0, 0))
}

func verifyLines(t *testing.T, lines []string, opts VerifyOptions) *Report {
	t.Helper()
	if opts.Key == nil {
		opts.Key = testKey
	}
	rep, err := Verify(opts, Source{Name: "audit.log", R: strings.NewReader(strings.Join(lines, ""))})
	if err != nil {
		t.Fatal(err)
	}
	return rep
}

func TestChainAppendShape(t *testing.T) {
	c, _ := NewChain(testKey, Checkpoint{})
	line := c.Append(nil, "vigil: ", []byte(`{"type":"request"}`))
	if !bytes.HasPrefix(line, []byte(`vigil: {"type":"request","seq":1,"chain":"`)) || !bytes.HasSuffix(line, []byte("\"}\n")) {
		t.Fatalf("line = %s", line)
	}
	l, err := ParseLine(bytes.TrimSuffix(line, []byte("\n")))
	if err != nil || l.Seq != 1 || !bytes.HasPrefix(l.JSON, []byte(`{"type"`)) {
		t.Fatalf("ParseLine = %+v, %v", l, err)
	}
	if empty := c.Append(nil, "", []byte(`{}`)); !bytes.HasPrefix(empty, []byte(`{"seq":2,"chain":"`)) {
		t.Fatalf("empty object: %s", empty)
	}
}

func TestVerifyIntact(t *testing.T) {
	lines, cp := makeLog(t, 50, "")
	rep := verifyLines(t, lines, VerifyOptions{Checkpoint: &cp})
	if rep.Problem != nil || rep.Entries != 50 || rep.FirstSeq != 1 || rep.LastSeq != 50 {
		t.Fatalf("report = %+v (problem %v)", rep, rep.Problem)
	}
	// Split over two files, as after a rotation, with a prefix.
	lines, cp = makeLog(t, 10, "audit: ")
	rep, err := Verify(VerifyOptions{Key: testKey, Checkpoint: &cp},
		Source{Name: "a.1", R: strings.NewReader(strings.Join(lines[:4], ""))},
		Source{Name: "a", R: strings.NewReader(strings.Join(lines[4:], ""))})
	if err != nil || rep.Problem != nil || rep.Entries != 10 {
		t.Fatalf("rotated: %+v %v", rep, err)
	}
}

func TestVerifyContinuesFromCheckpoint(t *testing.T) {
	lines, cp := makeLog(t, 5, "")
	c, err := NewChain(testKey, cp)
	if err != nil {
		t.Fatal(err)
	}
	lines = append(lines, string(c.Append(nil, "", []byte(`{"type":"response"}`))))
	if rep := verifyLines(t, lines, VerifyOptions{}); rep.Problem != nil || rep.LastSeq != 6 {
		t.Fatalf("continued chain: %+v %v", rep, rep.Problem)
	}
}

func TestVerifyCatchesTampering(t *testing.T) {
	lines, cp := makeLog(t, 20, "")
	cases := []struct {
		name   string
		edit   func([]string) []string
		kind   string
		line   int
		seq    uint64
		opts   VerifyOptions
		detail string
	}{
		{name: "one character changed", kind: Modified, line: 7, seq: 7, edit: func(l []string) []string {
			l[6] = strings.Replace(l[6], "k6", "k9", 1)
			return l
		}},
		{name: "chain member edited", kind: Modified, line: 3, seq: 3, edit: func(l []string) []string {
			l[2] = strings.Replace(l[2], `"chain":"`, `"chain":"0`, 1)
			return l
		}},
		{name: "line deleted", kind: Removed, line: 5, seq: 5, edit: func(l []string) []string {
			return append(l[:4:4], l[5:]...)
		}},
		{name: "several lines deleted", kind: Removed, line: 5, seq: 5, detail: "5 to 7", edit: func(l []string) []string {
			return append(l[:4:4], l[7:]...)
		}},
		{name: "first line deleted", kind: Removed, line: 1, seq: 2, edit: func(l []string) []string {
			return l[1:]
		}},
		{name: "line copied", kind: Inserted, line: 10, seq: 3, edit: func(l []string) []string {
			return append(l[:9:9], append([]string{l[2]}, l[9:]...)...)
		}},
		{name: "forged line", kind: Inserted, line: 9, edit: func(l []string) []string {
			return append(l[:8:8], append([]string{`{"type":"request","request":{"path":"secret/data/x"}}` + "\n"}, l[8:]...)...)
		}},
		{name: "forged chained line", kind: Inserted, line: 9, seq: 9, edit: func(l []string) []string {
			c, _ := NewChain(bytes.Repeat([]byte{1}, KeySize), Checkpoint{Seq: 8, Chain: strings.Repeat("00", 32)})
			forged := string(c.Append(nil, "", []byte(`{"type":"request"}`)))
			return append(l[:8:8], append([]string{forged}, l[8:]...)...)
		}},
		{name: "two lines swapped", kind: Reordered, line: 12, seq: 12, edit: func(l []string) []string {
			l[11], l[12] = l[12], l[11]
			return l
		}},
		{name: "line moved down", kind: Reordered, line: 4, seq: 4, edit: func(l []string) []string {
			moved := l[3]
			l = append(l[:3:3], l[4:]...)
			return append(l[:10:10], append([]string{moved}, l[10:]...)...)
		}},
		{name: "tail cut", kind: Truncated, seq: 20, opts: VerifyOptions{Checkpoint: &cp}, edit: func(l []string) []string {
			return l[:17]
		}},
		{name: "all lines removed", kind: Truncated, seq: 20, opts: VerifyOptions{Checkpoint: &cp}, edit: func(l []string) []string {
			return nil
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			edited := tc.edit(append([]string(nil), lines...))
			rep := verifyLines(t, edited, tc.opts)
			p := rep.Problem
			if p == nil {
				t.Fatalf("tampering not caught: %+v", rep)
			}
			if p.Kind != tc.kind || p.Line != tc.line || (tc.seq != 0 && p.Seq != tc.seq) || !strings.Contains(p.Detail, tc.detail) {
				t.Fatalf("problem = %+v, want kind %s at line %d (seq %d)", p, tc.kind, tc.line, tc.seq)
			}
		})
	}
}

func TestVerifyPartialAndWrongKey(t *testing.T) {
	lines, _ := makeLog(t, 10, "")
	rep := verifyLines(t, lines[4:], VerifyOptions{Partial: true})
	if rep.Problem != nil || !rep.Anchored || rep.FirstSeq != 5 || rep.Entries != 6 {
		t.Fatalf("partial: %+v %v", rep, rep.Problem)
	}
	rep = verifyLines(t, lines, VerifyOptions{Key: bytes.Repeat([]byte{8}, KeySize)})
	if rep.Problem == nil || rep.Problem.Kind != Modified || rep.Problem.Line != 1 {
		t.Fatalf("wrong key accepted: %+v", rep.Problem)
	}
}

func FuzzVerifySingleEdit(f *testing.F) {
	lines, cp := makeLog(&testing.T{}, 8, "p ")
	log := strings.Join(lines, "")
	f.Add(uint(10), byte('x'))
	f.Add(uint(200), byte('\n'))
	f.Fuzz(func(t *testing.T, pos uint, b byte) {
		i := int(pos % uint(len(log)))
		if log[i] == b {
			return
		}
		edited := log[:i] + string([]byte{b}) + log[i+1:]
		rep, err := Verify(VerifyOptions{Key: testKey, Checkpoint: &cp}, Source{Name: "f", R: strings.NewReader(edited)})
		if err != nil {
			t.Fatal(err)
		}
		if rep.Problem == nil {
			t.Fatalf("edit at %d to %q not caught", i, b)
		}
	})
}

func TestResume(t *testing.T) {
	lines, _ := makeLog(t, 12, "")
	all := []byte(strings.Join(lines, ""))
	// The checkpoint lags: it was taken at seq 7.
	c, _ := NewChain(testKey, Checkpoint{})
	for i := range 7 {
		c.Append(nil, "", []byte(fmt.Sprintf(`{"time":"2026-11-23T10:00:%02dZ","type":"request","request":{"path":"secret/data/k%d"}}`, i%60, i)))
	}
	cp7 := c.Checkpoint(time.Unix(0, 0))
	if got := Resume(testKey, cp7, all); got.Seq != 12 {
		t.Fatalf("resume from seq 7: %+v", got)
	}
	// A tail that starts mid-line still finds the checkpoint's entry.
	if got := Resume(testKey, cp7, all[len(lines[0])+5:]); got.Seq != 12 {
		t.Fatalf("mid-line tail: %+v", got)
	}
	if got := Resume(testKey, Checkpoint{}, all); got.Seq != 12 {
		t.Fatalf("resume from nothing: %+v", got)
	}
	// A fresh file: nothing follows the checkpoint.
	if got := Resume(testKey, cp7, nil); got != cp7 {
		t.Fatalf("empty tail: %+v", got)
	}
	// An edited entry stops the walk before it.
	edited := []byte(strings.Replace(string(all), "k9", "kX", 1))
	if got := Resume(testKey, cp7, edited); got.Seq != 9 {
		t.Fatalf("edited tail: %+v", got)
	}
}
