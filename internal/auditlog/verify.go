package auditlog

import (
	"bufio"
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
)

// Kinds of tampering Verify tells apart.
const (
	// Modified: an entry's content no longer matches its chain.
	Modified = "modified"
	// Inserted: a line that is not one of the device's entries, or an
	// entry that appears twice.
	Inserted = "inserted"
	// Removed: entries are missing.
	Removed = "removed"
	// Reordered: an entry appears after a later one.
	Reordered = "reordered"
	// Truncated: the log ends before the server's checkpoint.
	Truncated = "truncated"
)

// Problem is the first sign of tampering Verify finds.
type Problem struct {
	Kind string
	// File and Line locate it (Line is 1-based; 0 for Truncated).
	File string
	Line int
	// Seq is the sequence number concerned.
	Seq    uint64
	Detail string
}

func (p *Problem) Error() string {
	if p.Line == 0 {
		return fmt.Sprintf("%s: %s", p.Kind, p.Detail)
	}
	return fmt.Sprintf("%s:%d: %s: %s", p.File, p.Line, p.Kind, p.Detail)
}

// Source is one log file, oldest first.
type Source struct {
	Name string
	R    io.Reader
}

// VerifyOptions says what Verify checks against.
type VerifyOptions struct {
	// Key is the device's chain key.
	Key []byte
	// Checkpoint, when set, is the server's record of the device's last
	// entry: a log that ends before it is truncated, and its entry must
	// carry its chain.
	Checkpoint *Checkpoint
	// Partial accepts a log that starts after seq 1 (older files rotated
	// away): its first entry is taken on trust.
	Partial bool
}

// Report is the outcome of Verify.
type Report struct {
	// Entries is the number of entries checked.
	Entries int
	// FirstSeq and LastSeq bound the entries seen.
	FirstSeq, LastSeq uint64
	// Anchored reports that the log started after seq 1 and its first
	// entry was taken on trust (VerifyOptions.Partial).
	Anchored bool
	// Problem is the first sign of tampering; nil for an intact log.
	Problem *Problem
}

// Verify checks the chain of a device's log, given as its files in order.
// It returns an error only when a file cannot be read; tampering is
// reported in Report.Problem.
func Verify(opts VerifyOptions, srcs ...Source) (*Report, error) {
	if len(opts.Key) != KeySize {
		return nil, errors.New("auditlog: chain key must be 32 bytes")
	}
	v := &verifier{mac: hmac.New(sha256.New, opts.Key), r: newLineReader(srcs), opts: opts}
	return v.run()
}

type verifier struct {
	mac  hash.Hash
	r    *lineReader
	opts VerifyOptions
	rep  Report
	head [32]byte
	next uint64 // the sequence number expected next
}

func (v *verifier) run() (*Report, error) {
	v.next = 1
	for {
		rl, err := v.r.read()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, err
		}
		p, err := v.check(rl)
		if err != nil {
			return nil, err
		}
		if p != nil {
			v.rep.Problem = p
			return &v.rep, nil
		}
	}
	if cp := v.opts.Checkpoint; cp != nil && cp.Seq > v.rep.LastSeq {
		v.rep.Problem = &Problem{Kind: Truncated, Seq: cp.Seq,
			Detail: fmt.Sprintf("the log ends at seq %d but the server recorded seq %d (checkpoint of %s)",
				v.rep.LastSeq, cp.Seq, cp.Time.Format("2006-01-02T15:04:05Z07:00"))}
	}
	return &v.rep, nil
}

