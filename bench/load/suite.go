package load

import (
	"context"
	"math/rand/v2"
	"net/http"
	"strconv"
)

// Suite is the benchmark's four scenarios: the bare handler and Vigil's KV
// v2 engine, read and written, all at the same concurrency.
type Suite struct {
	// BareURL is the bare handler's base URL, VigilURL Vigil's.
	BareURL, VigilURL string
	// Mount is the KV v2 mount path, without slashes.
	Mount string
	// Header carries the token and Content-Type for Vigil (see
	// Vigil.Header).
	Header http.Header
	// Keys is how many keys Preload wrote (k0 … k<Keys-1>), which the
	// read scenario picks from at random.
	Keys int
	// ValueSize is the size of the written values.
	ValueSize int
}

// Targets returns, in order, BareGET, KV2Read, BarePOST and KV2Write.
func (s Suite) Targets() []Target {
	data := s.VigilURL + "/v1/" + s.Mount + "/data/"
	write := writeBody(s.ValueSize)
	jsonHeader := http.Header{"Content-Type": {"application/json"}}
	return []Target{{
		Name:   BareGET,
		Method: http.MethodGet,
		URL:    func(int, int) string { return s.BareURL + "/v1/bare" },
	}, {
		Name:   KV2Read,
		Method: http.MethodGet,
		URL: func(int, int) string {
			return data + "k" + strconv.Itoa(rand.IntN(max(s.Keys, 1)))
		},
		Header: s.Header,
	}, {
		Name:   BarePOST,
		Method: http.MethodPost,
		URL:    func(int, int) string { return s.BareURL + "/v1/bare" },
		Body:   write,
		Header: jsonHeader,
	}, {
		Name:   KV2Write,
		Method: http.MethodPost,
		URL: func(w, i int) string {
			return data + "k" + strconv.Itoa(w) + "-" + strconv.Itoa(i)
		},
		Body:   write,
		Header: s.Header,
	}}
}

// writeBody returns a Target.Body that gives every request a new
// {"data":{"value":…}} with a value of valueSize printable bytes: one random
// value, its start overwritten by "<worker>-<i>-" (the random part has no
// '-', so values are distinct when valueSize leaves room for the stamp).
func writeBody(valueSize int) func(w, i int) []byte {
	tmpl := KVWriteBody(RandomPrintable(valueSize))
	const prefix = len(`{"data":{"value":"`)
	return func(w, i int) []byte {
		b := make([]byte, len(tmpl))
		copy(b, tmpl)
		stamp := strconv.AppendInt(make([]byte, 0, 24), int64(w), 36)
		stamp = append(strconv.AppendInt(append(stamp, '-'), int64(i), 36), '-')
		copy(b[prefix:prefix+min(len(stamp), valueSize)], stamp)
		return b
	}
}

// Preload writes keys k0 … k<keys-1> with random values of valueSize bytes
// into the KV v2 mount, concurrency at a time.
func (v *Vigil) Preload(ctx context.Context, mount string, keys, valueSize, concurrency int) error {
	return ForEach(ctx, keys, concurrency, func(ctx context.Context, i int) error {
		return v.Write(ctx, "/v1/"+mount+"/data/k"+strconv.Itoa(i), KVWriteBody(RandomPrintable(valueSize)))
	})
}

// RunAll runs each target in turn with o, each with its own client and
// after a garbage collection, and stops at the first error: RunRounds with
// a single round.
func RunAll(ctx context.Context, targets []Target, o Options) ([]Result, error) {
	rr, err := RunRounds(ctx, targets, o, 1)
	return rr.Results, err
}