// check verifies one line; a non-nil Problem stops the run.
func (v *verifier) check(rl rawLine) (*Problem, error) {
	l, err := ParseLine(rl.text)
	if err != nil {
		return v.unchained(rl)
	}
	if v.rep.Entries == 0 && l.Seq != 1 {
		if !v.opts.Partial {
			return rl.problem(Removed, l.Seq, fmt.Sprintf("the log starts at seq %d: entries 1 to %d are missing (verify with the older files, or -partial)", l.Seq, l.Seq-1)), nil
		}
		v.rep.Anchored = true
		v.accept(l)
		return nil, nil
	}
	switch {
	case l.Seq == v.next:
		if link(v.mac, v.head, l.Body) == l.Chain {
			if cp := v.opts.Checkpoint; cp != nil && cp.Seq == l.Seq && cp.Chain != hex.EncodeToString(l.Chain[:]) {
				return rl.problem(Modified, l.Seq, "the entry differs from the server's checkpoint"), nil
			}
			v.accept(l)
			return nil, nil
		}
		// A forged line in front of the genuine one, or an edit.
		nl, err := v.r.peek()
		if err != nil && err != io.EOF {
			return nil, err
		}
		if err == nil {
			if n, perr := ParseLine(nl.text); perr == nil && n.Seq == l.Seq && link(v.mac, v.head, n.Body) == n.Chain {
				return rl.problem(Inserted, l.Seq, fmt.Sprintf("a forged entry claims seq %d", l.Seq)), nil
			}
		}
		return rl.problem(Modified, l.Seq, fmt.Sprintf("entry seq %d does not match its chain", l.Seq)), nil
	case l.Seq > v.next:
		missing := v.next
		at, err := v.r.find(missing)
		if err != nil {
			return nil, err
		}
		if at != "" {
			return rl.problem(Reordered, missing, fmt.Sprintf("entry seq %d appears after seq %d, at %s", missing, l.Seq, at)), nil
		}
		if l.Seq-1 == missing {
			return rl.problem(Removed, missing, fmt.Sprintf("entry seq %d is missing before this line", missing)), nil
		}
		return rl.problem(Removed, missing, fmt.Sprintf("entries seq %d to %d are missing before this line", missing, l.Seq-1)), nil
	default:
		return rl.problem(Inserted, l.Seq, fmt.Sprintf("entry seq %d appears again after seq %d", l.Seq, v.next-1)), nil
	}
}

// unchained reports a line that carries no chain: a line added whole when
// the next entry is the one expected, an edit that broke the line's shape
// otherwise.
func (v *verifier) unchained(rl rawLine) (*Problem, error) {
	nl, err := v.r.peek()
	if err != nil && err != io.EOF {
		return nil, err
	}
	if err == nil {
		if n, perr := ParseLine(nl.text); perr == nil && (n.Seq == v.next || v.rep.Entries == 0) {
			return rl.problem(Inserted, 0, "the line is not a chained audit entry"), nil
		}
	}
	return rl.problem(Modified, v.next, "the line is not a valid chained audit entry"), nil
}

func (v *verifier) accept(l Line) {
	if v.rep.Entries == 0 {
		v.rep.FirstSeq = l.Seq
	}
	v.rep.Entries++
	v.rep.LastSeq = l.Seq
	v.head = l.Chain
	v.next = l.Seq + 1
}

// rawLine is one non-empty line and where it is.
type rawLine struct {
	text []byte
	file string
	line int
}

func (rl rawLine) problem(kind string, seq uint64, detail string) *Problem {
	return &Problem{Kind: kind, File: rl.file, Line: rl.line, Seq: seq, Detail: detail}
}

// lineReader reads the non-empty lines of several sources in turn, with
// one line of lookahead.
type lineReader struct {
	srcs   []Source
	br     *bufio.Reader
	lineNo int
	peeked *rawLine
}

func newLineReader(srcs []Source) *lineReader {
	return &lineReader{srcs: srcs}
}

func (r *lineReader) read() (rawLine, error) {
	if p := r.peeked; p != nil {
		r.peeked = nil
		return *p, nil
	}
	for {
		if r.br == nil {
			if len(r.srcs) == 0 {
				return rawLine{}, io.EOF
			}
			r.br = bufio.NewReaderSize(r.srcs[0].R, 64<<10)
			r.lineNo = 0
		}
		text, err := r.br.ReadBytes('\n')
		if len(text) > 0 {
			r.lineNo++
			text = bytes.TrimSuffix(text, []byte("\n"))
			if len(text) > 0 {
				return rawLine{text: text, file: r.srcs[0].Name, line: r.lineNo}, nil
			}
			continue
		}
		if err == io.EOF {
			r.srcs, r.br = r.srcs[1:], nil
			continue
		}
		if err != nil {
			return rawLine{}, fmt.Errorf("read %s: %w", r.srcs[0].Name, err)
		}
	}
}

func (r *lineReader) peek() (rawLine, error) {
	if r.peeked == nil {
		l, err := r.read()
		if err != nil {
			return rawLine{}, err
		}
		r.peeked = &l
	}
	return *r.peeked, nil
}

// find reads on until an entry with the sequence number seq and returns
// where it is ("" when it never comes). It consumes the rest of the
// sources: the run is over once a problem is found.
func (r *lineReader) find(seq uint64) (string, error) {
	for {
		rl, err := r.read()
		if err == io.EOF {
			return "", nil
		}
		if err != nil {
			return "", err
		}
		if l, err := ParseLine(rl.text); err == nil && l.Seq == seq {
			return fmt.Sprintf("%s:%d", rl.file, rl.line), nil
		}
	}
}
